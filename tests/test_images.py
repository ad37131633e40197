"""Image data: Fashion-MNIST from the Debian files with the Hub schema, and the augmentations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT
from datasets import ClassLabel, Image, load_from_disk
from PIL import Image as PILImage

from hf_mixup.data import FASHION_MNIST_CLASSES, FASHION_MNIST_DIR
from hf_mixup.data.images import train_transform


def test_prepare_fashion_mnist_has_the_hub_schema(tmp_path):
    if not Path(FASHION_MNIST_DIR).is_dir():
        pytest.fail("Fashion-MNIST is not installed: `make test` installs the Debian package dataset-fashion-mnist")
    out = tmp_path / "fm"
    script = ROOT / "scripts" / "prepare_fashion_mnist.py"  # run as a user runs it
    done = subprocess.run([sys.executable, str(script), "--output", str(out), "--limit", "50"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    data = load_from_disk(str(out))
    assert set(data) == {"train", "test"} and len(data["train"]) == 50
    features = data["train"].features
    assert isinstance(features["image"], Image) and isinstance(features["label"], ClassLabel)
    assert features["label"].names == FASHION_MNIST_CLASSES
    first = data["train"][0]
    assert first["image"].size == (28, 28) and first["image"].mode == "L"
    assert first["label"] == 9  # the first training image of Fashion-MNIST is an ankle boot


def test_cifar_augmentation_pads_crops_flips_and_normalises_exactly():
    """Every output is the image zero-padded by 4, cropped at one of the 9 x 9 offsets, flipped left-right
    or not, then normalised; both flips occur. Random pixels: no two crops or flips look alike."""
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    evaluate = lambda image: torch.zeros(3, 8, 8)  # noqa: E731
    transform = train_transform("cifar", 8, [0.5] * 3, [0.25] * 3, evaluate)
    padded = torch.nn.functional.pad(torch.from_numpy(pixels).permute(2, 0, 1), (4, 4, 4, 4))
    candidates = {}
    for dy in range(9):
        for dx in range(9):
            crop = (padded[:, dy : dy + 8, dx : dx + 8].float() / 255 - 0.5) / 0.25
            candidates[dy, dx, False], candidates[dy, dx, True] = crop, crop.flip(-1)
    assert torch.equal(candidates[4, 4, False][:, :, 0], candidates[4, 4, True][:, :, 7])
    torch.manual_seed(0)
    seen = []
    for _ in range(64):
        out = transform(PILImage.fromarray(pixels))
        assert out.shape == (3, 8, 8) and out.dtype == torch.float32
        matches = [key for key, crop in candidates.items() if torch.allclose(out, crop, atol=1e-6, rtol=0)]
        assert len(matches) == 1, matches
        seen.append(matches[0])
    flipped = sum(flip for _, _, flip in seen)
    assert 16 <= flipped <= 48  # p = 0.5
    assert len({(dy, dx) for dy, dx, _ in seen}) > 20  # the offsets vary
    assert train_transform("none", 8, [0.5] * 3, [0.25] * 3, evaluate) is evaluate
    with pytest.raises(ValueError, match="augmentation"):
        train_transform("autoaugment", 8, [0.5] * 3, [0.25] * 3, evaluate)


def test_imagenet_augmentation_flips_left_right():
    """A horizontal ramp (dark left, bright right, the same in every row): an unflipped crop keeps the
    ramp rising left to right, a flipped one falling; rows stay equal (no up-down flip)."""
    ramp = np.repeat(np.repeat((np.arange(64) * 4).astype(np.uint8)[None, :, None], 48, axis=0), 3, axis=2)
    transform = train_transform("imagenet", 16, [0.0] * 3, [1.0] * 3, None)
    torch.manual_seed(0)
    directions = []
    for _ in range(64):
        out = transform(PILImage.fromarray(ramp))
        assert out.shape == (3, 16, 16)
        torch.testing.assert_close(out, out[:, :1, :].expand_as(out))  # every row alike
        columns = out[0, 0]
        rising, falling = bool((columns.diff() >= 0).all()), bool((columns.diff() <= 0).all())
        assert rising != falling, columns
        directions.append(falling)
    assert 16 <= sum(directions) <= 48


def test_imagenet_augmentation_gives_the_model_size():
    transform = train_transform("imagenet", 32, [0.5] * 3, [0.5] * 3, None)
    image = PILImage.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8))
    assert transform(image).shape == (3, 32, 32)


def test_prepared_fashion_mnist_writes_once(tmp_path, capsys):
    from hf_mixup.data import prepared_fashion_mnist

    out = str(tmp_path / "fm")
    assert prepared_fashion_mnist(out) == out
    assert "wrote" in capsys.readouterr().out
    data = load_from_disk(out)
    assert len(data["train"]) == 60000 and len(data["test"]) == 10000
    assert prepared_fashion_mnist(out) == out and "wrote" not in capsys.readouterr().out  # already there
