"""Image data: Fashion-MNIST from the Debian files with the Hub schema, and the augmentations."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Image, load_from_disk
from PIL import Image as PILImage

from hf_mixup.data import FASHION_MNIST_CLASSES, FASHION_MNIST_DIR
from hf_mixup.images import train_transform

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def test_prepare_fashion_mnist_has_the_hub_schema(tmp_path):
    import prepare_fashion_mnist

    if not Path(FASHION_MNIST_DIR).is_dir():
        pytest.fail("Fashion-MNIST is not installed: `make test` installs the Debian package dataset-fashion-mnist")
    out = prepare_fashion_mnist.main(["--output", str(tmp_path / "fm"), "--limit", "50"])
    data = load_from_disk(out)
    assert set(data) == {"train", "test"} and len(data["train"]) == 50
    features = data["train"].features
    assert isinstance(features["image"], Image) and isinstance(features["label"], ClassLabel)
    assert features["label"].names == FASHION_MNIST_CLASSES
    first = data["train"][0]
    assert first["image"].size == (28, 28) and first["image"].mode == "L"
    assert first["label"] == 9  # the first training image of Fashion-MNIST is an ankle boot


def test_cifar_augmentation_crops_flips_and_normalises():
    evaluate = lambda image: torch.zeros(3, 8, 8)  # noqa: E731
    transform = train_transform("cifar", 8, [0.5] * 3, [0.25] * 3, evaluate)
    image = PILImage.fromarray(np.full((8, 8, 3), 255, np.uint8))
    torch.manual_seed(0)
    outs = torch.stack([transform(image) for _ in range(64)])
    assert outs.shape == (64, 3, 8, 8) and outs.dtype == torch.float32
    assert set(outs.unique().tolist()) == {-2.0, 2.0}  # zero padding (-0.5 / 0.25) and white (0.5 / 0.25)
    assert (outs == -2.0).any(dim=(1, 2, 3)).float().mean() > 0.5  # most crops include padding
    assert train_transform("none", 8, [0.5] * 3, [0.25] * 3, evaluate) is evaluate
    with pytest.raises(ValueError, match="augmentation"):
        train_transform("autoaugment", 8, [0.5] * 3, [0.25] * 3, evaluate)


def test_imagenet_augmentation_gives_the_model_size():
    transform = train_transform("imagenet", 32, [0.5] * 3, [0.5] * 3, None)
    image = PILImage.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8))
    assert transform(image).shape == (3, 32, 32)
