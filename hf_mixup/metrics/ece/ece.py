"""Expected calibration error (ECE), an `evaluate` metric shipped with hf_mixup."""

import evaluate

from hf_mixup.metrics import functional
from hf_mixup.metrics.module_info import PROBABILITY_INPUTS, metric_info

_DESCRIPTION = """\
Expected calibration error of a classifier (Naeini et al. 2015; Guo et al. 2017): the predictions
are grouped into `n_bins` equal-width bins of top-1 confidence, bin b holding confidences in
(b / n_bins, (b + 1) / n_bins], and

    ECE = sum_b |B_b| / N * |accuracy(B_b) - mean confidence(B_b)|.

0 is perfectly calibrated. hf_mixup reports it with 15 bins, as Guo et al. do and as mixup's
calibration results (Thulasidasan et al. 2019) are usually quoted.
"""

_KWARGS_DESCRIPTION = """
Args:
    references (`list` of `int`): true class ids in 0..C-1, shape [N].
    prediction_scores (`list` of `list` of `float`): class probabilities, shape [N, C]: every value in
        [0, 1], every row summing to 1 within 1e-3 (absolute); the top-1 confidence is the row maximum
        and the prediction its argmax. Logits are refused with a ValueError: apply softmax first
        (`scipy.special.softmax(x, axis=-1)` or `torch.softmax(x, dim=-1)`).
    n_bins (`int`, *optional*): number of confidence bins; defaults to the `n_bins` given to
        `hf_mixup.metrics.load("ece", n_bins=...)`, else 15.
Returns:
    ece (`float`): expected calibration error, in [0, 1].
Examples:
    >>> from hf_mixup import metrics
    >>> ece = metrics.load("ece")
    >>> ece.compute(references=[0, 1], prediction_scores=[[0.9, 0.1], [0.6, 0.4]])
    {'ece': 0.35}
"""

_CITATION = """\
@inproceedings{guo2017calibration,
  title={On Calibration of Modern Neural Networks},
  author={Guo, Chuan and Pleiss, Geoff and Sun, Yu and Weinberger, Kilian Q.},
  booktitle={International Conference on Machine Learning (ICML)},
  year={2017}
}
@inproceedings{naeini2015obtaining,
  title={Obtaining Well Calibrated Probabilities Using Bayesian Binning},
  author={Naeini, Mahdi Pakdaman and Cooper, Gregory F. and Hauskrecht, Milos},
  booktitle={AAAI Conference on Artificial Intelligence},
  year={2015}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Ece(evaluate.Metric):
    def __init__(self, n_bins: int = functional.DEFAULT_N_BINS, **kwargs):
        self.n_bins = int(n_bins)
        super().__init__(**kwargs)

    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _CITATION,
            _KWARGS_DESCRIPTION,
            PROBABILITY_INPUTS,
            "https://arxiv.org/abs/1706.04599",
        )

    def _compute(self, references, prediction_scores, n_bins=None):
        probs = functional.as_float64(prediction_scores)
        labels = functional.as_class_ids(references)
        functional.check_class_probabilities(probs, labels, metric="ece")
        n_bins = self.n_bins if n_bins is None else int(n_bins)
        return {"ece": functional.expected_calibration_error(probs, labels, n_bins)}
