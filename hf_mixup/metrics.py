"""Evaluation metrics computed locally (no `evaluate.load`, which needs the Hub).

`classification_metrics` is the default `compute_metrics` of `MixupTrainer` for single-label
classification: accuracy, top-5 accuracy (more than 5 classes), negative log-likelihood and expected
calibration error (15 equal-width confidence bins, as in Guo et al. 2017).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _logits_and_labels(eval_pred) -> tuple[torch.Tensor, torch.Tensor]:
    predictions, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    return torch.as_tensor(np.asarray(predictions), dtype=torch.float64), torch.as_tensor(np.asarray(labels))


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE: ``sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`` over equal-width bins of top-1 confidence."""
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == labels).to(torch.float64)
    # Bin b holds confidences in (b / n, (b + 1) / n]; a confidence of exactly 0 cannot occur.
    bins = torch.clamp(torch.ceil(confidence * n_bins).long() - 1, 0, n_bins - 1)
    count = torch.bincount(bins, minlength=n_bins).to(torch.float64)
    conf_sum = torch.bincount(bins, weights=confidence, minlength=n_bins)
    acc_sum = torch.bincount(bins, weights=correct, minlength=n_bins)
    return float((conf_sum - acc_sum).abs().sum() / max(len(labels), 1))


def classification_metrics(eval_pred) -> dict[str, float]:
    """accuracy, top5_accuracy (if more than 5 classes), nll and ece of logits against class ids."""
    logits, labels = _logits_and_labels(eval_pred)
    labels = labels.long()
    keep = labels != -100
    logits, labels = logits[keep], labels[keep]
    log_probs = F.log_softmax(logits, dim=-1)
    metrics = {"accuracy": float((log_probs.argmax(-1) == labels).double().mean())}
    if logits.shape[-1] > 5:
        top5 = log_probs.topk(5, dim=-1).indices
        metrics["top5_accuracy"] = float((top5 == labels[:, None]).any(-1).double().mean())
    metrics["nll"] = float(F.nll_loss(log_probs, labels))
    metrics["ece"] = expected_calibration_error(log_probs.exp(), labels)
    return metrics


def regression_metrics(eval_pred) -> dict[str, float]:
    """mse, rmse, mae and r2 (coefficient of determination, averaged over outputs)."""
    predictions, targets = _logits_and_labels(eval_pred)
    targets = targets.to(torch.float64)
    if predictions.ndim == 2 and predictions.shape[1] == 1 and targets.ndim == 1:
        predictions = predictions.squeeze(1)
    error = predictions - targets
    mse = float((error**2).mean())
    total = ((targets - targets.mean(dim=0)) ** 2).sum(dim=0)
    r2 = 1.0 - (error**2).sum(dim=0) / total.clamp_min(1e-12)
    return {"mse": mse, "rmse": mse**0.5, "mae": float(error.abs().mean()), "r2": float(r2.mean())}


def multi_label_metrics(eval_pred) -> dict[str, float]:
    """BCE, exact-match accuracy, per-label accuracy and micro F1 at a 0.5 threshold."""
    logits, targets = _logits_and_labels(eval_pred)
    targets = targets.to(torch.float64)
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
