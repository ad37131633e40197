"""Multi-label metrics (BCE, exact match, label accuracy, micro F1), an `evaluate` metric shipped with hf_mixup."""

import evaluate

from hf_mixup.metrics import functional
from hf_mixup.metrics.module_info import NUMBERS, metric_info

_DESCRIPTION = """\
The multi-label metrics `MixupTrainer` reports, from per-label probabilities: binary cross-entropy
(mean over examples and labels), exact-match accuracy (every label of an example right), label
accuracy (share of right example-label pairs, 1 - Hamming loss) and micro-averaged F1. A label is
predicted when its probability is above 0.5; a reference counts as positive above 0.5.
Probabilities are clipped to [eps, 1 - eps] (float64 machine epsilon) for the BCE.
"""

_KWARGS_DESCRIPTION = """
Args:
    references (`list` of `list` of `float`): 0/1 targets (or soft targets in [0, 1]), shape [N, L].
    prediction_scores (`list` of `list` of `float`): per-label (sigmoid) probabilities in [0, 1], shape
        [N, L]. Logits are refused with a ValueError: apply sigmoid first (`scipy.special.expit(x)` or
        `torch.sigmoid(x)`).
Returns:
    bce (`float`), exact_match (`float`), label_accuracy (`float`), micro_f1 (`float`).
Examples:
    >>> from hf_mixup import metrics
    >>> multi_label = metrics.load("multi_label")
    >>> out = multi_label.compute(references=[[1, 0], [1, 1]], prediction_scores=[[0.9, 0.2], [0.7, 0.4]])
    >>> out["exact_match"], out["label_accuracy"], round(out["micro_f1"], 4)
    (0.5, 0.75, 0.8)
"""

_CITATION = """\
@article{tsoumakas2007multi,
  title={Multi-Label Classification: An Overview},
  author={Tsoumakas, Grigorios and Katakis, Ioannis},
  journal={International Journal of Data Warehousing and Mining},
  volume={3},
  number={3},
  pages={1--13},
  year={2007}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultiLabel(evaluate.Metric):
    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _CITATION,
            _KWARGS_DESCRIPTION,
            {"references": NUMBERS, "prediction_scores": NUMBERS},
            "https://scikit-learn.org/stable/modules/model_evaluation.html#multilabel-ranking-metrics",
        )

    def _compute(self, references, prediction_scores):
        probs, targets = functional.as_float64(prediction_scores), functional.as_float64(references)
        functional.check_label_probabilities(probs, targets, metric="multi_label")
        return functional.multi_label_scores(functional.logits_from_probs(probs), targets)
