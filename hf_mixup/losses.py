"""Losses for mixed batches. Every loss function returns one loss per example (shape ``[B]``, float32);
reduce them with :func:`reduce_loss` (mean, or sum over ``num_items_in_batch`` for gradient
accumulation). :func:`logits_of` takes the logits out of whatever a classifier's forward returned.

:func:`per_example_loss` is the one loss of every mixed or unmixed batch: it takes a :class:`Targets`, the
description of what a batch's logits are compared with (each example's labels, its partner's labels and its
weight), whichever way the batch was mixed (partners in the batch, from the dataset, or by a collator)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"
REGRESSION = "regression"
PROBLEM_TYPES = (SINGLE_LABEL, MULTI_LABEL, REGRESSION)


def problem_type_of(config) -> str:
    """The problem a model config describes, by the transformers convention (regression when
    ``num_labels == 1`` and no ``problem_type`` is set)."""
    problem_type = getattr(config, "problem_type", None)
    if problem_type is not None:
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"config.problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
        return problem_type
    return REGRESSION if getattr(config, "num_labels", 2) == 1 else SINGLE_LABEL


@dataclass(frozen=True)
class Targets:
    """What a batch's logits are compared with.

    Attributes:
        labels: each example's own labels: class ids ``[B]`` (int), soft or multi-hot ``[B, C]``, regression
            ``[B]`` or ``[B, K]``.
        partner_labels: the labels of each example's partner, as ``labels``; None: the batch is not mixed.
        lam: ``[B]`` float32, the weight of each example's own label (the partner's is ``1 - lam``).
        input_only: keep the label of the example with the larger weight, unmixed (``mixup_targets="input_only"``).
        premixed: ``labels`` are already mixed (and smoothed) targets, as `DataCollatorForMixup` gives them;
            ``lam`` is then for the log only.
    """

    labels: torch.Tensor
    partner_labels: torch.Tensor | None = None
    lam: torch.Tensor | None = None
    input_only: bool = False
    premixed: bool = False

    @property
    def mixed(self) -> bool:
        return self.partner_labels is not None and not self.premixed

    @classmethod
    def of_partners(cls, labels: torch.Tensor, index: torch.Tensor, lam: torch.Tensor, input_only: bool = False) -> Targets:
        """Targets of a batch mixed with partners within it: example ``i`` with example ``index[i]``."""
        return cls(labels, labels.index_select(0, index.to(labels.device)), lam, input_only)

    def dominant(self) -> torch.Tensor:
        """The label of the example with the larger weight: its own where ``lam >= 0.5``, else its partner's."""
        keep = (self.lam.to(self.labels.device) >= 0.5).view(-1, *([1] * (self.labels.ndim - 1)))
        return torch.where(keep, self.labels, self.partner_labels.to(self.labels.device))

    def mixed_labels(self) -> torch.Tensor:
        """``lam * labels + (1 - lam) * partner_labels`` as float32 (for float labels: soft, multi-hot, regression)."""
        own = self.labels.float()
        weight = self.lam.to(own.device, own.dtype).view(-1, *([1] * (own.ndim - 1)))
        return self.partner_labels.to(own.device).float().lerp(own, weight)


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


def per_example_loss(
    logits: torch.Tensor, targets: Targets, problem_type: str = SINGLE_LABEL, label_smoothing: float = 0.0
) -> torch.Tensor:
    """The loss of each example of a batch (``[B]``, float32) against ``targets``, mixed or not:

    - single-label classification: class ids give plain cross-entropy, or the pair form
      ``lam * CE(y) + (1 - lam) * CE(y_partner)`` when mixed; soft labels ``[B, C]`` the soft-target
      cross-entropy against the mixed distributions; ``label_smoothing`` smooths the targets (premixed
      targets come smoothed already);
    - multi-label classification: BCE against the mixed multi-hot targets; regression: MSE against the mixed
      targets;
    - ``input_only``: the dominant example's label, unmixed (see :meth:`Targets.dominant`).
    """
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
    if targets.mixed and targets.input_only:
        targets = Targets(targets.dominant())
    labels = targets.labels
    if problem_type == SINGLE_LABEL:
        if not torch.is_floating_point(labels):
            if not targets.mixed:
                return cross_entropy(logits, labels, label_smoothing)
            return mixup_cross_entropy(logits, labels, targets.partner_labels, targets.lam, label_smoothing)
        if labels.ndim != 2 or labels.shape[-1] != logits.shape[-1]:
            raise ValueError(
                f"float labels of shape {tuple(labels.shape)} for a {logits.shape[-1]}-class single-label model: "
                "give class ids [batch] or soft labels [batch, num_labels]"
            )
        soft = targets.mixed_labels() if targets.mixed else labels
        return soft_target_cross_entropy(logits, soft, 0.0 if targets.premixed else label_smoothing)
    values = targets.mixed_labels() if targets.mixed else labels.float()
    if problem_type == MULTI_LABEL:
        return multi_label_bce(logits, values)
    return regression_mse(logits, values)
