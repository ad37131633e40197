"""Model families of hf_mixup (registered with timm on import) and the timm wrapper helpers."""

from . import cifar  # noqa: F401  (registers the CIFAR models with timm)
from .timm_models import create_timm_classifier, restore_timm_init

__all__ = ["create_timm_classifier", "restore_timm_init"]
