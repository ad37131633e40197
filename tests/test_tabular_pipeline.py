"""`pipeline("tabular-classification" | "tabular-regression", model=run_dir)` on real table runs of the
training command: inputs (a dict, a list of dicts, a DataFrame), scores against the model called by hand
on rows encoded by hand from the run's saved preprocessing, the run's label names, regression in the
target's units, multi-label sigmoids, offline loading, and the errors for bad columns."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT
from transformers import AutoModel, pipeline
from transformers.pipelines import PIPELINE_REGISTRY, check_task

import hf_mixup  # noqa: F401  (registers the Auto classes and the two pipeline tasks)
from hf_mixup.cli import train
from hf_mixup.data import OFFLINE_DATASETS
from hf_mixup.pipelines import TabularClassificationPipeline, TabularRegressionPipeline

pytestmark = pytest.mark.slow  # each test uses a table run trained here (seconds)

FAST = ["--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no", "--max_steps", "30",
        "--learning_rate", "0.01", "--per_device_train_batch_size", "16"]


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("iris") / "run"
    train.main(["--dataset_name", "iris", "--output_dir", str(out), *FAST])
    return out


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("diabetes") / "run"
    train.main(["--dataset_name", "diabetes", "--output_dir", str(out), *FAST])
    return out


def multi_label_table(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "height": rng.normal(170, 10, n),
        "city": rng.choice(["Paris", "Oslo", "Lima"], n),
        "spam": rng.integers(0, 2, n),
        "urgent": rng.integers(0, 2, n),
    })


@pytest.fixture(scope="module")
def multi_label_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multi")
    multi_label_table().to_csv(folder / "table.csv", index=False)
    train.main(["--dataset_name", str(folder / "table.csv"), "--label_column", "spam", "urgent",
                "--output_dir", str(folder / "run"), *FAST])
    return folder / "run"


def by_hand(run, frame: pd.DataFrame) -> torch.Tensor:
    """The model's raw outputs on ``frame``: rows encoded from the run's preprocessor_config.json without
    hf_mixup's encoder (standardised numbers, one-hot categories with a last slot for unseen values), then
    the checkpoint called directly."""
    saved = json.loads((run / "preprocessor_config.json").read_text())
    columns = [(frame[c].to_numpy(dtype=np.float64) - m) / s
               for c, m, s in zip(saved["numeric_features"], saved["means"], saved["stds"])]
    for column in saved["categorical_features"]:
        vocabulary = saved["vocabularies"][column]
        slots = np.zeros((len(frame), len(vocabulary) + 1))
        for i, value in enumerate(frame[column].astype(str)):
            slots[i, vocabulary.index(value) if value in vocabulary else len(vocabulary)] = 1.0
        columns += list(slots.T)
    inputs = torch.tensor(np.stack(columns, axis=1), dtype=torch.float32)
    model = AutoModel.from_pretrained(run).eval()
    with torch.no_grad():
        return model(input_values=inputs).logits


def iris_features() -> tuple[pd.DataFrame, list[str], list[int]]:
    data = OFFLINE_DATASETS["iris"]()["train"]
    frame = data.to_pandas()
    return frame.drop(columns="label"), data.features["label"].names, frame["label"].tolist()


def test_import_registers_both_tasks_and_registration_imports_nothing_heavy():
    for task, impl in (("tabular-classification", TabularClassificationPipeline),
                       ("tabular-regression", TabularRegressionPipeline)):
        assert check_task(task)[1]["impl"] is impl
        assert PIPELINE_REGISTRY.supported_tasks[task]["pt"] == (AutoModel,)
    # The registering module on its own (outside the hf_mixup package): transformers only.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('tabular_pipelines', {str(ROOT / 'hf_mixup' / 'pipelines.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "from transformers.pipelines import check_task\n"
        "assert check_task('tabular-regression')[1]['impl'] is module.TabularRegressionPipeline\n"
        "print(sorted(m for m in ('pandas', 'datasets', 'sklearn', 'hf_mixup') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    # `import hf_mixup` alone registers both (this module imports hf_mixup.pipelines itself, so it cannot tell).
    code = (
        "import hf_mixup\n"
        "from transformers.pipelines import check_task\n"
        "print([check_task(t)[1]['impl'].__name__ for t in ('tabular-classification', 'tabular-regression')])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "['TabularClassificationPipeline', 'TabularRegressionPipeline']"


def test_classification_on_a_dict_a_list_and_a_dataframe_matches_the_model(iris_run):
    classify = pipeline("tabular-classification", model=str(iris_run))
    assert isinstance(classify, TabularClassificationPipeline)
    features, _, _ = iris_features()
    rows = features.iloc[[0, 60, 120, 75]].reset_index(drop=True)
    probs = by_hand(iris_run, rows).softmax(-1)
    id2label = AutoModel.from_pretrained(iris_run).config.id2label

    one = classify(rows.iloc[0].to_dict())  # one row: that row's list
    assert len(one) == 1 and set(one[0]) == {"label", "score"}
    assert one[0]["label"] == id2label[int(probs[0].argmax())]
    assert one[0]["score"] == pytest.approx(float(probs[0].max()), abs=1e-6)

    several = classify(rows.to_dict("records"))  # several rows: one list per row
    assert len(several) == 4 and all(len(r) == 1 for r in several)
    assert [r[0]["label"] for r in several] == [id2label[int(i)] for i in probs.argmax(-1)]
    assert classify(rows) == several  # a DataFrame
    assert classify(rows.iloc[0]) == one  # a pandas Series is one row
    from datasets import Dataset

    assert classify(Dataset.from_pandas(rows)) == several
    assert classify([rows.iloc[0].to_dict()]) == [one]

    every = classify(rows, top_k=None)  # every class, sorted, the softmax of the logits
    for row, expected in zip(every, probs):
        assert [d["score"] for d in row] == sorted((d["score"] for d in row), reverse=True)
        scores = {d["label"]: d["score"] for d in row}
        assert scores == pytest.approx({id2label[i]: float(p) for i, p in enumerate(expected)}, abs=1e-6)
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert classify(rows, top_k=2) == [row[:2] for row in every]
    raw = classify(rows, top_k=None, function_to_apply="none")
    logits = by_hand(iris_run, rows)
    assert {d["label"]: d["score"] for d in raw[1]} == pytest.approx(
        {id2label[i]: float(v) for i, v in enumerate(logits[1])}, abs=1e-5)
    # The pipeline's own setting applies to every call; a model object works as well as a folder.
    top_two = pipeline("tabular-classification", model=AutoModel.from_pretrained(iris_run), top_k=2)
    assert top_two(rows) == classify(rows, top_k=2)


def test_labels_are_the_runs_class_names(iris_run):
    features, names, labels = iris_features()
    predictions = pipeline("tabular-classification", model=str(iris_run))(features)
    assert {p[0]["label"] for p in predictions} <= set(names) == {"setosa", "versicolor", "virginica"}
    agree = np.mean([p[0]["label"] == names[y] for p, y in zip(predictions, labels)])
    assert agree > 0.75, agree  # the trained run predicts the true class names (by chance: 1/3)
    # The label columns of a table may come along and are ignored.
    assert pipeline("tabular-classification", model=str(iris_run))(features.assign(label=labels)) == predictions


def test_regression_gives_values_in_the_targets_units(diabetes_run):
    regress = pipeline("tabular-regression", model=str(diabetes_run))
    frame = OFFLINE_DATASETS["diabetes"]()["train"].to_pandas()
    rows = frame.iloc[:5]
    saved = json.loads((diabetes_run / "preprocessor_config.json").read_text())
    expected = (by_hand(diabetes_run, rows)[:, 0] * saved["target_std"] + saved["target_mean"]).tolist()
    out = regress(rows)
    assert [[set(d) for d in r] for r in out] == [[{"label", "score"}]] * 5
    assert [r[0]["label"] for r in out] == ["target"] * 5
    assert [r[0]["score"] for r in out] == pytest.approx(expected, rel=1e-5)
    assert 25 < np.mean(expected) < 346  # diabetes progression units, not standardised ones
    one = regress(rows.drop(columns="target").iloc[2].to_dict())
    assert one[0]["label"] == "target" and one[0]["score"] == pytest.approx(expected[2], rel=1e-5)
    with pytest.raises(ValueError, match="regression model.*tabular-regression"):
        pipeline("tabular-classification", model=str(diabetes_run))
    with pytest.raises(TypeError, match="top_k"):
        regress(rows, top_k=2)


def test_multi_label_gives_every_label_its_sigmoid_and_unseen_categories_their_slot(multi_label_run):
    tag = pipeline("tabular-classification", model=str(multi_label_run))
    rows = pd.DataFrame({"height": [150.0, 170.0, 190.0], "city": ["Paris", "Lima", "Tokyo"]})  # Tokyo: unseen
    probs = by_hand(multi_label_run, rows).sigmoid()
    out = tag(rows)
    for row, expected in zip(out, probs):
        assert sorted(d["label"] for d in row) == ["spam", "urgent"]
        assert {d["label"]: d["score"] for d in row} == pytest.approx(
            {"spam": float(expected[0]), "urgent": float(expected[1])}, abs=1e-6)
    assert tag(rows, top_k=1) == [row[:1] for row in out]


def test_loads_and_predicts_without_the_network(iris_run, monkeypatch):
    import huggingface_hub.constants

    def refuse(*args, **kwargs):
        raise OSError("network access during an offline pipeline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    features, _, _ = iris_features()
    classify = pipeline("tabular-classification", model=str(iris_run), local_files_only=True)
    assert classify(features.iloc[0].to_dict())[0]["label"] in {"setosa", "versicolor", "virginica"}


def test_bad_columns_and_inputs_are_refused_naming_what_is_expected(iris_run):
    classify = pipeline("tabular-classification", model=str(iris_run))
    features, _, _ = iris_features()
    row = features.iloc[0].to_dict()
    expected = r"this run expects exactly the feature columns \['sepal length \(cm\)', 'sepal width \(cm\)'"
    with pytest.raises(ValueError, match=r"the row lacks the columns \['petal width \(cm\)'\]; .*" + expected):
        classify({k: v for k, v in row.items() if k != "petal width (cm)"})
    with pytest.raises(ValueError, match=r"the row has columns the run was not trained on \['colour'\]; " + expected):
        classify({**row, "colour": "red"})
    with pytest.raises(ValueError, match=r"row 1 lacks the columns \['sepal length \(cm\)'\] and has columns the run "
                                         r"was not trained on \['sepal_length'\]"):
        classify([row, {("sepal_length" if k == "sepal length (cm)" else k): v for k, v in row.items()}])
    with pytest.raises(ValueError, match=r"the DataFrame lacks the columns \['sepal width \(cm\)'\]"):
        classify(features.drop(columns="sepal width (cm)"))
    with pytest.raises(ValueError, match="row 1 is a list; give each row as a dict"):
        classify([row, [5.1, 3.5, 1.4, 0.2]])
    with pytest.raises(ValueError, match="several values in the columns"):
        classify({k: [v, v] for k, v in row.items()})
    with pytest.raises(ValueError, match="takes one row as a dict"):
        classify("5.1, 3.5, 1.4, 0.2")
    with pytest.raises(ValueError, match="must hold numbers"):
        classify({**row, "sepal width (cm)": "wide"})
    with pytest.raises(ValueError, match="top_k must be a positive integer or None"):
        classify(row, top_k=0)
    assert classify([]) == []
