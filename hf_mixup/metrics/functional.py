"""The metric math, written once: used by `MixupTrainer`'s default `compute_metrics`
(`hf_mixup.metrics.classification_metrics` etc., on logits) and by the `evaluate` modules shipped
in this package (`hf_mixup.metrics.load`, on probabilities).

Every function takes float64 torch tensors (see `as_float64`) and returns a Python float.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_N_BINS = 15
DEFAULT_TOP_K = 5
# Probabilities are clipped to [EPS, 1 - EPS] before taking logs, as scikit-learn's log_loss does.
EPS = float(np.finfo(np.float64).eps)


def as_float64(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def as_class_ids(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values)).long()


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
    ``k >= C`` is always right (1.0)."""
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    top = scores.topk(min(int(k), scores.shape[-1]), dim=-1).indices
    return float((top == labels.long()[:, None]).any(dim=-1).double().mean())


def nll(log_probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of the true class: ``-mean_i log p_i[y_i]``."""
    return float(F.nll_loss(log_probs, labels.long()))


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = DEFAULT_N_BINS) -> float:
    """ECE: ``sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`` over equal-width bins of top-1 confidence.

    Bin b holds confidences in ``(b / n_bins, (b + 1) / n_bins]`` (Guo et al. 2017 use 15 bins)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
    probs = probs.to(torch.float64)
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == labels.long()).to(torch.float64)
    # A confidence of exactly 0 cannot occur (the top-1 probability is at least 1 / C).
    bins = torch.clamp(torch.ceil(confidence * n_bins).long() - 1, 0, n_bins - 1)
    conf_sum = torch.bincount(bins, weights=confidence, minlength=n_bins)
    acc_sum = torch.bincount(bins, weights=correct, minlength=n_bins)
    return float((conf_sum - acc_sum).abs().sum() / max(len(labels), 1))


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
