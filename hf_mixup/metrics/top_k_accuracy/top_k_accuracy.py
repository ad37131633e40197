"""Top-k accuracy, an `evaluate` metric shipped with hf_mixup."""

import evaluate

from hf_mixup.metrics import functional
from hf_mixup.metrics.module_info import PROBABILITY_INPUTS, metric_info

_DESCRIPTION = """\
Top-k accuracy: the share of examples whose true class is among the k classes with the highest
predicted scores (ImageNet's top-5 accuracy with k = 5). k must be below the number of classes C
(k >= C would count every example as right, whatever the scores): a ValueError names k and C otherwise.
Only the ranking of each row's scores counts, so probabilities, log-probabilities and logits give the
same result. The result is named `top{k}_accuracy` (`top5_accuracy` by default), the name `MixupTrainer` logs.
"""

_KWARGS_DESCRIPTION = """
Args:
    references (`list` of `int`): true class ids in 0..C-1, shape [N].
    prediction_scores (`list` of `list` of `float`): class scores (probabilities; logits rank the same),
        shape [N, C].
    k (`int`, *optional*): how many top classes count, 1 <= k < C; defaults to the `k` given to
        `hf_mixup.metrics.load("top_k_accuracy", k=...)`, else 5 (so give k < C for 5 classes or fewer).
Returns:
    top{k}_accuracy (`float`): in [0, 1].
Examples:
    >>> from hf_mixup import metrics
    >>> top2 = metrics.load("top_k_accuracy", k=2)
    >>> top2.compute(references=[2, 0], prediction_scores=[[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]])
    {'top2_accuracy': 0.0}
"""

_CITATION = """\
@article{russakovsky2015imagenet,
  title={ImageNet Large Scale Visual Recognition Challenge},
  author={Russakovsky, Olga and Deng, Jia and Su, Hao and others},
  journal={International Journal of Computer Vision},
  volume={115},
  pages={211--252},
  year={2015}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TopKAccuracy(evaluate.Metric):
    def __init__(self, k: int = functional.DEFAULT_TOP_K, **kwargs):
        self.k = int(k)
        super().__init__(**kwargs)

    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _CITATION,
            _KWARGS_DESCRIPTION,
            PROBABILITY_INPUTS,
            "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.top_k_accuracy_score.html",
        )

    def _compute(self, references, prediction_scores, k=None):
        k = self.k if k is None else int(k)
        scores, labels = functional.as_float64(prediction_scores), functional.as_class_ids(references)
        functional.check_class_scores(scores, labels, metric="top_k_accuracy")
        functional.check_top_k(k, scores.shape[1])
        return {f"top{k}_accuracy": functional.top_k_accuracy(scores, labels, k)}
