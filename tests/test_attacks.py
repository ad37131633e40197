"""hf_mixup.robustness.attacks (FGSM, I-FGSM; Section 3.5, Table 3) on a small CNN trained on real digits,
held against torchattacks, and scripts/attack.py on a saved timm-wrapper checkpoint."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT
from torch import nn

from hf_mixup.robustness.attacks import fgsm, input_normalization, iterative_fgsm

MEAN = [0.2, 0.5, 0.7]
STD = [0.3, 0.25, 0.5]


def small_cnn(channels: int = 1, dropout: float = 0.0) -> nn.Sequential:
    """Conv(16) -> ReLU -> max-pool -> dropout -> linear: [B, channels, 8, 8] pixels in [0, 1] -> 10 logits."""
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(16 * 4 * 4, 10),
    )


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits as [N, 1, 8, 8] pixels in [0, 1]: (train images, labels, test images, labels)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target, dtype=torch.long)
    return pixels[:1400], labels[:1400], pixels[1400:], labels[1400:]


def train(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, steps: int = 150) -> nn.Module:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(pixels), labels).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return model.eval()


@pytest.fixture(scope="module")
def trained(digits):
    """The small CNN (dropout 0.5) trained on 1,400 digits; eval mode."""
    torch.manual_seed(0)
    return train(small_cnn(dropout=0.5), digits[0], digits[1])


def error(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(pixels).argmax(-1) != labels).float().mean().item()


def input_gradient(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d (summed cross-entropy) / d pixels, in eval mode."""
    model.eval()
    x = pixels.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="sum"), x)
    return gradient


def test_the_model_is_trained(trained, digits):
    assert error(trained, digits[2], digits[3]) < 0.1


# --------------------------------------------------------------------------------------------- FGSM / I-FGSM


def test_fgsm_moves_each_pixel_by_epsilon_times_the_gradient_sign_clipped_to_the_pixel_range(trained, digits):
    x, y = digits[2][:64], digits[3][:64]
    epsilon = 8 / 255
    adversarial = fgsm(trained, x, y, epsilon)
    sign = input_gradient(trained, x, y).sign()
    stepped = x + epsilon * sign
    inside = (stepped >= 0) & (stepped <= 1)
    # Both cases occur: the digits' background (0) pushed down is clipped, most other pixels are not.
    assert 0.2 < inside.float().mean() < 0.95
    assert torch.equal(adversarial[inside], stepped[inside])
    assert torch.equal(adversarial[~inside], stepped[~inside].clamp(0, 1))
    assert set(adversarial[~inside].unique().tolist()) <= {0.0, 1.0}
    moved = (adversarial - x)[inside & (sign != 0)]
    assert moved.numel() > 1000
    torch.testing.assert_close(moved.abs(), torch.full_like(moved, epsilon), rtol=0, atol=1e-6)
    assert torch.equal((adversarial - x)[sign == 0], torch.zeros_like(x[sign == 0]))


def test_iterative_fgsm_stays_in_the_epsilon_ball_and_the_pixel_range_and_differs_from_fgsm(trained, digits):
    x, y = digits[2], digits[3]
    epsilon = 0.1
    one_step = fgsm(trained, x, y, epsilon)
    iterated = iterative_fgsm(trained, x, y, epsilon, steps=10)
    assert (iterated - x).abs().max() <= epsilon + 1e-6
    assert iterated.min() >= 0 and iterated.max() <= 1
    assert not torch.allclose(iterated, one_step)
    # Unlike FGSM's, its pixels are not all moved by the full epsilon (a pixel's gradient sign can change from
    # step to step), but some reach the ball's edge.
    distance = (iterated - x).abs()
    unclipped = (x >= epsilon) & (x <= 1 - epsilon)
    assert ((distance > 1e-6) & (distance < epsilon - 1e-6) & unclipped).any()
    assert (distance > epsilon - 1e-6).any()
    assert torch.equal(iterative_fgsm(trained, x, y, epsilon, steps=1), one_step)
    assert error(trained, iterated, y) >= error(trained, one_step, y)


