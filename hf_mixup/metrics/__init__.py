"""Evaluation metrics, computed locally and shipped as Hugging Face `evaluate` modules.

`classification_metrics` is the default `compute_metrics` of `MixupTrainer` for single-label
classification: accuracy, top-5 accuracy (more than 5 classes), negative log-likelihood and expected
calibration error (15 equal-width confidence bins, as in Guo et al. 2017). `regression_metrics` and
`multi_label_metrics` are the defaults for the other problem types.

The same numbers come from `evaluate` modules inside this package (the math is shared, in
`hf_mixup.metrics.functional`), loaded offline from the package's own files::

    from hf_mixup import metrics
    ece = metrics.load("ece")
    ece.compute(references=[0, 1], prediction_scores=[[0.9, 0.1], [0.3, 0.7]])

`load(name)` never asks the Hub (``evaluate.load("accuracy")`` would). The probability metrics
(`ece`, `nll`, `top_k_accuracy`, `multi_label`) take ``references`` and ``prediction_scores``
(``[N, C]`` probabilities), like evaluate's ``roc_auc``. ``evaluate.evaluator`` only hands metrics
label ids (``predictions``); `classification_evaluator` gives them every class's score as well.
"""

from __future__ import annotations

import os
from numbers import Number
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .._extras import require
from . import functional
from .functional import expected_calibration_error  # noqa: F401  (public, as before)

__all__ = [
    "METRIC_NAMES",
    "calibration_of",
    "classification_evaluator",
    "classification_metrics",
    "default_metrics_for",
    "expected_calibration_error",
    "load",
    "metric_path",
    "multi_label_metrics",
    "regression_metrics",
]

_HERE = Path(__file__).resolve().parent

# One folder per module, holding `<name>/<name>.py` (the layout `evaluate.load(path)` expects).
METRIC_NAMES: tuple[str, ...] = ("accuracy", "ece", "multi_label", "nll", "regression", "top_k_accuracy")


# ---------------------------------------------------------------------------------------------
# MixupTrainer's default compute_metrics (on logits)
# ---------------------------------------------------------------------------------------------


def _logits_and_labels(eval_pred) -> tuple[torch.Tensor, torch.Tensor]:
    predictions, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    return torch.as_tensor(np.asarray(predictions), dtype=torch.float64), torch.as_tensor(np.asarray(labels))


def classification_metrics(eval_pred) -> dict[str, float]:
    """accuracy, top5_accuracy (if more than 5 classes), nll and ece of logits against class ids."""
    logits, labels = _logits_and_labels(eval_pred)
    labels = labels.long()
    keep = labels != -100
    logits, labels = logits[keep], labels[keep]
    log_probs = F.log_softmax(logits, dim=-1)
    metrics = {"accuracy": functional.accuracy(log_probs.argmax(-1), labels)}
    if logits.shape[-1] > functional.DEFAULT_TOP_K:
        metrics["top5_accuracy"] = functional.top_k_accuracy(log_probs, labels, functional.DEFAULT_TOP_K)
    metrics["nll"] = functional.nll(log_probs, labels)
    metrics["ece"] = functional.expected_calibration_error(log_probs.exp(), labels)
    return metrics


def calibration_of(eval_pred, n_bins: int = functional.DEFAULT_N_BINS) -> dict[str, list]:
    """`functional.calibration_bins` of logits against class ids (labels of -100 left out): the data of a
    reliability diagram, with the same bins as the ``ece`` of `classification_metrics`."""
    logits, labels = _logits_and_labels(eval_pred)
    keep = labels.long() != -100
    return functional.calibration_bins(F.softmax(logits[keep], dim=-1), labels.long()[keep], n_bins)


def regression_metrics(eval_pred) -> dict[str, float]:
    """mse, rmse, mae and r2 (coefficient of determination, averaged over outputs)."""
    predictions, targets = _logits_and_labels(eval_pred)
    return functional.regression_scores(predictions, targets.to(torch.float64))


def multi_label_metrics(eval_pred) -> dict[str, float]:
    """BCE, exact-match accuracy, per-label accuracy and micro F1 at a 0.5 threshold."""
    logits, targets = _logits_and_labels(eval_pred)
    return functional.multi_label_scores(logits, targets.to(torch.float64))


def default_metrics_for(problem_type: str):
    """The `compute_metrics` `MixupTrainer` evaluates with when given none: `classification_metrics`,
    `multi_label_metrics` or `regression_metrics`, by the model's ``config.problem_type``."""
    return {"single_label_classification": classification_metrics, "multi_label_classification": multi_label_metrics,
            "regression": regression_metrics}[problem_type]


# ---------------------------------------------------------------------------------------------
# evaluate modules
# ---------------------------------------------------------------------------------------------


