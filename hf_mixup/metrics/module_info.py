"""What the `evaluate` modules of this package (`hf_mixup/metrics/<name>/<name>.py`) share: the
feature types of their inputs and how their `evaluate.MetricInfo` is built. Imported by those modules
only, so `import hf_mixup` does not import `evaluate`."""

from __future__ import annotations

import datasets
import evaluate

CLASS_IDS = datasets.Value("int64")
NUMBER = datasets.Value("float64")
NUMBERS = datasets.Sequence(datasets.Value("float64"))
# The probability metrics: class ids [N] and class probabilities [N, C], like evaluate's roc_auc.
PROBABILITY_INPUTS = {"references": CLASS_IDS, "prediction_scores": NUMBERS}

SCIKIT_LEARN_CITATION = """\
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""


def metric_info(description: str, citation: str, inputs_description: str, features, reference_url: str):
    """The `MetricInfo` of a module: ``features`` a mapping of input name to feature type, or a list of
    such mappings (evaluate takes the first format that fits the inputs)."""
    if isinstance(features, list):
        features = [datasets.Features(f) for f in features]
    else:
        features = datasets.Features(features)
    return evaluate.MetricInfo(
        description=description,
        citation=citation,
        inputs_description=inputs_description,
        features=features,
        reference_urls=[reference_url],
    )