class Normalised(nn.Module):
    """``model`` taking normalised inputs ``(pixels - mean) / std``, ``[B, 3, H, W]``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x):
        return self.model(x * self.std + self.mean)


@pytest.fixture(scope="module")
def trained_rgb(digits):
    """A 3-channel small CNN trained on the digits' pixels, [B, 3, 8, 8] in [0, 1]; eval mode."""
    torch.manual_seed(1)
    return train(small_cnn(channels=3), digits[0].expand(-1, 3, -1, -1), digits[1], steps=60)


@pytest.mark.parametrize("attack", [fgsm, partial(iterative_fgsm, steps=5)], ids=["fgsm", "ifgsm"])
def test_with_mean_and_std_the_attack_is_in_raw_pixels(attack, trained_rgb, digits):
    on_pixels = trained_rgb
    on_inputs = Normalised(on_pixels)
    pixels, y = digits[2][:128].expand(-1, 3, -1, -1), digits[3][:128]
    mean, std = on_inputs.mean, on_inputs.std
    inputs = (pixels - mean) / std
    epsilon = 8 / 255
    adversarial = attack(on_inputs, inputs, y, epsilon, mean=MEAN, std=STD)
    assert adversarial.min() < -0.5  # returned in the model's (normalised) input space
    expected = attack(on_pixels, pixels, y, epsilon)
    torch.testing.assert_close(adversarial * std + mean, expected, rtol=0, atol=1e-5)
    # Sequences, tensors and [C, 1, 1] shapes are all one value per channel.
    again = attack(on_inputs, inputs, y, epsilon, mean=torch.tensor(MEAN), std=torch.tensor(STD).view(3, 1, 1))
    torch.testing.assert_close(again, adversarial, rtol=0, atol=0)


def test_white_box_error_rises_with_epsilon(trained, digits):
    x, y = digits[2], digits[3]
    clean = error(trained, x, y)
    epsilons = [0, 2 / 255, 8 / 255, 0.05, 0.1, 0.2, 0.3]
    for attack in (fgsm, iterative_fgsm):
        errors = [error(trained, attack(trained, x, y, e), y) for e in epsilons]
        assert errors[0] == clean
        assert all(a <= b for a, b in zip(errors, errors[1:])), (attack.__name__, errors)
        assert errors[-1] > clean + 0.5, (attack.__name__, errors)


def test_the_model_mode_grads_and_the_callers_tensors_are_left_as_they_were(trained, digits):
    model = copy.deepcopy(trained).train()
    model[0].eval()  # a mix of modes, restored module by module
    model[0].weight.grad = torch.full_like(model[0].weight, 0.5)
    modes = [m.training for m in model.modules()]
    x, y = digits[2][:32].clone(), digits[3][:32].clone()
    x_before, y_before = x.clone(), y.clone()
    for attack in (fgsm, partial(iterative_fgsm, steps=3)):
        adversarial = attack(model, x, y, 0.1)
        assert [m.training for m in model.modules()] == modes
        assert torch.equal(model[0].weight.grad, torch.full_like(model[0].weight, 0.5))
        assert all(p.grad is None for name, p in model.named_parameters() if name != "0.weight")
        assert torch.equal(x, x_before) and torch.equal(y, y_before) and not x.requires_grad
        assert not adversarial.requires_grad and adversarial.dtype == x.dtype and adversarial.device == x.device
        assert adversarial.shape == x.shape
        # The attack runs in eval mode (dropout 0.5 off): the same as attacking the model in eval mode.
        assert torch.equal(adversarial, attack(trained, x, y, 0.1))
        with torch.no_grad():
            assert torch.equal(attack(model, x, y, 0.1), adversarial)
        with torch.inference_mode():
            made_in_inference = x.clone()
        assert torch.equal(attack(model, made_in_inference, y, 0.1), adversarial)


