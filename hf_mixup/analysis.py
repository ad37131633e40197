"""What a classifier does in between its training examples (the paper's Figures 1b and 2).

`between_examples` draws random pairs ``(i, j)`` of training examples with different labels and, for each
``lam`` of a grid, evaluates the model at the mixed input ``x = lam * x_i + (1 - lam) * x_j``:

- the miss rate: the share of pairs whose prediction (argmax of the logits) is neither ``y_i`` nor ``y_j``
  (Figure 2a); at ``lam = 1`` it counts the model's errors on ``x_i`` that land outside ``{y_i, y_j}``, at
  ``lam = 0`` those on ``x_j``;
- the gradient norm: the mean over pairs of ``|| d loss / d x ||_2`` (Figure 2b), where the loss of a pair
  is the mixed-target cross-entropy ``lam * CE(logits, y_i) + (1 - lam) * CE(logits, y_j)``, the loss
  mixup trains on. The gradient is taken with respect to the input as the model receives it (normalised
  pixels for an image checkpoint, standardised features for the table MLP).

A model trained with mixup misses less and has smaller gradients between examples than one trained
with ERM. `draw_pairs` is the pair drawing alone, so that several models can be compared on the same
pairs (the same ``seed`` gives the same pairs too).

Any model works that takes the input as its first positional argument and returns the logits
``[B, num_classes]``, a transformers output with ``.logits`` or a tuple whose first item is the logits:
image classifiers (``pixel_values`` ``[B, C, H, W]``), `TabularMLPForPrediction` (``[B, F]``),
`SpeechCNNForAudioClassification` (spectrograms ``[B, 1, H, W]``). The model runs in eval mode; each
module's mode, the parameters' ``requires_grad`` and ``.grad``, and the caller's tensors are left as
they were.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .losses import logits_of

__all__ = ["DEFAULT_LAMBDAS", "BetweenExamples", "between_examples", "draw_pairs"]

#: 0, 0.1, ..., 1: the grid of Figure 2.
DEFAULT_LAMBDAS = tuple(i / 10 for i in range(11))


@dataclass
class BetweenExamples:
    """The curves of `between_examples`, one value per ``lam``.

    ``miss_rate[k]``: share (in [0, 1]) of pairs predicted as neither of their two labels at
    ``lambdas[k]``; ``grad_norm[k]``: mean over pairs of the L2 norm of the gradient of the
    mixed-target loss with respect to the mixed input. ``first`` / ``second``: the pairs' example
    indices ``i`` / ``j`` (``x = lam * x_first + (1 - lam) * x_second``).
    """

    lambdas: list[float]
    miss_rate: list[float]
    grad_norm: list[float]
    num_pairs: int
    first: list[int]
    second: list[int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------- pairs


def _check_labels(labels: torch.Tensor, size: int | None = None) -> None:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a 1-D tensor of class ids [N], got {shape}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids (e.g. torch.long), not {labels.dtype}")
    if size is not None and labels.shape[0] != size:
        raise ValueError(
            f"labels has {labels.shape[0]} class ids but pixel_values has {size} examples: give one label per example"
        )
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError(f"labels must be class ids >= 0, found {int(labels.min())}")


def _check_count(value: Any, name: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1 ({what}), not {value!r}")
    return int(value)


def draw_pairs(labels: torch.Tensor, num_pairs: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_pairs`` random ordered pairs ``(first[k], second[k])`` of examples with different labels.

    ``labels`` ``[N]`` integer class ids. ``first`` is uniform over all examples and ``second`` uniform
    over the examples of another class than ``first``'s (pairs are drawn independently, with
    replacement). Returns two ``[num_pairs]`` long tensors of indices on the CPU, drawn from a
    `torch.Generator` seeded with ``seed``: the same labels and seed give the same pairs.
    """
    num_pairs = _check_count(num_pairs, "num_pairs", "the number of pairs to draw")
    _check_labels(labels)
    labels = labels.detach().cpu().long()
    classes, counts = torch.unique(labels, return_counts=True)
    if classes.numel() < 2:
        present = "no labels" if classes.numel() == 0 else f"only class {int(classes[0])}"
        raise ValueError(f"pairs of different classes need examples of at least two classes; labels hold {present}")
    generator = torch.Generator().manual_seed(int(seed))
    n = labels.shape[0]
    first = torch.randint(n, (num_pairs,), generator=generator)
    # The examples sorted by class: the other classes' examples are the positions before and after the
    # block of first's class, so a uniform position among the (n - count) others maps onto one of them.
    order = torch.argsort(labels, stable=True)
    block = torch.searchsorted(classes, labels[first])
    start = torch.cumsum(counts, 0) - counts
    others = n - counts[block]
    position = (torch.rand(num_pairs, generator=generator, dtype=torch.float64) * others).long()
    position = torch.minimum(position, others - 1)
    position = torch.where(position < start[block], position, position + counts[block])
    return first, order[position]


