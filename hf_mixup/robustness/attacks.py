"""White-box adversarial examples for image classifiers (Section 3.5, Table 3 of the paper).

- `fgsm`: the Fast Gradient Sign Method (Goodfellow et al., 2015), one step of ``epsilon * sign(grad)``;
- `iterative_fgsm`: I-FGSM (Kurakin et al., 2017), ``steps`` steps of ``epsilon / steps``, each projected
  onto the epsilon ball (L-infinity) around the original image and onto the pixel range [0, 1];
- `input_normalization`: the per-channel mean and std a checkpoint normalises its inputs with.

Both attacks take and return ``pixel_values`` as the model takes them (``[B, C, H, W]``, normalised with
``mean`` / ``std`` when given), while ``epsilon`` and the clipping are in raw pixel units, [0, 1]: the
paper's epsilon = 4 (out of 255) is ``epsilon=4 / 255``. The inputs are unnormalised, attacked and
normalised again. The loss is the cross-entropy of the logits against the class ids ``labels``.

The model runs in eval mode during an attack (dropout off, batch norm on its running statistics); every
module's train/eval mode is restored afterwards, the parameters' ``.grad`` are left untouched (the
gradient is taken with respect to the input only), and the caller's tensors are not modified.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import logits_of

__all__ = ["fgsm", "input_normalization", "iterative_fgsm", "model_logits"]


# --------------------------------------------------------------------------------------------- the model


def model_logits(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """The logits ``[B, num_classes]`` of ``model`` on ``pixel_values`` ``[B, C, H, W]``.

    A transformers image classifier (``*ForImageClassification``, `TimmWrapperForImageClassification`)
    is called as ``model(pixel_values=x)`` and its output's ``.logits`` taken; a plain `nn.Module` is
    called as ``model(x)`` and may return the logits, an object with ``.logits`` or a tuple whose first
    item is the logits.
    """
    if _takes_pixel_values(model):
        output = model(pixel_values=pixel_values)
    else:
        output = model(pixel_values)
    return logits_of(output)


def _takes_pixel_values(model: nn.Module) -> bool:
    try:
        return "pixel_values" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # no inspectable signature
        return False


@contextmanager
def _gradients_allowed(pixel_values: torch.Tensor):
    """Autograd on inside the block, even under `torch.no_grad()` or `torch.inference_mode()`; yields
    ``pixel_values``, copied when it was made in inference mode (such a tensor cannot take a gradient)."""
    with torch.inference_mode(False), torch.enable_grad():
        yield pixel_values.clone() if pixel_values.is_inference() else pixel_values


@contextmanager
def _eval_mode(model: nn.Module):
    """Every module in eval mode inside the block; each module's own mode restored after it."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def input_normalization(model: nn.Module, processor: Any = None) -> tuple[list[float] | None, list[float] | None]:
    """The per-channel ``(mean, std)`` a checkpoint normalises its [0, 1] pixels with, ``(None, None)``
    when it does not normalise.

    A `TimmWrapperForImageClassification` carries them in ``config.pretrained_cfg`` (``mean``, ``std``);
    any other checkpoint in its image processor (``image_mean``, ``image_std``, when ``do_normalize``),
    which is ``processor`` when given and otherwise loaded with ``AutoImageProcessor.from_pretrained``
    from the model's ``name_or_path``.
    """
    config = getattr(model, "config", None)
    pretrained_cfg = getattr(config, "pretrained_cfg", None)
    if processor is None and isinstance(pretrained_cfg, dict) and "mean" in pretrained_cfg and "std" in pretrained_cfg:
        return [float(v) for v in pretrained_cfg["mean"]], [float(v) for v in pretrained_cfg["std"]]
    if processor is None:
        name = getattr(model, "name_or_path", None) or getattr(config, "_name_or_path", None)
        if not name:
            raise ValueError(
                "the model has no pretrained_cfg and no name_or_path to load its image processor from: "
                "pass processor= (its image processor), or give mean/std to the attack yourself"
            )
        from transformers import AutoImageProcessor

        try:
            processor = AutoImageProcessor.from_pretrained(name)
        except OSError as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(
                f"could not load the image processor of {name!r} ({reason}): pass processor=, or give mean/std "
                "to the attack yourself"
            ) from error
    if not getattr(processor, "do_normalize", True):
        return None, None
    mean, std = getattr(processor, "image_mean", None), getattr(processor, "image_std", None)
    if mean is None or std is None:
        return None, None
    channels = getattr(config, "num_channels", None)
    return _as_list(mean, channels), _as_list(std, channels)


def _as_list(values: Any, channels: int | None) -> list[float]:
    """Per-channel values as floats; one number is repeated for each of ``channels`` channels."""
    if isinstance(values, numbers.Real):
        return [float(values)] * (channels or 1)
    return [float(v) for v in values]


# --------------------------------------------------------------------------------------------- checks


def _check_epsilon(epsilon: float) -> float:
    if isinstance(epsilon, torch.Tensor):
        if epsilon.numel() != 1:
            raise ValueError(f"epsilon must be one number (in [0, 1] pixel units), not a tensor of shape {tuple(epsilon.shape)}")
        epsilon = epsilon.item()
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
        raise ValueError(f"epsilon must be a number in [0, 1] pixel units (e.g. 4 / 255), not {epsilon!r}")
    epsilon = float(epsilon)
    if not math.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be a finite number >= 0 in [0, 1] pixel units (e.g. 4 / 255), not {epsilon}")
    return epsilon


