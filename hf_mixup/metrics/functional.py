"""The metric math, written once: used by `MixupTrainer`'s default `compute_metrics`
(`hf_mixup.metrics.classification_metrics` etc., on logits) and by the `evaluate` modules shipped
in this package (`hf_mixup.metrics.load`, on probabilities).

Every metric function takes float64 torch tensors (see `as_float64`) and returns a Python float.
The `check_*` functions validate what a user hands the `evaluate` modules (probabilities, class ids,
``k``) and raise a `ValueError` that says what to change; the Trainer's own route (on logits) does
not go through them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_N_BINS = 15
DEFAULT_TOP_K = 5
# Probabilities are clipped to [EPS, 1 - EPS] before taking logs, as scikit-learn's log_loss does.
EPS = float(np.finfo(np.float64).eps)
# How far a row of class probabilities may sum from 1 (absolute): float32 softmax outputs and rounded
# scores pass, logits and sigmoid outputs do not.
PROBABILITY_SUM_TOLERANCE = 1e-3
_SHOWN_VALUES = 8


def as_float64(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def as_class_ids(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values)).long()


def _shown(values: list[int]) -> str:
    shown = ", ".join(str(v) for v in values[:_SHOWN_VALUES])
    return shown + (f", ... ({len(values)} values in all)" if len(values) > _SHOWN_VALUES else "")


def _check_matrix(scores: torch.Tensor, metric: str, what: str) -> None:
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(
            f"{metric}: prediction_scores must be {what} of shape [N, C], one row per example, got shape "
            f"{tuple(scores.shape)}"
        )


def check_class_ids(labels: torch.Tensor, num_classes: int, *, metric: str) -> None:
    """Raise a `ValueError` unless every reference is a class id in ``0 .. num_classes - 1`` (the
    columns of ``prediction_scores``); the message names the bad values and the first row holding one."""
    bad = (labels < 0) | (labels >= num_classes)
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        values = sorted(set(labels[bad].tolist()))
        raise ValueError(
            f"{metric}: references must be class ids in 0..{num_classes - 1} (prediction_scores has {num_classes} "
            f"columns, one per class), got {_shown(values)} (first at row {first}): map the labels to "
            f"0..{num_classes - 1}, drop rows without a label (e.g. -100), or give one score column per class"
        )


def _check_references(scores: torch.Tensor, labels: torch.Tensor, metric: str) -> None:
    if labels.ndim != 1 or len(labels) != len(scores):
        raise ValueError(
            f"{metric}: references must be one class id per example ({len(scores)} rows of prediction_scores), "
            f"got shape {tuple(labels.shape)}"
        )


def check_class_scores(scores: torch.Tensor, labels: torch.Tensor, *, metric: str) -> None:
    """Raise a `ValueError` unless ``scores`` is ``[N, C]`` and ``labels`` are N class ids in ``0 .. C - 1``
    (any real scores: for metrics that only rank them, such as top-k accuracy)."""
    _check_matrix(scores, metric, "class scores")
    _check_references(scores, labels, metric)
    check_class_ids(labels, scores.shape[1], metric=metric)


def check_class_probabilities(probs: torch.Tensor, labels: torch.Tensor | None = None, *, metric: str) -> None:
    """Raise a `ValueError` unless ``probs`` ``[N, C]`` holds class probabilities, every value in
    [0, 1] and every row summing to 1 within `PROBABILITY_SUM_TOLERANCE` (absolute), and ``labels``
    (when given) are N class ids in ``0 .. C - 1``. The message names the first bad row and what it
    looks like: logits (values outside [0, 1]: apply softmax) or scores that are not normalised."""
    _check_matrix(probs, metric, "class probabilities")
    if labels is not None:
        _check_references(probs, labels, metric)
    sums = probs.sum(dim=-1)
    outside = ~((probs >= 0) & (probs <= 1)).all(dim=-1)  # NaN counts as outside
    off = ~((sums - 1).abs() <= PROBABILITY_SUM_TOLERANCE)
    bad = outside | off
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        problems = []
        if bool(off[row]):
            problems.append(f"sums to {float(sums[row]):.4g}")
        if bool(outside[row]):
            problems.append(
                f"has values outside [0, 1] (min {float(probs[row].min()):.4g}, max {float(probs[row].max()):.4g})"
            )
        if bool(outside.any()):
            hint = "these look like logits; apply softmax first"
        else:
            hint = (
                "these are not probabilities over the classes (sigmoid outputs, or classes missing?); "
                "apply softmax to the logits instead"
            )
        raise ValueError(
            f"{metric}: prediction_scores row {row} {' and '.join(problems)} ({int(bad.sum())} of {len(probs)} rows "
            f"are not class probabilities): {hint} (scipy.special.softmax(x, axis=-1) or torch.softmax(x, dim=-1)). "
            f"Each row must be in [0, 1] and sum to 1 within {PROBABILITY_SUM_TOLERANCE:g}"
        )
    if labels is not None:
        check_class_ids(labels, probs.shape[1], metric=metric)


def check_label_probabilities(probs: torch.Tensor, targets: torch.Tensor, *, metric: str) -> None:
    """Raise a `ValueError` unless ``probs`` ``[N, L]`` holds per-label (sigmoid) probabilities in
    [0, 1] and ``targets`` has the same shape with values in [0, 1] (0/1, or soft targets)."""
    _check_matrix(probs, metric, "per-label probabilities")
    if tuple(targets.shape) != tuple(probs.shape):
        raise ValueError(
            f"{metric}: references must have the shape of prediction_scores, {tuple(probs.shape)} (one 0/1 target per "
            f"example and label), got {tuple(targets.shape)}"
        )
    for name, values, hint in (
        (
            "prediction_scores",
            probs,
            "these look like logits; apply sigmoid first (scipy.special.expit(x) or torch.sigmoid(x))",
        ),
        ("references", targets, "targets are 0/1 per label (or soft targets in [0, 1])"),
    ):
        outside = ~((values >= 0) & (values <= 1)).all(dim=-1)
        if bool(outside.any()):
            row = int(outside.nonzero()[0, 0])
            raise ValueError(
                f"{metric}: {name} row {row} has values outside [0, 1] (min {float(values[row].min()):.4g}, max "
                f"{float(values[row].max()):.4g}; {int(outside.sum())} of {len(values)} rows have such values): {hint}"
            )


def check_top_k(k: int, num_classes: int, *, metric: str = "top_k_accuracy") -> None:
    """Raise a `ValueError` unless ``1 <= k < num_classes``: with ``k >= num_classes`` every example
    counts as right, whatever the scores."""
    if k < 1:
        raise ValueError(f"{metric}: k must be a positive integer, got {k}")
    if k >= num_classes:
        smaller = max(num_classes - 1, 1)
        raise ValueError(
            f"{metric}: k={k} is not below the number of classes ({num_classes} columns in prediction_scores), so "
            f"every example would count as right (top-{k} accuracy 1.0 whatever the scores): use k < {num_classes}, "
            f'e.g. hf_mixup.metrics.load("top_k_accuracy", k={smaller}) or compute(..., k={smaller}), '
            f"or report accuracy instead"
        )


def log_probs_from_probs(probs: torch.Tensor) -> torch.Tensor:
    """log of (clipped) class probabilities, the input of `nll`."""
    return probs.clamp(EPS, 1.0).log()


def logits_from_probs(probs: torch.Tensor) -> torch.Tensor:
    """Per-label logits of (clipped) sigmoid probabilities, the input of `multi_label_scores`."""
    probs = probs.clamp(EPS, 1.0 - EPS)
    return probs.log() - torch.log1p(-probs)


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``predicted`` class ids equal to ``labels``."""
    return float((predicted.long() == labels.long()).double().mean())


