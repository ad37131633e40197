"""hf_mixup: mixup (Zhang et al., ICLR 2018) inside the Hugging Face Trainer.

```python
from hf_mixup import MixupArguments, MixupTrainer
args = MixupArguments(output_dir="out", mixup_alpha=1.0)
trainer = MixupTrainer(model=model, args=args, train_dataset=train, eval_dataset=test)
```
"""

from . import models  # noqa: F401  (registers the models with transformers, the CIFAR ones with timm once it is imported)
from .arguments import MixupArguments
from .collator import DataCollatorForMixup
from .losses import mixup_cross_entropy, soft_target_cross_entropy
from .mixing import MixDraw, Mixer, mix_batch, mix_inputs, mix_targets, sample_beta
from . import pipelines  # noqa: F401  (registers the tabular-classification / tabular-regression pipelines)
from .trainer import MixupTrainer

__version__ = "0.1.0"

__all__ = [
    "DataCollatorForMixup",
    "MixDraw",
    "Mixer",
    "MixupArguments",
    "MixupTrainer",
    "mix_batch",
    "mix_inputs",
    "mix_targets",
    "mixup_cross_entropy",
    "sample_beta",
    "soft_target_cross_entropy",
]