def test_other_dtypes_come_back_as_they_went_in(trained, digits):
    x, y = digits[2][:16].double(), digits[3][:16]
    adversarial = fgsm(copy.deepcopy(trained).double(), x, y, 0.1)
    assert adversarial.dtype == torch.float64
    torch.testing.assert_close(adversarial.float(), fgsm(trained, x.float(), y, 0.1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("attack", [fgsm, partial(iterative_fgsm, steps=3)], ids=["fgsm", "ifgsm"])
def test_half_precision_inputs_come_back_in_their_dtype(trained, digits, dtype, attack):
    """A bf16 / fp16 model and input (mixed-precision evaluation): the adversarial images keep the dtype, stay in
    the pixel range and the epsilon ball, and are the float32 attack's on the same rounded weights and images up to
    the dtype's rounding; with mean / std too."""
    model = copy.deepcopy(trained).to(dtype)
    pixels, y = digits[2][:32].to(dtype), digits[3][:32]
    epsilon = 0.1
    resolution = float(torch.finfo(dtype).eps)  # spacing just below 1, the largest pixel
    adversarial = attack(model, pixels, y, epsilon)
    assert adversarial.dtype == dtype and adversarial.shape == pixels.shape and not adversarial.requires_grad
    assert float(adversarial.min()) >= 0 and float(adversarial.max()) <= 1
    assert float((adversarial.float() - pixels.float()).abs().max()) <= epsilon + 2 * resolution
    expected = attack(copy.deepcopy(model).float(), pixels.float(), y, epsilon)
    close = (adversarial.float() - expected).abs() <= 2 * resolution
    assert float(close.float().mean()) > 0.9  # a gradient's sign may flip where it is near 0 in half precision
    # Normalised inputs come back normalised, in the dtype. (Not compared with float32: in fp16, the input gradient
    # of confidently classified examples can underflow to 0, and those pixels then do not move.)
    inputs = (pixels - 0.5) / 0.25
    normalised = attack(model, inputs, y, epsilon, mean=[0.5], std=[0.25])
    assert normalised.dtype == dtype and normalised.shape == inputs.shape
    raw = normalised.float() * 0.25 + 0.5
    assert float(raw.min()) >= -4 * resolution and float(raw.max()) <= 1 + 4 * resolution
    assert float((raw - pixels.float()).abs().max()) <= epsilon + 4 * resolution


# --------------------------------------------------------------------------------------------- torchattacks


def test_the_attacks_agree_with_torchattacks(trained, digits):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = digits[2][:200], digits[3][:200]
    model = copy.deepcopy(trained).train()  # torchattacks, like ours, attacks in eval mode
    for epsilon in (2 / 255, 8 / 255, 0.1):
        reference = torchattacks.FGSM(model, eps=epsilon)(x, y)
        torch.testing.assert_close(fgsm(model, x, y, epsilon), reference, rtol=0, atol=1e-6)
        reference = torchattacks.BIM(model, eps=epsilon, alpha=epsilon / 10, steps=10)(x, y)
        torch.testing.assert_close(iterative_fgsm(model, x, y, epsilon, steps=10), reference, rtol=0, atol=1e-6)
    assert model.training


def test_with_mean_and_std_the_attacks_agree_with_torchattacks_normalisation(trained_rgb, digits):
    torchattacks = pytest.importorskip("torchattacks")
    on_inputs = Normalised(trained_rgb)
    pixels, y = digits[2][:200].expand(-1, 3, -1, -1), digits[3][:200]
    inputs = (pixels - on_inputs.mean) / on_inputs.std
    epsilon = 8 / 255
    reference = torchattacks.FGSM(on_inputs, eps=epsilon)
    reference.set_normalization_used(MEAN, STD)  # then it takes and returns normalised inputs, like ours
    torch.testing.assert_close(fgsm(on_inputs, inputs, y, epsilon, mean=MEAN, std=STD), reference(inputs, y), rtol=0, atol=1e-5)
    reference = torchattacks.BIM(on_inputs, eps=epsilon, alpha=epsilon / 10, steps=10)
    reference.set_normalization_used(MEAN, STD)
    ours = iterative_fgsm(on_inputs, inputs, y, epsilon, steps=10, mean=MEAN, std=STD)
    torch.testing.assert_close(ours, reference(inputs, y), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------------------- transformers models


def test_transformers_classifiers_and_their_normalisation(digits):
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    from hf_mixup.models import create_timm_classifier

    x, y = digits[2][:16].expand(-1, 3, -1, -1), digits[3][:16]
    wrapper = create_timm_classifier("resnet18", 10, image_size=8, model_args={"channels": [8, 8, 8, 8]}).eval()
    for attack in (fgsm, iterative_fgsm):
        torch.testing.assert_close(attack(wrapper, x, y, 0.1), attack(wrapper.timm_model, x, y, 0.1), rtol=0, atol=0)
    mean, std = input_normalization(wrapper)
    assert mean == wrapper.config.pretrained_cfg["mean"] and std == wrapper.config.pretrained_cfg["std"]
    inputs = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert fgsm(wrapper, inputs, y, 0.1, mean=mean, std=std).shape == x.shape

    config = ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 8], depths=[1, 1], num_labels=10)
    native = ResNetForImageClassification(config).eval()
    adversarial = iterative_fgsm(native, x, y, 0.1, steps=2)
    assert (adversarial - x).abs().max() <= 0.1 + 1e-6
    processor = ViTImageProcessor(image_mean=MEAN, image_std=STD)
    assert input_normalization(native, processor) == (MEAN, STD)
    assert input_normalization(native, ViTImageProcessor(do_normalize=False)) == (None, None)


# --------------------------------------------------------------------------------------------- bad input


def test_bad_input_is_a_value_error_saying_what_to_change(trained, digits):
    x, y = digits[2][:4], digits[3][:4]
    with pytest.raises(ValueError, match="epsilon must be a finite number >= 0"):
        fgsm(trained, x, y, -0.1)
    with pytest.raises(ValueError, match="steps must be a whole number >= 1"):
        iterative_fgsm(trained, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match=r"labels must be a tensor of 4 class ids"):
        fgsm(trained, x, y[:3], 0.1)
    with pytest.raises(ValueError, match="labels must be integer class ids"):
        fgsm(trained, x, y.float(), 0.1)
    with pytest.raises(ValueError, match=r"pixel_values must be a float tensor \[B, C, H, W\]"):
        fgsm(trained, x[0], y, 0.1)
    with pytest.raises(ValueError, match="mean has 3 values but pixel_values has 1 channels"):
        fgsm(trained, x, y, 0.1, mean=MEAN, std=[0.5])
    with pytest.raises(ValueError, match="std has 2 values but pixel_values has 1 channels"):
        iterative_fgsm(trained, x, y, 0.1, mean=[0.5], std=[0.5, 0.5])
    with pytest.raises(ValueError, match="give both mean and std"):
        fgsm(trained, x, y, 0.1, mean=[0.5])
    with pytest.raises(ValueError, match="std must be positive"):
        fgsm(trained, x, y, 0.1, mean=[0.5], std=[0.0])


# --------------------------------------------------------------------------------------------- scripts/attack.py


def save_digits_checkpoint(path, seed: int, steps: int):
    """A small PreAct ResNet-18 (timm wrapper) trained on the digits through its own transforms; saved."""
    from hf_mixup.cli.images import image_transforms
    from hf_mixup.data import load_any_dataset
    from hf_mixup.models import create_timm_classifier

    data = load_any_dataset("digits")
    names = data["train"].features["label"].names
    model = create_timm_classifier("preact_resnet18", names, image_size=8, model_args={"channels": [8, 16, 16, 16]})
    _, transform = image_transforms(model, "none")
    pixels = torch.stack([transform(image.convert("RGB")) for image in data["train"]["image"]])
    labels = torch.tensor(data["train"]["label"])
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = torch.randint(0, len(labels), (128,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(model(pixel_values=pixels[batch]).logits, labels[batch]).backward()
        optimizer.step()
    model.eval().save_pretrained(path)
    test = data["test"].select(range(96))
    test_pixels = torch.stack([transform(image.convert("RGB")) for image in test["image"]])
    with torch.no_grad():
        logits = model(pixel_values=test_pixels).logits
    test_labels = torch.tensor(test["label"])
    top1 = int((logits.argmax(-1) != test_labels).sum()) / len(test_labels)
    top5 = int((logits.topk(5, -1).indices != test_labels[:, None]).all(-1).sum()) / len(test_labels)
    return top1, top5


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "attack.py"), *args], capture_output=True, text=True, env=env, cwd=ROOT,
        timeout=600,
    )


