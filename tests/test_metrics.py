"""hf_mixup.metrics: the Trainer's default metrics and the `evaluate` modules shipped in the package.

Values are checked against hand-computed examples and scikit-learn; the two routes (MixupTrainer's
`compute_metrics` on logits, the evaluate modules on probabilities) must agree.
"""

from __future__ import annotations

import glob
import os
import socket
import tomllib
from pathlib import Path

import evaluate
import numpy as np
import pytest
import sklearn.metrics as skm
import torch
from transformers import EvalPrediction

from hf_mixup import metrics
from hf_mixup.metrics import classification_metrics, multi_label_metrics, regression_metrics

ROOT = Path(__file__).resolve().parents[1]
CLASSIFICATION_MODULES = ["accuracy", "top_k_accuracy", "nll", "ece"]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Loading and computing the metrics must never open a connection (the Hub is not reachable)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _softmax(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1).numpy()


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", metrics.METRIC_NAMES)
def test_load_returns_an_evaluation_module_from_the_package(name):
    module = metrics.load(name, keep_in_memory=True)
    assert isinstance(module, evaluate.EvaluationModule)
    assert module.name == name
    assert module.citation.strip() and module.description.strip()
    assert os.path.isfile(os.path.join(metrics.metric_path(name), f"{name}.py"))


def test_load_unknown_name_lists_the_available_metrics():
    with pytest.raises(ValueError) as error:
        metrics.load("f1")
    for name in metrics.METRIC_NAMES:
        assert name in str(error.value)