def _check_inputs(pixel_values: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.dim() != 4 or not pixel_values.is_floating_point():
        shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
        raise ValueError(f"pixel_values must be a float tensor [B, C, H, W], got {shape}")
    if not isinstance(labels, torch.Tensor) or labels.shape != pixel_values.shape[:1]:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(
            f"labels must be a tensor of {pixel_values.shape[0]} class ids (shape [B] = ({pixel_values.shape[0]},), "
            f"one per image), got {shape}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids (e.g. torch.long), not {labels.dtype}")


def _per_channel(values: Sequence[float] | None, name: str, channels: int, like: torch.Tensor) -> torch.Tensor | None:
    """``values`` as a ``[1, C, 1, 1]`` tensor of ``like``'s dtype and device (None stays None)."""
    if values is None:
        return None
    column = torch.as_tensor(values, dtype=like.dtype, device=like.device).flatten()
    if column.numel() != channels:
        raise ValueError(
            f"{name} has {column.numel()} values but pixel_values has {channels} channels: give one {name} per channel"
        )
    if name == "std" and not bool((column > 0).all()):
        raise ValueError(f"std must be positive in every channel, got {column.tolist()}")
    return column.view(1, channels, 1, 1)


class _Normalization:
    """Conversion between the model's input space and raw [0, 1] pixels (identity without mean/std)."""

    def __init__(self, mean, std, pixel_values: torch.Tensor):
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std (the normalisation of the model's inputs), or neither")
        # Raw pixels in at least float32, so a half-precision input is attacked without rounding each step.
        self.work_dtype = torch.promote_types(pixel_values.dtype, torch.float32)
        like = pixel_values.detach().to(self.work_dtype)
        channels = pixel_values.shape[1]
        self.mean = _per_channel(mean, "mean", channels, like)
        self.std = _per_channel(std, "std", channels, like)
        self.dtype = pixel_values.dtype

    def to_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = pixel_values.detach().to(self.work_dtype)
        return x if self.mean is None else x * self.std + self.mean

    def to_inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels if self.mean is None else (pixels - self.mean) / self.std
        return x.to(self.dtype)


def _input_gradient(model: nn.Module, norm: _Normalization, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d cross-entropy / d raw pixels, ``[B, C, H, W]``; no parameter's ``.grad`` is touched."""
    pixels = pixels.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model_logits(model, norm.to_inputs(pixels))
        if logits.dim() != 2 or logits.shape[0] != labels.shape[0]:
            raise ValueError(
                f"the model's logits have shape {tuple(logits.shape)}; the attacks need [B, num_classes] with "
                f"B = {labels.shape[0]}, the images' batch size"
            )
        loss = F.cross_entropy(logits.float(), labels.to(logits.device))
        (gradient,) = torch.autograd.grad(loss, pixels)
    return gradient


# --------------------------------------------------------------------------------------------- attacks


def fgsm(
    model: nn.Module,
    pixel_values: torch.Tensor,
    labels: torch.Tensor,
    epsilon: float,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> torch.Tensor:
    """Fast Gradient Sign Method: ``clip(x + epsilon * sign(grad_x loss), 0, 1)`` in raw pixels ``x``.

    ``pixel_values`` ``[B, C, H, W]`` float, as the model takes them: normalised, ``(x - mean) / std``,
    when ``mean`` and ``std`` (one value per channel) are given, raw pixels in [0, 1] otherwise.
    ``labels`` ``[B]`` class ids; the loss is their cross-entropy. ``epsilon`` >= 0 in raw [0, 1]
    pixel units (4 / 255 is the paper's epsilon = 4). Returns the adversarial ``pixel_values``
    ``[B, C, H, W]`` in the model's input space (normalised again), with the input's dtype and
    device, detached. The model runs in eval mode; its modes, its parameters' ``.grad`` and the
    caller's tensors are left as they were.
    """
    # One step of epsilon stays inside the epsilon ball, so I-FGSM with one step is FGSM exactly.
    return iterative_fgsm(model, pixel_values, labels, epsilon, steps=1, mean=mean, std=std)


def iterative_fgsm(
    model: nn.Module,
    pixel_values: torch.Tensor,
    labels: torch.Tensor,
    epsilon: float,
    *,
    steps: int = 10,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> torch.Tensor:
    """I-FGSM (the basic iterative method): ``steps`` FGSM steps of ``epsilon / steps`` each, every
    step projected onto the L-infinity ball of radius ``epsilon`` around the original raw pixels and
    onto the pixel range [0, 1].

    Shapes, units and normalisation as in `fgsm`: ``pixel_values`` ``[B, C, H, W]`` in the model's
    input space (normalised with ``mean`` / ``std`` when given), ``labels`` ``[B]`` class ids,
    ``epsilon`` >= 0 in raw [0, 1] pixel units, ``steps`` >= 1. Returns the adversarial
    ``pixel_values`` in the model's input space, with the input's dtype and device, detached;
    ``steps=1`` is `fgsm`.
    """
    epsilon = _check_epsilon(epsilon)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1 (the number of epsilon / steps sized steps), not {steps!r}")
    _check_inputs(pixel_values, labels)
    if epsilon == 0:
        _Normalization(mean, std, pixel_values)  # still checks mean / std
        return pixel_values.detach().clone()
    with _gradients_allowed(pixel_values) as pixel_values:
        norm = _Normalization(mean, std, pixel_values)
        original = norm.to_pixels(pixel_values)
        step = epsilon / steps
        lower, upper = original - epsilon, original + epsilon
        adversarial = original
        with _eval_mode(model):
            for _ in range(steps):
                gradient = _input_gradient(model, norm, adversarial, labels)
                adversarial = adversarial + step * gradient.sign()
                adversarial = torch.minimum(torch.maximum(adversarial, lower), upper).clamp(0.0, 1.0)
        return norm.to_inputs(adversarial).detach()
