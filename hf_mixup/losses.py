"""Losses for mixed batches. Every loss function returns one loss per example (shape ``[B]``, float32);
reduce them with :func:`reduce_loss` (mean, or sum over ``num_items_in_batch`` for gradient
accumulation). :func:`logits_of` takes the logits out of whatever a classifier's forward returned."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def logits_of(output) -> torch.Tensor:
    """The logits in a classifier's output: the output itself when it is a tensor, else its ``.logits``
    (a transformers output), else the first item of a tuple or list that starts with a tensor.

    Raises ValueError when there are none.
    """
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        logits = output[0]
    if not isinstance(logits, torch.Tensor):
        raise ValueError(
            f"the model returned {type(output).__name__}, neither logits nor an output with .logits nor a tuple "
            "starting with the logits: pass a classifier that returns logits [B, num_classes]"
        )
    return logits


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy against class distributions: ``-sum_c targets[b, c] * log_softmax(logits)[b, c]``.

    ``logits`` and ``targets`` are ``[B, C]``; ``label_smoothing`` smooths the targets first, as
    ``F.cross_entropy`` does for class ids.
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and soft targets {tuple(targets.shape)} must have the same shape")
    log_probs = F.log_softmax(logits.float(), dim=-1)
    targets = targets.float()
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / targets.shape[-1]
    return -(targets * log_probs).sum(dim=-1)


def mixup_cross_entropy(
    logits: torch.Tensor,
    targets_a: torch.Tensor,
    targets_b: torch.Tensor,
    lam: torch.Tensor | float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The pair form ``lam * CE(logits, a) + (1 - lam) * CE(logits, b)`` for class ids, per example.

    Equal to :func:`soft_target_cross_entropy` against the mixed one-hot targets, without building
    them: one ``log_softmax`` and two gathers. ``lam`` is a float or a ``[B]`` tensor. With label
    smoothing ``eps``, ``CE_eps(y) = (1 - eps) * NLL(y) + eps * mean_c(-log p_c)`` (as
    ``F.cross_entropy(..., label_smoothing=eps)``), and the smoothing term is shared by both targets.
    """
    log_probs = F.log_softmax(logits.float(), dim=-1)
    nll_a = -log_probs.gather(-1, targets_a.long().unsqueeze(-1)).squeeze(-1)
    nll_b = -log_probs.gather(-1, targets_b.long().unsqueeze(-1)).squeeze(-1)
    if isinstance(lam, torch.Tensor):
        lam = lam.to(log_probs.device, log_probs.dtype)
    loss = nll_b + lam * (nll_a - nll_b)
    if label_smoothing:
        loss = (1.0 - label_smoothing) * loss - label_smoothing * log_probs.mean(dim=-1)
    return loss


def cross_entropy(logits: torch.Tensor, class_ids: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Plain per-example cross-entropy for class ids (what the unmixed batches use)."""
    return F.cross_entropy(logits.float(), class_ids.long(), reduction="none", label_smoothing=label_smoothing)


def multi_label_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits for multi-label (possibly mixed) targets, mean over labels."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none").mean(dim=-1)


def regression_mse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared error per example, mean over outputs; ``[B, 1]`` predictions meet ``[B]`` targets."""
    predictions = predictions.float()
    targets = targets.float()
    if predictions.ndim == 2 and predictions.shape[1] == 1 and targets.ndim == 1:
        predictions = predictions.squeeze(1)
    if predictions.shape != targets.shape:
        raise ValueError(
            f"regression predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} do not match: "
            "set num_labels to the number of regression targets"
        )
    error = (predictions - targets) ** 2
    return error.flatten(1).mean(dim=1) if error.ndim > 1 else error


def reduce_loss(per_example: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
    """Mean over the batch, or, under gradient accumulation, the sum divided by the number of examples
    in the whole accumulated batch (so that accumulated and unaccumulated runs give the same loss)."""
    if num_items_in_batch is None:
        return per_example.mean()
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(per_example.device)
    return per_example.sum() / num_items_in_batch