def metric_path(name: str) -> str:
    """The folder of the `evaluate` module ``name`` inside the installed package."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown hf_mixup metric {name!r}; available: {', '.join(METRIC_NAMES)}")
    return str(_HERE / name)


def load(name: str, **kwargs):
    """The `evaluate.EvaluationModule` ``name`` (one of `METRIC_NAMES`), loaded from this package's
    files, never from the Hub. ``kwargs`` go to `evaluate.load` (``keep_in_memory``, ``cache_dir``,
    ``experiment_id``, ...) and to the module: ``k`` for ``top_k_accuracy`` (default 5), ``n_bins``
    for ``ece`` (default 15)."""
    path = metric_path(name)
    evaluate = require("evaluate", "metrics", "hf_mixup.metrics.load")
    from evaluate import config as evaluate_config

    # A local path never reaches the network; offline mode makes sure of it while loading.
    previous = evaluate_config.HF_EVALUATE_OFFLINE
    evaluate_config.HF_EVALUATE_OFFLINE = True
    try:
        return evaluate.load(path, **kwargs)
    finally:
        evaluate_config.HF_EVALUATE_OFFLINE = previous


# ---------------------------------------------------------------------------------------------
# evaluate.evaluator with class scores
# ---------------------------------------------------------------------------------------------

_EVALUATOR_TASKS = ("image-classification", "audio-classification")


def _prepare_pipeline(evaluator, model_or_pipeline, tokenizer=None, feature_extractor=None, device=None):
    """`Evaluator.prepare_pipeline` without its ``transformers.TFPreTrainedModel`` check, which raises
    AttributeError under transformers 5 (no TensorFlow classes) when given a `Pipeline` object."""
    from transformers import PreTrainedModel, pipeline

    if device is None:
        device = evaluator._infer_device()
    if isinstance(model_or_pipeline, (str, os.PathLike, PreTrainedModel)):
        model = os.fspath(model_or_pipeline) if isinstance(model_or_pipeline, os.PathLike) else model_or_pipeline
        pipe = pipeline(
            evaluator.task, model=model, tokenizer=tokenizer, feature_extractor=feature_extractor, device=device
        )
    elif model_or_pipeline is None:
        pipe = pipeline(evaluator.task, device=device)
    else:
        pipe = model_or_pipeline
    if pipe.task != evaluator.task:
        raise ValueError(f"Incompatible `model_or_pipeline`: a {pipe.task!r} pipeline for the {evaluator.task!r} task.")
    return pipe


class _ScoresMixin:
    """Asks the pipeline for every class's score and hands metrics ``predictions`` (class ids) and
    ``prediction_scores`` (``[N, C]``, column c = class id c)."""

    with_scores = True

    def prepare_pipeline(self, model_or_pipeline, tokenizer=None, feature_extractor=None, device=None):
        pipe = _prepare_pipeline(self, model_or_pipeline, tokenizer, feature_extractor, device)
        config = pipe.model.config
        self._label2id = {label: int(i) for i, label in config.id2label.items()}
        if self.with_scores:
            self.PIPELINE_KWARGS = {**type(self).PIPELINE_KWARGS, "top_k": config.num_labels}
        return pipe

    def predictions_processor(self, predictions, label_mapping):
        if not self.with_scores:
            return super().predictions_processor(predictions, label_mapping)
        mapping: dict[str, Number] = dict(label_mapping) if label_mapping is not None else self._label2id
        n_classes = max(len(mapping), int(max(mapping.values())) + 1)
        scores = np.zeros((len(predictions), n_classes), dtype=np.float64)
        for row, prediction in zip(scores, predictions):
            for entry in prediction:
                row[int(mapping[entry["label"]])] = entry["score"]
        return {"predictions": scores.argmax(axis=1).tolist(), "prediction_scores": scores.tolist()}


def classification_evaluator(task: str = "image-classification", with_scores: bool = True):
    """``evaluate.evaluator(task)`` for ``image-classification`` or ``audio-classification`` whose
    metrics get ``predictions`` (class ids) and, with ``with_scores``, ``prediction_scores`` (every
    class's probability, column = class id), so `ece`, `nll` and `top_k_accuracy` can take part.

    Class ids come from ``label_mapping`` (model label -> dataset id) or else the model's
    ``config.label2id``. It also accepts a `Pipeline` object, which evaluate 0.4.6's own evaluator
    rejects under transformers 5.
    """
    if task not in _EVALUATOR_TASKS:
        raise ValueError(f"unsupported task {task!r}; supported: {', '.join(_EVALUATOR_TASKS)}")
    require("evaluate", "metrics", "classification_evaluator")
    from evaluate.evaluator import AudioClassificationEvaluator, ImageClassificationEvaluator

    base = ImageClassificationEvaluator if task == "image-classification" else AudioClassificationEvaluator
    cls = type(f"Scores{base.__name__}", (_ScoresMixin, base), {"with_scores": with_scores})
    return cls(task=task)