def top_k_accuracy(scores: torch.Tensor, labels: torch.Tensor, k: int = DEFAULT_TOP_K) -> float:
    """Share of rows whose true class is among the ``k`` highest ``scores`` (``[N, C]``; logits,
    log-probabilities or probabilities: any increasing function of them gives the same answer).
    ``k`` must be in ``1 .. C - 1`` (`check_top_k`: ``k >= C`` would always be right)."""
    check_top_k(int(k), scores.shape[-1])
    top = scores.topk(int(k), dim=-1).indices
    return float((top == labels.long()[:, None]).any(dim=-1).double().mean())


def nll(log_probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of the true class: ``-mean_i log p_i[y_i]``."""
    return float(F.nll_loss(log_probs, labels.long()))


def calibration_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = DEFAULT_N_BINS) -> dict[str, list]:
    """The reliability diagram's data: equal-width bins of top-1 confidence, bin b holding confidences in
    ``(b / n_bins, (b + 1) / n_bins]``, with each bin's ``count``, ``confidence_sum`` and ``correct_sum``
    (sums, so the bins of several runs add up). `expected_calibration_error` is computed from them."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
    probs = probs.to(torch.float64)
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == labels.long()).to(torch.float64)
    # A confidence of exactly 0 cannot occur (the top-1 probability is at least 1 / C).
    bins = torch.clamp(torch.ceil(confidence * n_bins).long() - 1, 0, n_bins - 1)
    return {
        "n_bins": n_bins,
        "count": torch.bincount(bins, minlength=n_bins).tolist(),
        "confidence_sum": torch.bincount(bins, weights=confidence, minlength=n_bins).tolist(),
        "correct_sum": torch.bincount(bins, weights=correct, minlength=n_bins).tolist(),
    }


