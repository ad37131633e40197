"""Image augmentation for training (torchvision v2, on uint8 tensors), applied lazily per example.

- ``none``: the evaluation transform (resize, centre crop, normalise);
- ``cifar``: 4-pixel zero padding + random crop, horizontal flip, normalise (the standard CIFAR recipe
  of the paper and of most CIFAR code);
- ``imagenet``: random resized crop, horizontal flip, normalise; evaluation resizes to size / 0.875
  and takes the centre crop (set ``crop_pct=0.875`` on the model, as ``scripts/train.py`` does).

Evaluation always uses the transform of the checkpoint's image processor
(`TimmWrapperImageProcessor.val_transforms`), so `pipeline()` preprocesses exactly as evaluation did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .._extras import require

require("torchvision", "vision", "hf_mixup.data.images")  # before the import below: a missing extra is named

from torchvision.transforms import InterpolationMode, v2  # noqa: E402

AUGMENTATIONS = ("none", "cifar", "imagenet")
EVAL_CROP_PCT = {"none": 1.0, "cifar": 1.0, "imagenet": 0.875}


def train_transform(
    kind: str,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    eval_transform: Callable,
    interpolation: str = "bilinear",
) -> Callable:
    """A PIL image -> normalised float tensor transform for training with augmentation ``kind``."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, got {kind!r}")
    if kind == "none":
        return eval_transform
    mode = InterpolationMode(interpolation)
    if kind == "cifar":
        steps = [
            v2.PILToTensor(),
            _ResizeIfNeeded(size, mode),
            v2.RandomCrop(size, padding=4),
            v2.RandomHorizontalFlip(),
        ]
    else:
        steps = [v2.PILToTensor(), v2.RandomResizedCrop(size, interpolation=mode, antialias=True), v2.RandomHorizontalFlip()]
    return v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


class _ResizeIfNeeded(torch.nn.Module):
    """Resize the shorter side to ``size`` (then centre crop) only when the image is not ``size`` x ``size``."""

    def __init__(self, size: int, interpolation: InterpolationMode):
        super().__init__()
        self.size = size
        self.resize = v2.Compose([v2.Resize(size, interpolation=interpolation, antialias=True), v2.CenterCrop(size)])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-2:] == (self.size, self.size):
            return image
        return self.resize(image)