def test_module_files_are_package_data():
    """Every module file matches a pattern of pyproject's package-data for hf_mixup.metrics."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)
    # evaluate is a core dependency or the `metrics` extra's (issue 19 H moves it there)
    extras = project["project"].get("optional-dependencies", {})
    declared = project["project"]["dependencies"] + extras.get("metrics", [])
    assert any(dep.startswith("evaluate") for dep in declared)
    patterns = project["tool"]["setuptools"]["package-data"]["hf_mixup.metrics"]
    package = ROOT / "hf_mixup" / "metrics"
    shipped = {Path(p) for pattern in patterns for p in glob.glob(str(package / pattern))}
    for name in metrics.METRIC_NAMES:
        assert package / name / f"{name}.py" in shipped


# ---------------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------------

# Top-1 confidences 0.68 (right), 0.72 (wrong), 0.95 (right), 0.90 (right).
ECE_REFERENCES = [0, 0, 1, 0]
ECE_SCORES = [[0.68, 0.32], [0.28, 0.72], [0.05, 0.95], [0.90, 0.10]]
# 15 bins: (2/3, 11/15] holds 0.68 and 0.72 -> |0.5 - 0.70| * 2/4; 0.95 -> 0.05 / 4; 0.90 -> 0.10 / 4.
ECE_15 = 0.2 * 2 / 4 + 0.05 / 4 + 0.10 / 4  # 0.1375 (without |.|: 0.0625)
# 10 bins: 0.68 and 0.72 fall in different bins: (0.32 + 0.72 + 0.10 + 0.05) / 4.
ECE_10 = (0.32 + 0.72 + 0.10 + 0.05) / 4  # 0.2975


def test_ece_hand_computed_with_15_bins_by_default():
    ece = metrics.load("ece", keep_in_memory=True)
    assert ece.compute(references=ECE_REFERENCES, prediction_scores=ECE_SCORES)["ece"] == pytest.approx(ECE_15)
    ten = ece.compute(references=ECE_REFERENCES, prediction_scores=ECE_SCORES, n_bins=10)
    assert ten["ece"] == pytest.approx(ECE_10)
    ece10 = metrics.load("ece", n_bins=10, keep_in_memory=True)
    assert ece10.compute(references=ECE_REFERENCES, prediction_scores=ECE_SCORES)["ece"] == pytest.approx(ECE_10)
    # The Trainer route: logits whose softmax are these probabilities.
    logits = np.log(np.array(ECE_SCORES))
    assert classification_metrics(EvalPrediction(logits, np.array(ECE_REFERENCES)))["ece"] == pytest.approx(ECE_15)


def test_ece_bins_are_open_on_the_left_closed_on_the_right():
    """With 4 bins a confidence of exactly 0.75 is in (0.5, 0.75], not with 0.875 in (0.75, 1]."""
    references, scores = [1, 0], [[0.75, 0.25], [0.875, 0.125]]  # 0.75 wrong, 0.875 right
    ece = metrics.load("ece", n_bins=4, keep_in_memory=True)
    assert ece.compute(references=references, prediction_scores=scores)["ece"] == pytest.approx((0.75 + 0.125) / 2)


def test_calibration_bins_hand_counted_and_they_give_the_ece(tmp_path):
    """With 4 bins: 0.75 (wrong) in (0.5, 0.75], 0.875 (right) and 0.9 (wrong) in (0.75, 1]; a padding label
    (-100) is left out. The bins of two runs add up, and the reliability diagram is drawn from them."""
    from hf_mixup.hub.plots import plot_reliability, pool_bins
    from hf_mixup.metrics import calibration_of
    from hf_mixup.metrics.functional import ece_of_bins

    scores = np.array([[0.75, 0.25], [0.875, 0.125], [0.1, 0.9], [0.6, 0.4]])
    bins = calibration_of(EvalPrediction(np.log(scores), np.array([1, 0, 0, -100])), n_bins=4)
    assert bins["n_bins"] == 4 and bins["count"] == [0, 0, 1, 2]
    assert bins["confidence_sum"] == pytest.approx([0, 0, 0.75, 1.775])
    assert bins["correct_sum"] == [0, 0, 0, 1]
    assert ece_of_bins(bins) == pytest.approx((0.75 + 0.775) / 3)
    ece = metrics.load("ece", n_bins=4, keep_in_memory=True)
    assert ece.compute(references=[1, 0, 0], prediction_scores=scores[:3].tolist())["ece"] == pytest.approx(ece_of_bins(bins))
    pooled = pool_bins([bins, bins])
    assert pooled["count"] == [0, 0, 2, 4] and ece_of_bins(pooled) == pytest.approx(ece_of_bins(bins))
    with pytest.raises(ValueError, match="different numbers of bins"):
        pool_bins([bins, {**bins, "n_bins": 5}])
    path = plot_reliability({"ERM": [bins], "mixup": [bins, bins]}, str(tmp_path / "reliability.png"))
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Six examples over seven classes; the true class is ranked 1, 3, 5, 7, 6, 2 by its score.
TOPK_SCORES = np.array(
    [
        [0.40, 0.20, 0.10, 0.10, 0.10, 0.05, 0.05],  # label 0: rank 1
        [0.30, 0.25, 0.20, 0.10, 0.08, 0.04, 0.03],  # label 2: rank 3
        [0.06, 0.30, 0.25, 0.20, 0.10, 0.05, 0.04],  # label 0: rank 5
        [0.03, 0.30, 0.25, 0.20, 0.10, 0.08, 0.04],  # label 0: rank 7 (lowest)
        [0.30, 0.25, 0.20, 0.10, 0.08, 0.05, 0.02],  # label 5: rank 6
        [0.10, 0.05, 0.05, 0.45, 0.15, 0.10, 0.10],  # label 4: rank 2
    ]
)
TOPK_REFERENCES = [0, 2, 0, 0, 5, 4]


def test_top_k_accuracy_hand_computed():
    top_k = metrics.load("top_k_accuracy", keep_in_memory=True)
    assert top_k.compute(references=TOPK_REFERENCES, prediction_scores=TOPK_SCORES.tolist()) == {
        "top5_accuracy": pytest.approx(4 / 6)  # ranks 1, 3, 5, 2 (top-4 would be 3/6, top-1 1/6)
    }
    assert top_k.compute(references=TOPK_REFERENCES, prediction_scores=TOPK_SCORES.tolist(), k=1) == {
        "top1_accuracy": pytest.approx(1 / 6)
    }
    top3 = metrics.load("top_k_accuracy", k=3, keep_in_memory=True)
    assert top3.compute(references=TOPK_REFERENCES, prediction_scores=TOPK_SCORES.tolist()) == {
        "top3_accuracy": pytest.approx(3 / 6)
    }
    for k in (1, 2, 3, 4, 5, 6):
        expected = skm.top_k_accuracy_score(TOPK_REFERENCES, TOPK_SCORES, k=k, labels=range(7))
        got = top_k.compute(references=TOPK_REFERENCES, prediction_scores=TOPK_SCORES.tolist(), k=k)
        assert got[f"top{k}_accuracy"] == pytest.approx(expected)
    # k at or above the number of classes would always be right: refused (see the test below).
    with pytest.raises(ValueError, match=r"k=9 is not below the number of classes \(7 columns"):
        top_k.compute(references=TOPK_REFERENCES, prediction_scores=TOPK_SCORES.tolist(), k=9)
    # The Trainer route names it the same way.
    out = classification_metrics(EvalPrediction(np.log(TOPK_SCORES), np.array(TOPK_REFERENCES)))
    assert out["top5_accuracy"] == pytest.approx(4 / 6)
    assert out["accuracy"] == pytest.approx(1 / 6)


def test_nll_matches_sklearn_log_loss():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=64)
    references = rng.integers(0, 5, size=64)
    expected = skm.log_loss(references, probs, labels=range(5))
    nll = metrics.load("nll", keep_in_memory=True)
    got = nll.compute(references=references.tolist(), prediction_scores=probs.tolist())
    assert got["nll"] == pytest.approx(expected, rel=1e-9)
    # hand check: uniform over two classes is log 2
    assert nll.compute(references=[0, 1], prediction_scores=[[0.5, 0.5], [0.5, 0.5]])["nll"] == pytest.approx(np.log(2))


def test_nll_of_a_zero_probability_on_the_true_class_is_sklearns_clipped_log_loss():
    """p = 0 on the true class: log is taken of eps (float64 machine epsilon), as scikit-learn clips, not -inf."""
    references = [0, 1, 2]
    probs = [[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.2, 0.0, 0.8]]  # rows 0 and 1 give 0 to the true class
    expected = skm.log_loss(references, probs, labels=range(3))
    eps = np.finfo(np.float64).eps
    assert expected == pytest.approx(-(np.log(eps) + np.log(eps) + np.log(0.8)) / 3, rel=1e-12)  # 24.16...
    got = metrics.load("nll", keep_in_memory=True).compute(references=references, prediction_scores=probs)["nll"]
    assert np.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-12)


def test_regression_matches_sklearn_on_multi_output_data():
    rng = np.random.default_rng(1)
    # Outputs on very different scales: averaging R^2 over outputs differs from pooling them.
    references = rng.normal(size=(40, 3)) * np.array([1.0, 10.0, 0.1]) + np.array([0.0, 5.0, -1.0])
    predictions = references + rng.normal(size=(40, 3)) * np.array([0.5, 2.0, 0.08])
    out = metrics.load("regression", keep_in_memory=True).compute(
        predictions=predictions.tolist(), references=references.tolist()
    )
    assert out["r2"] == pytest.approx(skm.r2_score(references, predictions), rel=1e-9)
    assert out["mse"] == pytest.approx(skm.mean_squared_error(references, predictions), rel=1e-9)
    assert out["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(references, predictions)), rel=1e-9)
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(references, predictions), rel=1e-9)
    # one output per example
    single = metrics.load("regression", keep_in_memory=True).compute(
        predictions=predictions[:, 0].tolist(), references=references[:, 0].tolist()
    )
    assert single["r2"] == pytest.approx(skm.r2_score(references[:, 0], predictions[:, 0]), rel=1e-9)
    assert single["mae"] == pytest.approx(skm.mean_absolute_error(references[:, 0], predictions[:, 0]), rel=1e-9)


def test_multi_label_matches_sklearn():
    rng = np.random.default_rng(2)
    references = (rng.random((50, 6)) < 0.3).astype(int)
    # informative but imperfect per-label probabilities
    probs = np.clip(0.35 * references + 0.6 * rng.random((50, 6)), 0.01, 0.99)
    predicted = (probs > 0.5).astype(int)
    out = metrics.load("multi_label", keep_in_memory=True).compute(
        references=references.tolist(), prediction_scores=probs.tolist()
    )
    assert out["micro_f1"] == pytest.approx(skm.f1_score(references, predicted, average="micro"), rel=1e-9)
    assert out["micro_f1"] != pytest.approx(skm.f1_score(references, predicted, average="macro"), rel=1e-3)
    assert out["exact_match"] == pytest.approx(skm.accuracy_score(references, predicted))
    assert out["label_accuracy"] == pytest.approx(1 - skm.hamming_loss(references, predicted))
    bce = -np.mean(references * np.log(probs) + (1 - references) * np.log(1 - probs))
    assert out["bce"] == pytest.approx(bce, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# inputs the modules refuse (issue 19): logits, class ids out of range, k >= the number of classes
# ---------------------------------------------------------------------------------------------

ISSUE_LOGITS = [[3.0, -1.0], [0.2, 1.5]]  # the issue's example: ece gave 1.25 and nll 0.0 on these


@pytest.mark.parametrize("name", ["ece", "nll"])
def test_probability_metrics_refuse_logits_and_say_apply_softmax(name):
    module = metrics.load(name, keep_in_memory=True)
    with pytest.raises(ValueError) as error:
        module.compute(references=[0, 1], prediction_scores=ISSUE_LOGITS)
    message = str(error.value)
    assert message.startswith(
        f"{name}: prediction_scores row 0 sums to 2 and has values outside [0, 1] (min -1, max 3)"
    )
    assert "2 of 2 rows" in message and "these look like logits; apply softmax first" in message
    assert "scipy.special.softmax(x, axis=-1)" in message and "within 0.001" in message
    # in [0, 1] but not normalised (sigmoid outputs): named as such, row 1 the first bad one
    with pytest.raises(ValueError, match=r"row 1 sums to 1\.7 \(1 of 2 rows.*not probabilities over the classes"):
        module.compute(references=[0, 1], prediction_scores=[[0.5, 0.5], [0.9, 0.8]])
    with pytest.raises(ValueError, match=r"row 0 sums to nan and has values outside \[0, 1\]"):
        module.compute(references=[0, 1], prediction_scores=[[float("nan"), 0.5], [0.5, 0.5]])
    # The softmax of the same logits is accepted and gives the Trainer route's value.
    probs = _softmax(np.array(ISSUE_LOGITS))
    expected = classification_metrics(EvalPrediction(np.array(ISSUE_LOGITS), np.array([0, 1])))[name]
    got = module.compute(references=[0, 1], prediction_scores=probs.tolist())[name]
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", ["ece", "nll"])
def test_row_sums_within_one_thousandth_are_accepted(name):
    module = metrics.load(name, keep_in_memory=True)
    # float32 softmax outputs, and scores rounded to 3 decimals (off by up to 1e-3 in all)
    probs32 = torch.softmax(torch.randn(50, 7, generator=torch.Generator().manual_seed(0)), dim=-1).numpy()
    assert name in module.compute(references=[i % 7 for i in range(50)], prediction_scores=probs32.tolist())
    assert name in module.compute(references=[0, 1], prediction_scores=[[0.3335, 0.6674], [0.4996, 0.4996]])
    with pytest.raises(ValueError, match=r"row 0 sums to 1\.002 "):
        module.compute(references=[0, 1], prediction_scores=[[0.502, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"row 1 has values outside \[0, 1\] \(min -0\.1, max 1\.1\) \(1 of 2 rows"):
        module.compute(references=[0, 1], prediction_scores=[[0.5, 0.5], [-0.1, 1.1]])


@pytest.mark.parametrize("name", ["ece", "nll", "top_k_accuracy"])
def test_references_outside_the_classes_are_named(name):
    module = metrics.load(name, keep_in_memory=True, **({"k": 2} if name == "top_k_accuracy" else {}))
    probs = [[0.2, 0.3, 0.5]] * 4
    with pytest.raises(ValueError) as error:
        module.compute(references=[0, 7, -100, 7], prediction_scores=probs)
    assert str(error.value).startswith(
        f"{name}: references must be class ids in 0..2 (prediction_scores has 3 columns, one per class), got -100, 7 "
        "(first at row 1): map the labels to 0..2"
    )


def test_top_k_accuracy_refuses_k_at_or_above_the_number_of_classes():
    three = [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]
    top5 = metrics.load("top_k_accuracy", keep_in_memory=True)  # k = 5 by default
    with pytest.raises(ValueError) as error:
        top5.compute(references=[0, 1, 2], prediction_scores=three)
    assert str(error.value) == (
        "top_k_accuracy: k=5 is not below the number of classes (3 columns in prediction_scores), so every example "
        "would count as right (top-5 accuracy 1.0 whatever the scores): use k < 3, e.g. "
        'hf_mixup.metrics.load("top_k_accuracy", k=2) or compute(..., k=2), or report accuracy instead'
    )
    with pytest.raises(ValueError, match=r"k=3 is not below the number of classes \(3 columns"):
        top5.compute(references=[0, 1, 2], prediction_scores=three, k=3)
    # k = C - 1 is computed: rows 1 and 2 have the true class in their top 2, row 0 (0.2, last) does not
    assert top5.compute(references=[0, 1, 2], prediction_scores=three, k=2) == {"top2_accuracy": pytest.approx(2 / 3)}
    # ranking only: logits give the same answer (they are not refused here)
    logits = np.log(np.array(three)) + 4.0
    got = top5.compute(references=[0, 1, 2], prediction_scores=logits.tolist(), k=2)
    assert got == {"top2_accuracy": pytest.approx(2 / 3)}


def test_the_trainer_route_on_logits_is_not_checked_and_reports_top5_only_above_5_classes():
    rng = np.random.default_rng(6)
    for classes in (2, 3, 5):  # logits of 5 classes or fewer: no top5_accuracy, no error
        logits, labels = rng.normal(size=(20, classes)) * 4, rng.integers(0, classes, size=20)
        assert set(classification_metrics(EvalPrediction(logits, labels))) == {"accuracy", "nll", "ece"}
    logits, labels = rng.normal(size=(20, 6)) * 4, rng.integers(0, 6, size=20)
    out = classification_metrics(EvalPrediction(logits, labels))
    assert out["top5_accuracy"] == pytest.approx(skm.top_k_accuracy_score(labels, logits, k=5, labels=range(6)))


def test_multi_label_refuses_logits_and_says_apply_sigmoid():
    module = metrics.load("multi_label", keep_in_memory=True)
    with pytest.raises(ValueError) as error:
        module.compute(references=[[1, 0], [0, 1]], prediction_scores=[[0.9, 0.2], [2.0, -3.0]])
    assert str(error.value) == (
        "multi_label: prediction_scores row 1 has values outside [0, 1] (min -3, max 2; 1 of 2 rows have such values): "
        "these look like logits; apply sigmoid first (scipy.special.expit(x) or torch.sigmoid(x))"
    )
    with pytest.raises(ValueError, match=r"references row 0 has values outside \[0, 1\] \(min 0, max 2"):
        module.compute(references=[[0, 2], [0, 1]], prediction_scores=[[0.9, 0.2], [0.1, 0.3]])
    # sigmoid outputs need not sum to 1
    out = module.compute(references=[[1, 1], [0, 1]], prediction_scores=[[0.9, 0.8], [0.1, 0.7]])
    assert out["exact_match"] == 1.0


# ---------------------------------------------------------------------------------------------
# the Trainer's compute_metrics and the evaluate modules agree
# ---------------------------------------------------------------------------------------------


def test_classification_metrics_equal_the_combined_modules_on_the_same_logits():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(200, 10)) * 3
    labels = rng.integers(0, 10, size=200)
    trainer_route = classification_metrics(EvalPrediction(logits.astype(np.float32), labels))
    combined = evaluate.combine([metrics.load(n, keep_in_memory=True) for n in CLASSIFICATION_MODULES])
    probs = _softmax(logits.astype(np.float32))
    module_route = combined.compute(
        predictions=probs.argmax(1).tolist(), references=labels.tolist(), prediction_scores=probs.tolist()
    )
    assert set(module_route) == set(trainer_route) == {"accuracy", "top5_accuracy", "nll", "ece"}
    for key, value in trainer_route.items():
        assert module_route[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    # and against scikit-learn
    assert trainer_route["nll"] == pytest.approx(skm.log_loss(labels, probs, labels=range(10)), rel=1e-9)
    top5 = skm.top_k_accuracy_score(labels, probs, k=5, labels=range(10))
    assert trainer_route["top5_accuracy"] == pytest.approx(top5)


def test_classification_metrics_ignore_padding_labels():
    logits = np.log(np.array(ECE_SCORES + [[0.5, 0.5]]))
    out = classification_metrics(EvalPrediction(logits, np.array(ECE_REFERENCES + [-100])))
    assert out["ece"] == pytest.approx(ECE_15)
    assert out["accuracy"] == pytest.approx(3 / 4)


def test_regression_metrics_equal_the_module():
    rng = np.random.default_rng(4)
    targets = rng.normal(size=(30, 2)) * np.array([1.0, 20.0])
    predictions = targets + rng.normal(size=(30, 2))
    trainer_route = regression_metrics(EvalPrediction(predictions.astype(np.float32), targets.astype(np.float32)))
    module_route = metrics.load("regression", keep_in_memory=True).compute(
        predictions=predictions.astype(np.float32).tolist(), references=targets.astype(np.float32).tolist()
    )
    assert trainer_route == pytest.approx(module_route, rel=1e-9)
    assert trainer_route["r2"] == pytest.approx(skm.r2_score(targets, predictions), rel=1e-5)
    # a [N, 1] model output against [N] targets (the Trainer's single-output regression)
    one = regression_metrics(EvalPrediction(predictions[:, :1], targets[:, 0]))
    assert one["r2"] == pytest.approx(skm.r2_score(targets[:, 0], predictions[:, 0]), rel=1e-9)


def test_multi_label_metrics_equal_the_module():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(40, 5)) * 2
    targets = (rng.random((40, 5)) < 0.4).astype(np.float32)
    trainer_route = multi_label_metrics(EvalPrediction(logits, targets))
    probs = torch.sigmoid(torch.as_tensor(logits, dtype=torch.float64)).numpy()
    module_route = metrics.load("multi_label", keep_in_memory=True).compute(
        references=targets.tolist(), prediction_scores=probs.tolist()
    )
    assert trainer_route == pytest.approx(module_route, rel=1e-9)
    assert trainer_route["micro_f1"] == pytest.approx(skm.f1_score(targets, logits > 0, average="micro"))


# ---------------------------------------------------------------------------------------------
# evaluate.evaluator on a saved checkpoint
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_images():
    """24 scikit-learn digits as RGB PIL images in a `datasets.Dataset` (image, label)."""
    from datasets import ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.images[:24] * 16).clip(0, 255).astype(np.uint8)
    images = [PILImage.fromarray(p).convert("RGB") for p in pixels]
    features = Features({"image": Image(), "label": ClassLabel(names=[f"digit{i}" for i in range(10)])})
    return Dataset.from_dict({"image": images, "label": digits.target[:24].tolist()}, features=features)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny timm ResNet-18 for 8x8 digits (labels 'digit0'..'digit9'), saved with save_pretrained."""
    from hf_mixup.models import create_timm_classifier

    torch.manual_seed(0)
    model = create_timm_classifier(
        "resnet18", [f"digit{i}" for i in range(10)], image_size=8, model_args={"channels": [8, 16, 32, 64]}
    )
    path = tmp_path_factory.mktemp("ckpt")
    model.save_pretrained(path)
    return str(path)


