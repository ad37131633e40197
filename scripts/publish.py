#!/usr/bin/env python
"""Publish an ERM/mixup pair of runs to the Hub: the same command as `hf-mixup publish` (`--help` lists the flags).

    python scripts/publish.py --erm runs/fashion_mnist-erm-seed1 --mixup runs/fashion_mnist-mixup-seed1 --namespace my-org
"""

import sys

from hf_mixup.cli.publish import main

if __name__ == "__main__":
    sys.exit(main())