@pytest.mark.slow
def test_attack_script_white_and_black_box(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first_error = save_digits_checkpoint(first, seed=0, steps=40)
    second_error = save_digits_checkpoint(second, seed=1, steps=20)
    output = tmp_path / "results" / "attack_digits"
    done = run_script(
        "--model", str(first), "--model", str(second), "--source", str(first), "--dataset_name", "digits",
        "--split", "test", "--max_samples", "96", "--batch_size", "40", "--epsilon", "8/255",
        "--epsilons", "2/255", "8/255", "0.1", "--attacks", "fgsm", "ifgsm", "--steps", "3", "--output", str(output),
        "--disable_tqdm",
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(output.with_suffix(".json").read_text())
    assert record["samples"] == 96 and record["top5"] and record["command"].startswith("python ")
    assert record["epsilons"] == pytest.approx([2 / 255, 8 / 255, 0.1])
    assert output.with_suffix(".md").is_file() and output.with_suffix(".png").is_file()
    rows = {(r["setting"], r["source"], r["target"], r["attack"], r["epsilon"]): r for r in record["results"]}
    for r in record["results"]:
        assert 0 <= r["top1_error"] <= 1 and 0 <= r["top5_error"] <= r["top1_error"]
    for path, (top1, top5) in ((str(first), first_error), (str(second), second_error)):
        clean = rows[("white box", path, path, "clean", 0.0)]
        assert clean["top1_error"] == pytest.approx(top1, abs=1e-9)
        assert clean["top5_error"] == pytest.approx(top5, abs=1e-9)
        for attack in ("fgsm", "ifgsm"):
            errors = [rows[("white box", path, path, attack, e)]["top1_error"] for e in record["epsilons"]]
            assert all(e >= clean["top1_error"] for e in errors)
    assert first_error[0] < 0.5  # trained: the attack has something to take away
    assert rows[("white box", str(first), str(first), "ifgsm", 0.1)]["top1_error"] > first_error[0]
    # Black box: crafted on the first model, evaluated on the second (and not on the source itself).
    assert rows[("black box", str(first), str(second), "clean", 0.0)]["top1_error"] == pytest.approx(second_error[0])
    assert ("black box", str(first), str(second), "fgsm", 8 / 255) in rows
    assert not any(key[0] == "black box" and key[2] == str(first) for key in rows)
    table = output.with_suffix(".md").read_text()
    assert "I-FGSM top-5" in table and "8/255" in table


@pytest.mark.slow
def test_attack_script_reports_a_mistake_in_one_line(tmp_path):
    done = run_script("--model", str(tmp_path / "absent"), "--dataset_name", "digits", "--epsilon", "4")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "write 4/255" in done.stderr
    done = run_script("--model", str(tmp_path / "absent"), "--dataset_name", "digits", "--split", "validation")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "'validation' is not a split" in done.stderr
    done = run_script("--model", str(tmp_path / "absent"), "--dataset_name", "digits", "--max_samples", "8")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "could not load the checkpoint --model" in done.stderr
