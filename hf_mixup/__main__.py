"""`python -m hf_mixup train ...`: the same command line as `hf-mixup`."""

import sys

from .cli.main import main

sys.exit(main())
