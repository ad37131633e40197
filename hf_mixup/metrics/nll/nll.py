"""Negative log-likelihood of the true class, an `evaluate` metric shipped with hf_mixup."""

import evaluate

from hf_mixup.metrics import functional
from hf_mixup.metrics.module_info import PROBABILITY_INPUTS, metric_info

_DESCRIPTION = """\
Negative log-likelihood (cross-entropy, log loss) of the true class under predicted class
probabilities: NLL = -1/N sum_i log p_i[y_i]. Probabilities are clipped to [eps, 1] with eps the
float64 machine epsilon, as scikit-learn's `log_loss` does. Lower is better; mixup's effect on it is
one of the calibration results of Thulasidasan et al. (2019).
"""

_KWARGS_DESCRIPTION = """
Args:
    references (`list` of `int`): true class ids in 0..C-1, shape [N].
    prediction_scores (`list` of `list` of `float`): class probabilities, shape [N, C]: every value in
        [0, 1], every row summing to 1 within 1e-3 (absolute). Logits are refused with a ValueError:
        apply softmax first (`scipy.special.softmax(x, axis=-1)` or `torch.softmax(x, dim=-1)`).
Returns:
    nll (`float`): mean negative log-likelihood (natural log).
Examples:
    >>> from hf_mixup import metrics
    >>> nll = metrics.load("nll")
    >>> round(nll.compute(references=[0, 1], prediction_scores=[[0.5, 0.5], [0.5, 0.5]])["nll"], 4)
    0.6931
"""

_CITATION = """\
@inproceedings{thulasidasan2019mixup,
  title={On Mixup Training: Improved Calibration and Predictive Uncertainty for Deep Neural Networks},
  author={Thulasidasan, Sunil and Chennupati, Gopinath and Bilmes, Jeff A. and Bhattacharya, Tanmoy
          and Michalak, Sarah},
  booktitle={Advances in Neural Information Processing Systems (NeurIPS)},
  year={2019}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Nll(evaluate.Metric):
    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _CITATION,
            _KWARGS_DESCRIPTION,
            PROBABILITY_INPUTS,
            "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.log_loss.html",
        )

    def _compute(self, references, prediction_scores):
        probs, labels = functional.as_float64(prediction_scores), functional.as_class_ids(references)
        functional.check_class_probabilities(probs, labels, metric="nll")
        return {"nll": functional.nll(functional.log_probs_from_probs(probs), labels)}
