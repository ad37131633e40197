#!/usr/bin/env python
"""Train an image, audio or tabular model with mixup (or ERM) through `MixupTrainer`.

    accelerate launch scripts/train.py                      # mixup (alpha 1) on the bundled digits
    accelerate launch scripts/train.py --mixup_alpha 0      # the ERM baseline
    accelerate launch scripts/train.py recipe.yaml --seed 3 # a config file, then command-line overrides
    accelerate launch --multi_gpu --num_processes 2 scripts/train.py --use_cpu   # two gloo ranks on a CPU

The same command line as `hf-mixup train` (`hf_mixup/cli/`); `--help` lists the flags.
"""

import sys

from hf_mixup.cli.train import run

if __name__ == "__main__":
    sys.exit(run())