def ece_of_bins(bins: dict[str, list]) -> float:
    """ECE from `calibration_bins`: ``sum_b |correct_b - confidence_b| / N``."""
    total = sum(bins["count"])
    gaps = (abs(c - a) for c, a in zip(bins["confidence_sum"], bins["correct_sum"]))
    return float(sum(gaps) / max(total, 1))


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = DEFAULT_N_BINS) -> float:
    """ECE: ``sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`` over equal-width bins of top-1 confidence.

    Bin b holds confidences in ``(b / n_bins, (b + 1) / n_bins]`` (Guo et al. 2017 use 15 bins)."""
    return ece_of_bins(calibration_bins(probs, labels, n_bins))


def regression_scores(predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """mse, rmse, mae and r2 (coefficient of determination per output, averaged over outputs)."""
    if predictions.ndim == 2 and predictions.shape[1] == 1 and targets.ndim == 1:
        predictions = predictions.squeeze(1)
    error = predictions - targets
    mse = float((error**2).mean())
    total = ((targets - targets.mean(dim=0)) ** 2).sum(dim=0)
    r2 = 1.0 - (error**2).sum(dim=0) / total.clamp_min(1e-12)
    return {"mse": mse, "rmse": mse**0.5, "mae": float(error.abs().mean()), "r2": float(r2.mean())}


def multi_label_scores(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """BCE, exact-match accuracy, per-label accuracy and micro F1, a label predicted when its
    probability is above 0.5 (logit above 0); a target counts as positive above 0.5."""
    predicted = logits > 0
    truth = targets > 0.5
    tp = float((predicted & truth).sum())
    fp = float((predicted & ~truth).sum())
    fn = float((~predicted & truth).sum())
    return {
        "bce": float(F.binary_cross_entropy_with_logits(logits, targets)),
        "exact_match": float((predicted == truth).all(-1).double().mean()),
        "label_accuracy": float((predicted == truth).double().mean()),
        "micro_f1": 2 * tp / max(2 * tp + fp + fn, 1e-12),
    }
