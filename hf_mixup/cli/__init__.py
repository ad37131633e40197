"""The `hf-mixup` command line: `hf-mixup train ...` (also `python -m hf_mixup train ...` and
`accelerate launch scripts/train.py ...`).

- `train`: the parser (`parse_args`), `build_trainer` and `main`, in-process callable
- `common`: split and label-column resolution shared by the modalities
- `images`, `audio`, `tables`: one builder per modality, each with its own data arguments
"""

from .errors import UsageError

__all__ = ["UsageError"]
