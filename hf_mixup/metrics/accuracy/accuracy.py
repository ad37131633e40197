"""Accuracy, an `evaluate` metric shipped with hf_mixup (loads offline, unlike the Hub's)."""

import datasets
import evaluate

from hf_mixup.metrics import functional

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

_CITATION = """\
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html"],
        )

    def _compute(self, predictions, references, prediction_scores=None):
        predicted, labels = functional.as_class_ids(predictions), functional.as_class_ids(references)
        return {"accuracy": functional.accuracy(predicted, labels)}