def _direct_logits(pipe, data) -> np.ndarray:
    inputs = pipe.image_processor([row["image"] for row in data], return_tensors="pt")
    with torch.no_grad():
        return pipe.model(**inputs).logits.double().numpy()


def test_evaluator_runs_on_a_saved_checkpoint(checkpoint, digits_images):
    from transformers import pipeline

    label_mapping = {f"digit{i}": i for i in range(10)}
    # evaluate's own evaluator (label ids only) with the module that takes predictions
    plain = evaluate.evaluator("image-classification").compute(
        model_or_pipeline=checkpoint, data=digits_images, metric=metrics.load("accuracy"), label_mapping=label_mapping
    )
    pipe = pipeline("image-classification", model=checkpoint)
    logits = _direct_logits(pipe, digits_images)
    labels = np.array(digits_images["label"])
    expected = classification_metrics(EvalPrediction(logits, labels))
    assert plain["accuracy"] == pytest.approx(expected["accuracy"])
    # ...which cannot feed the probability metrics
    with pytest.raises(ValueError, match="prediction_scores"):
        evaluate.evaluator("image-classification").compute(
            model_or_pipeline=checkpoint, data=digits_images, metric=metrics.load("ece"), label_mapping=label_mapping
        )

    # hf_mixup's evaluator hands them every class's probability; it also takes a Pipeline object
    # (evaluate 0.4.6's evaluator raises AttributeError on one under transformers 5).
    combined = evaluate.combine([metrics.load(n) for n in CLASSIFICATION_MODULES])
    scores = metrics.classification_evaluator("image-classification").compute(
        model_or_pipeline=pipe, data=digits_images, metric=combined, label_mapping=label_mapping
    )
    for key in ("accuracy", "top5_accuracy", "nll", "ece"):
        assert scores[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key
    assert scores["top5_accuracy"] != scores["accuracy"]
    # without label_mapping the model's label2id orders the columns; here the ids are the same
    from_path = metrics.classification_evaluator().compute(
        model_or_pipeline=checkpoint, data=digits_images, metric=combined
    )
    for key in ("accuracy", "top5_accuracy", "nll", "ece"):
        assert from_path[key] == pytest.approx(scores[key], rel=1e-9), key
