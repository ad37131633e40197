"""Regression metrics (MSE, RMSE, MAE, R^2), an `evaluate` metric shipped with hf_mixup."""

import evaluate

from hf_mixup.metrics import functional
from hf_mixup.metrics.module_info import NUMBER, NUMBERS, SCIKIT_LEARN_CITATION, metric_info

_DESCRIPTION = """\
The regression metrics `MixupTrainer` reports: mean squared error, its root, mean absolute error
(all averaged over every example and output) and the coefficient of determination
R^2 = 1 - sum (y - y_hat)^2 / sum (y - mean y)^2, computed per output and averaged over outputs
(scikit-learn's `r2_score` with `multioutput="uniform_average"`). Takes one value per example or
a list of values (several outputs) per example.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`, or `list` of `list` of `float`): predictions, shape [N] or [N, D].
    references: targets, same shape as `predictions`.
Returns:
    mse (`float`), rmse (`float`), mae (`float`), r2 (`float`).
Examples:
    >>> from hf_mixup import metrics
    >>> metrics.load("regression").compute(predictions=[1.0, 2.0, 3.0], references=[1.0, 2.0, 5.0])
    {'mse': 1.3333333333333333, 'rmse': 1.1547005383792515, 'mae': 0.6666666666666666, 'r2': 0.5384615384615385}
"""

_CITATION = SCIKIT_LEARN_CITATION


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Regression(evaluate.Metric):
    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _CITATION,
            _KWARGS_DESCRIPTION,
            [
                # One value per example, or several outputs per example (the first format that fits).
                {"predictions": NUMBER, "references": NUMBER},
                {"predictions": NUMBERS, "references": NUMBERS},
            ],
            "https://scikit-learn.org/stable/modules/model_evaluation.html#regression-metrics",
        )

    def _compute(self, predictions, references):
        return functional.regression_scores(functional.as_float64(predictions), functional.as_float64(references))
