"""mixup GANs (Section 3.7 of the paper): toy data, mode-coverage metrics, networks and training on accelerate.

```python
import hf_mixup.gan as gan

metrics = gan.train_gan(gan.GanArguments(output_dir="runs/ring-mixup", data="ring", mixup_max=0.2, iterations=2000))
generator = gan.GanGenerator.from_pretrained("runs/ring-mixup/generator")
print(gan.mode_coverage(generator.sample(2500), "ring"))
```
"""

from .data import TOY_DATA, ModeCoverage, mode_coverage, toy_data, toy_means
from .models import GanDiscriminator, GanGenerator
from .training import (
    GanArguments,
    GanSampler,
    GanTrainer,
    discriminator_lam,
    mix_discriminator_batches,
    train_gan,
)

__all__ = [
    "TOY_DATA",
    "GanArguments",
    "GanDiscriminator",
    "GanGenerator",
    "GanSampler",
    "GanTrainer",
    "ModeCoverage",
    "discriminator_lam",
    "mix_discriminator_batches",
    "mode_coverage",
    "toy_data",
    "toy_means",
    "train_gan",
]