def _check_pairs(pairs: Any, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(pairs, (tuple, list)) or len(pairs) != 2:
        raise ValueError("pairs must be two index tensors (first, second), as draw_pairs returns")
    first, second = (torch.as_tensor(p).detach().cpu() for p in pairs)
    if first.dim() != 1 or first.shape != second.shape or first.numel() == 0:
        raise ValueError(
            "pairs must be two 1-D index tensors of the same length >= 1, got shapes "
            f"{tuple(first.shape)} and {tuple(second.shape)}"
        )
    if first.is_floating_point() or second.is_floating_point():
        raise ValueError("pairs must hold integer example indices")
    n = labels.shape[0]
    for name, index in (("first", first), ("second", second)):
        if int(index.min()) < 0 or int(index.max()) >= n:
            raise ValueError(f"pairs' {name} indices must lie in [0, {n}), the examples given")
    same = labels[first] == labels[second]
    if bool(same.any()):
        k = int(same.nonzero()[0])
        raise ValueError(
            f"pair {k} ({int(first[k])}, {int(second[k])}) joins two examples of class {int(labels[first[k]])}: "
            "pairs must be of different classes"
        )
    return first.long(), second.long()


def _check_lambdas(lambdas: Any) -> list[float]:
    if isinstance(lambdas, torch.Tensor):
        lambdas = lambdas.flatten().tolist()
    if isinstance(lambdas, (numbers.Real, str)) or not isinstance(lambdas, Sequence):
        raise ValueError(f"lambdas must be a sequence of numbers in [0, 1], e.g. [0, 0.5, 1], not {lambdas!r}")
    if len(lambdas) == 0:
        raise ValueError("lambdas is empty: give at least one mixing weight in [0, 1]")
    values = []
    for lam in lambdas:
        if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not math.isfinite(lam) or not 0 <= lam <= 1:
            raise ValueError(
                f"every lambda must be a number in [0, 1] (the weight of the pair's first example), got {lam!r}"
            )
        values.append(float(lam))
    return values


# --------------------------------------------------------------------------------------------- the model


@contextmanager
def _evaluating_inputs_only(model: nn.Module):
    """Every module in eval mode and no parameter requiring a gradient inside the block (autograd on even
    under `torch.no_grad()` / `torch.inference_mode()`); each module's mode and each parameter's
    ``requires_grad`` restored after it. ``.grad`` is never touched."""
    modes = [(module, module.training) for module in model.modules()]
    parameters = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    try:
        for p, _ in parameters:
            p.requires_grad_(False)
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        for p, requires_grad in parameters:
            p.requires_grad_(requires_grad)
        for module, training in modes:
            module.training = training


def _device_of(model: nn.Module, fallback: torch.device) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return fallback


# --------------------------------------------------------------------------------------------- the curves


def between_examples(
    model: nn.Module,
    pixel_values: torch.Tensor,
    labels: torch.Tensor,
    *,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    num_pairs: int | None = 1000,
    seed: int = 0,
    batch_size: int = 256,
    pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> BetweenExamples:
    """Miss rate and input-gradient norm of ``model`` in between pairs of examples of different classes.

    ``pixel_values`` ``[N, ...]`` float: the examples as the model takes them (images ``[N, C, H, W]``,
    table rows ``[N, F]``, spectrograms ...); ``labels`` ``[N]`` integer class ids. ``num_pairs`` pairs
    ``(i, j)`` with ``labels[i] != labels[j]`` are drawn with `draw_pairs` (a `torch.Generator` seeded
    with ``seed``), or given as ``pairs=(first, second)`` (then ``num_pairs`` may be None or must equal
    their number). For each ``lam`` in ``lambdas`` (numbers in [0, 1]) the model is evaluated at
    ``x = lam * x_i + (1 - lam) * x_j``, ``batch_size`` pairs at a time, and gives:

    - ``miss_rate``: the share of pairs whose prediction (argmax) is in neither ``{y_i, y_j}``;
    - ``grad_norm``: the mean over pairs of the L2 norm of ``d loss / d x`` for the pair's own loss,
      the mixed-target cross-entropy ``lam * CE(logits, y_i) + (1 - lam) * CE(logits, y_j)``, with
      respect to the mixed input as the model receives it (computed in float32 at least).

    The model runs in eval mode (so a pair's result does not depend on the others in its batch) on
    the device of its parameters; its modules' modes, its parameters' ``requires_grad`` and ``.grad``
    and the caller's tensors are left as they were. Raises ValueError for labels of fewer than two
    classes, ``num_pairs < 1``, lambdas outside [0, 1], mismatched shapes, or logits that are not
    ``[B, num_classes]`` with every label below ``num_classes``.
    """
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.dim() < 2 or not pixel_values.is_floating_point():
        shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
        raise ValueError(f"pixel_values must be a float tensor [N, ...] of examples, got {shape}")
    _check_labels(labels, pixel_values.shape[0])
    lambdas = _check_lambdas(lambdas)
    batch_size = _check_count(batch_size, "batch_size", "pairs per forward pass")
    labels = labels.detach().cpu().long()
    if pairs is None:
        if num_pairs is None:
            raise ValueError("give num_pairs (the number of pairs to draw) or pairs=(first, second)")
        first, second = draw_pairs(labels, num_pairs, seed=seed)
    else:
        first, second = _check_pairs(pairs, labels)
        if num_pairs is not None and _check_count(num_pairs, "num_pairs", "the number of pairs") != first.numel():
            raise ValueError(
                f"num_pairs is {num_pairs} but pairs holds {first.numel()} pairs: give num_pairs=None with pairs"
            )
    total = first.numel()
    device = _device_of(model, pixel_values.device)
    work = torch.promote_types(pixel_values.dtype, torch.float32)  # the mixing, in float32 at least
    misses = [0] * len(lambdas)
    norm_sums = [0.0] * len(lambdas)
    with _evaluating_inputs_only(model):
        for start in range(0, total, batch_size):
            i, j = first[start:start + batch_size], second[start:start + batch_size]
            x_i = pixel_values.detach()[i.to(pixel_values.device)].to(device)
            x_j = pixel_values.detach()[j.to(pixel_values.device)].to(device)
            y_i, y_j = labels[i].to(device), labels[j].to(device)
            a, b = x_i.to(work), x_j.to(work)
            for k, lam in enumerate(lambdas):
                x = (lam * a + (1 - lam) * b).to(pixel_values.dtype).requires_grad_(True)
                logits = logits_of(model(x))
                if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
                    raise ValueError(
                        f"the model's logits have shape {tuple(logits.shape)}; between_examples needs [B, num_classes] "
                        f"with B = {x.shape[0]}, the batch of mixed inputs"
                    )
                if int(max(y_i.max(), y_j.max())) >= logits.shape[1]:
                    raise ValueError(
                        f"labels go up to {int(labels.max())} but the model has {logits.shape[1]} classes: "
                        "give class ids below the model's num_labels"
                    )
                logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
                loss = lam * F.cross_entropy(logits, y_i, reduction="none") + (1 - lam) * F.cross_entropy(
                    logits, y_j, reduction="none"
                )
                # In eval mode the examples of a batch do not interact: the gradient of the summed loss
                # holds each pair's own gradient in its row.
                (gradient,) = torch.autograd.grad(loss.sum(), x)
                predicted = logits.detach().argmax(dim=-1)
                misses[k] += int(((predicted != y_i) & (predicted != y_j)).sum())
                norm_sums[k] += float(gradient.detach().flatten(1).double().norm(dim=1).sum())
    return BetweenExamples(
        lambdas=lambdas,
        miss_rate=[m / total for m in misses],
        grad_norm=[s / total for s in norm_sums],
        num_pairs=total,
        first=first.tolist(),
        second=second.tolist(),
    )
