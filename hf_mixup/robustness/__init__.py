"""The paper's robustness experiments as library features.

- `labels`: `corrupt_labels` (Section 3.4, Table 2: memorisation of corrupted labels) and the training
  error on real and on corrupted labels
- `attacks`: `fgsm` and `iterative_fgsm` (Section 3.5, Table 3: adversarial examples), with epsilon in
  raw [0, 1] pixel units
"""

from .attacks import fgsm, iterative_fgsm
from .labels import corrupt_labels

__all__ = ["corrupt_labels", "fgsm", "iterative_fgsm"]
