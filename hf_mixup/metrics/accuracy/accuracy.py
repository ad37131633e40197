"""Accuracy, an `evaluate` metric shipped with hf_mixup (loads offline, unlike the Hub's)."""

import evaluate

from hf_mixup.metrics import functional
from hf_mixup.metrics.module_info import CLASS_IDS, SCIKIT_LEARN_CITATION, metric_info

_DESCRIPTION = """\
Accuracy: the share of predicted class ids equal to the true class ids. The same as the Hub's
`accuracy` module, but shipped inside hf_mixup so it loads without network access, and it accepts
(and ignores) `prediction_scores`, so it combines with hf_mixup's probability metrics
(`evaluate.combine`) and runs under `hf_mixup.metrics.classification_evaluator`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids, shape [N].
    references (`list` of `int`): true class ids, shape [N].
    prediction_scores: ignored (lets a combined evaluation pass class scores to the other modules).
Returns:
    accuracy (`float`): in [0, 1].
Examples:
    >>> from hf_mixup import metrics
    >>> metrics.load("accuracy").compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])
    {'accuracy': 0.75}
"""

_CITATION = SCIKIT_LEARN_CITATION


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _CITATION,
            _KWARGS_DESCRIPTION,
            {"predictions": CLASS_IDS, "references": CLASS_IDS},
            "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html",
        )

    def _compute(self, predictions, references, prediction_scores=None):
        predicted, labels = functional.as_class_ids(predictions), functional.as_class_ids(references)
        return {"accuracy": functional.accuracy(predicted, labels)}
