"""Tables: the preprocessing kept with the checkpoint, the MLP, the offline UCI tables, and
`scripts/train.py` on tables (classification, regression, multi-label; csv, parquet, json, Hub ids)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT, fixed_mixer, mixed_by_hand
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

import hf_mixup  # noqa: F401  (registers the Auto classes)
from hf_mixup import MixupArguments, MixupTrainer
from hf_mixup.cli import train
from hf_mixup.data import OFFLINE_DATASETS, TABULAR_DATASETS
from hf_mixup.data.tabular import TabularPreprocessor, TensorTable, split_table
from hf_mixup.mixing import MixDraw
from hf_mixup.models import TabularMLPConfig, TabularMLPForPrediction

QUIET = ["--report_to", "none", "--disable_tqdm", "true"]


def table() -> pd.DataFrame:
    return pd.DataFrame({
        "size": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "colour": ["red", "blue", "red", "green", "blue", "red"],
        "fresh": [True, False, True, True, False, False],
        "kind": ["a", "b", "a", "b", "a", "b"],
    })


def test_preprocessor_encodes_exactly():
    frame = table()
    p = TabularPreprocessor.fit(frame, "kind")
    assert p.task == "single_label_classification" and p.label_names == ["a", "b"]
    assert p.numeric_features == ["size"] and p.categorical_features == ["colour", "fresh"]
    assert p.feature_names == ["size", "colour=blue", "colour=green", "colour=red", "colour=<other>",
                               "fresh=false", "fresh=true", "fresh=<other>"]
    encoded = p.encode(frame)
    std = np.std(np.arange(1.0, 7.0))
    np.testing.assert_allclose(encoded[:, 0], (np.arange(1.0, 7.0) - 3.5) / std, rtol=1e-6)
    np.testing.assert_array_equal(encoded[0, 1:], [0, 0, 1, 0, 0, 1, 0])
    # An unseen category goes to the <other> slot; a missing one too.
    unseen = p.encode({"size": 3.5, "colour": "purple", "fresh": None})
    np.testing.assert_array_equal(unseen[0], [0, 0, 0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(p.encode_labels(frame), [0, 1, 0, 1, 0, 1])


def test_missing_numbers_are_refused_with_the_column_name_or_imputed():
    frame = table()
    frame.loc[2, "size"] = np.nan
    with pytest.raises(ValueError, match="column 'size' has 1 missing values"):
        TabularPreprocessor.fit(frame, "kind")
    p = TabularPreprocessor.fit(frame, "kind", missing="mean")
    assert p.means[0] == pytest.approx(np.nanmean(frame["size"]))
    assert p.encode(frame)[2, 0] == 0.0  # the mean, standardised
    strict = TabularPreprocessor.fit(table(), "kind")
    with pytest.raises(ValueError, match="column 'size' has 1 missing values"):
        strict.encode(frame)
    with pytest.raises(ValueError, match=r"lack the feature columns \['colour'\]"):
        strict.encode(frame.drop(columns="colour"))


def test_tasks_are_recognised_and_targets_encoded():
    frame = table()
    frame["price"] = [1.5, 2.25, 3.0, 10.0, 0.5, 7.75]
    frame["tag_x"] = [0, 1, 1, 0, 0, 1]
    frame["tag_y"] = [1, 1, 0, 0, 1, 0]
    regression = TabularPreprocessor.fit(frame, "price", feature_columns=["size", "colour"])
    assert regression.task == "regression" and regression.num_labels == 1
    targets = regression.encode_labels(frame)
    assert targets.shape == (6, 1)
    np.testing.assert_allclose(targets[:, 0] * regression.target_std + regression.target_mean, frame["price"], rtol=1e-5)
    multi = TabularPreprocessor.fit(frame, ["tag_x", "tag_y"], feature_columns=["size"])
    assert multi.task == "multi_label_classification" and multi.label_names == ["tag_x", "tag_y"]
    np.testing.assert_array_equal(multi.encode_labels(frame), frame[["tag_x", "tag_y"]].to_numpy())
    with pytest.raises(ValueError, match="both features and labels"):
        TabularPreprocessor.fit(frame, "kind", feature_columns=["kind", "size"])
    with pytest.raises(ValueError, match="not in the table"):
        TabularPreprocessor.fit(frame, "nope")


@pytest.mark.parametrize("kind", ["classification", "regression", "multi_label"])
def test_checkpoint_predicts_on_raw_rows_with_auto_classes(tmp_path, kind):
    frame = table()
    frame["price"] = [1.5, 2.25, 3.0, 10.0, 0.5, 7.75]
    frame["tag_x"] = [0, 1, 1, 0, 0, 1]
    frame["tag_y"] = [1, 1, 0, 0, 1, 0]
    features = ["size", "colour", "fresh"]
    labels = {"classification": "kind", "regression": "price", "multi_label": ["tag_x", "tag_y"]}[kind]
    p = TabularPreprocessor.fit(frame, labels, feature_columns=features)
    torch.manual_seed(0)
    model = TabularMLPForPrediction(TabularMLPConfig.from_preprocessor(p, hidden_sizes=[8, 8]))
    model.save_pretrained(tmp_path)
    p.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), TabularMLPConfig)
    assert isinstance(AutoFeatureExtractor.from_pretrained(tmp_path), TabularPreprocessor)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, TabularMLPForPrediction)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])
    expected = model.predict(frame)
    assert loaded.predict(frame) == expected
    assert loaded.predict(frame.iloc[0][features].to_dict()) == expected[:1]
    assert loaded.predict(frame[features].to_dict("records")) == expected
    with torch.no_grad():
        logits = model(input_values=torch.from_numpy(p.encode(frame))).logits
    if kind == "classification":
        probs = logits.softmax(-1)
        assert [r["label"] for r in expected] == [p.label_names[i] for i in probs.argmax(-1).tolist()]
        assert expected[0]["score"] == pytest.approx(float(probs[0].max()))
    elif kind == "regression":
        assert expected == pytest.approx((logits[:, 0] * p.target_std + p.target_mean).tolist())
    else:
        assert all(set(r) <= {"tag_x", "tag_y"} for r in expected)


@pytest.mark.parametrize("name", sorted(TABULAR_DATASETS))
def test_offline_tables_load_with_a_label_column(name):
    from datasets import ClassLabel

    data = OFFLINE_DATASETS[name]()["train"]
    expected_rows = {"iris": 150, "wine": 178, "breast_cancer": 569, "phishing": 1250, "abalone": 4174, "diabetes": 442}
    assert data.num_rows == expected_rows[name]
    if TABULAR_DATASETS[name] == "regression":
        assert "target" in data.column_names
    else:
        assert isinstance(data.features["label"], ClassLabel)
    if name == "abalone":
        assert sum(data["label"]) == 32 and set(data["sex"]) == {"M", "F", "I"}


def test_split_is_stratified_and_fixed_by_its_seed():
    frame = OFFLINE_DATASETS["iris"]()["train"].to_pandas()
    train_a, test_a = split_table(frame, "label", 0.2, seed=0)
    train_b, test_b = split_table(frame, "label", 0.2, seed=0)
    _, test_c = split_table(frame, "label", 0.2, seed=1)
    pd.testing.assert_frame_equal(test_a, test_b)
    assert not test_a.equals(test_c)
    assert len(test_a) == 30 and test_a["label"].value_counts().tolist() == [10, 10, 10]
    assert len(train_a) + len(test_a) == 150


def test_trainer_mixes_table_rows_and_regression_targets(tmp_path):
    """Regression through MixupTrainer: MSE on mixed standardised targets; metrics in the target's units."""
    frame = OFFLINE_DATASETS["diabetes"]()["train"].to_pandas()
    p = TabularPreprocessor.fit(frame, "target")
    model = TabularMLPForPrediction(TabularMLPConfig.from_preprocessor(p))
    assert model.config.problem_type == "regression"
    from hf_mixup.data.tabular import regression_metrics_in_units

    args = MixupArguments(output_dir=str(tmp_path), mixup_alpha=1.0, per_device_train_batch_size=16, max_steps=3,
                          report_to="none", disable_tqdm=True, save_strategy="no", use_cpu=True)
    trainer = MixupTrainer(model=model, args=args, train_dataset=TensorTable.from_rows(p, frame),
                           eval_dataset=TensorTable.from_rows(p, frame), compute_metrics=regression_metrics_in_units(p))
    trainer.train()
    metrics = trainer.evaluate()
    assert math.isfinite(metrics["eval_rmse"]) and metrics["eval_rmse"] > 1.0  # target units (std ~77), not standardised
    assert metrics["eval_rmse"] == pytest.approx(metrics["eval_mse"] ** 0.5)

    # A training batch: the loss is the MSE of the model on mixed rows against the same mix of the targets.
    lam = torch.tensor([0.2, 0.9, 0.35, 0.6, 0.75, 0.5, 0.1, 0.45])
    draw = MixDraw(lam=lam, index=torch.tensor([3, 6, 5, 0, 7, 2, 1, 4]))
    fixed = MixupTrainer(model=model, args=args, mixer=fixed_mixer(draw))
    table = TensorTable.from_rows(p, frame.iloc[:8])
    batch = {"input_values": table.input_values, "labels": table.labels}
    model.train()
    loss = fixed.compute_loss(model, batch)
    predictions = model(input_values=mixed_by_hand(batch["input_values"], draw)).logits
    assert predictions.shape == batch["labels"].shape == (8, 1)
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(predictions, mixed_by_hand(batch["labels"], draw)))


@pytest.mark.slow
@pytest.mark.parametrize("with_labels", [True, False])
def test_whole_batches_equal_the_rows_stacked(with_labels):
    """`TensorTable.__getitems__` (what a DataLoader calls) gives the batch the per-row path stacks, exactly: class
    ids, standardised regression targets and multi-hot rows alike, and an unlabelled table."""
    from transformers import default_data_collator

    from hf_mixup.data.in_memory import collate_batches

    frame = table()
    frame["score"] = np.linspace(-1.0, 2.0, len(frame))
    frame["urgent"], frame["spam"] = [0, 1, 1, 0, 1, 0], [1, 1, 0, 0, 0, 1]
    indices = [4, 0, 5, 5, 2]
    for labels in ("kind", "score", ["urgent", "spam"]):
        p = TabularPreprocessor.fit(frame, labels)
        data = TensorTable.from_rows(p, frame, with_labels=with_labels)
        batch = collate_batches(data.__getitems__(indices))
        stacked = default_data_collator([data[i] for i in indices])
        assert batch.keys() == stacked.keys() == ({"input_values", "labels"} if with_labels else {"input_values"})
        for key in batch:
            assert batch[key].dtype == stacked[key].dtype and torch.equal(batch[key], stacked[key]), (labels, key)
        loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True, collate_fn=collate_batches,
                                             generator=torch.Generator().manual_seed(0))
        rows = torch.utils.data.DataLoader(_RowByRow(data), batch_size=4, shuffle=True,
                                           generator=torch.Generator().manual_seed(0))
        for whole, one_by_one in zip(loader, rows, strict=True):
            assert all(torch.equal(whole[key], one_by_one[key]) for key in whole)


class _RowByRow(torch.utils.data.Dataset):
    """A table read one row at a time (no ``__getitems__``): the path before tables served whole batches."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]


def test_the_command_trains_the_same_weights_on_whole_batches_as_row_by_row(tmp_path, monkeypatch):
    """A table trained through the command gives bit-identical weights and figures whether its batches come whole
    (`TensorTable.__getitems__`, `collate_batches`) or stacked row by row, with the logged gradient norm taken by
    transformers' own path (accelerate's clip by 1.0); and a MixupTrainer built without a collator, with
    `remove_unused_columns=True`, trains on whole batches too."""
    from safetensors.torch import load_file
    from transformers import Trainer

    recipe = [str(ROOT / "recipes" / "uci_mlp.yaml"), "--num_train_epochs", "3", "--logging_steps", "4", *QUIET]
    whole = train.main(recipe + ["--output_dir", str(tmp_path / "whole")])
    with monkeypatch.context() as patch:
        patch.delattr(TensorTable, "__getitems__")
        patch.setattr(MixupTrainer, "_get_grad_norm", Trainer._get_grad_norm)
        rows = train.main(recipe + ["--output_dir", str(tmp_path / "rows")])
    timed = ("runtime", "per_second")
    assert {k: v for k, v in whole.items() if not any(t in k for t in timed)} == {
        k: v for k, v in rows.items() if not any(t in k for t in timed)}
    weights = [load_file(tmp_path / name / "model.safetensors") for name in ("whole", "rows")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])

    frame = OFFLINE_DATASETS["iris"]()["train"].to_pandas()
    p = TabularPreprocessor.fit(frame, "label")
    args = MixupArguments(output_dir=str(tmp_path / "defaults"), per_device_train_batch_size=16, max_steps=3,
                          report_to="none", disable_tqdm=True, save_strategy="no", use_cpu=True)
    assert args.remove_unused_columns
    trainer = MixupTrainer(model=TabularMLPForPrediction(TabularMLPConfig.from_preprocessor(p)), args=args,
                           train_dataset=TensorTable.from_rows(p, frame), eval_dataset=TensorTable.from_rows(p, frame))
    assert trainer.train().global_step == 3 and math.isfinite(trainer.evaluate()["eval_loss"])


def test_train_script_on_offline_tables(tmp_path):
    iris = train.main([str(ROOT / "recipes" / "uci_mlp.yaml"), "--output_dir", str(tmp_path / "iris"), *QUIET])
    assert 0.0 <= iris["test_error"] <= 0.5
    card = (tmp_path / "iris" / "README.md").read_text()
    assert "tabular" in card
    model = AutoModel.from_pretrained(tmp_path / "iris")
    row = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}
    assert model.predict(row)[0]["label"] in ("setosa", "versicolor", "virginica")
    diabetes = train.main([str(ROOT / "recipes" / "uci_mlp.yaml"), "--dataset_name", "diabetes",
                           "--output_dir", str(tmp_path / "diabetes"), *QUIET])
    assert diabetes["test_rmse"] > 1.0 and "test_r2" in diabetes
    config = json.loads((tmp_path / "diabetes" / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["preprocessing"]["label_columns"] == ["target"]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_train_script_on_local_files_with_categories_gaps_and_multi_label(tmp_path, suffix):
    rng = np.random.default_rng(0)
    n = 80
    frame = pd.DataFrame({
        "height": rng.normal(170, 10, n),
        "city": rng.choice(["Paris", "Oslo", "Lima"], n),
        "score": rng.normal(0, 1, n),
        "spam": rng.integers(0, 2, n),
        "urgent": rng.integers(0, 2, n),
        "grade": rng.choice(["low", "high"], n),
    })
    frame.loc[[3, 9], "score"] = np.nan
    path = tmp_path / f"table{suffix}"
    {".csv": lambda: frame.to_csv(path, index=False), ".parquet": lambda: frame.to_parquet(path),
     ".jsonl": lambda: frame.to_json(path, orient="records", lines=True)}[suffix]()
    common = [str(ROOT / "recipes" / "uci_mlp.yaml"), "--dataset_name", str(path), "--num_train_epochs", "1", *QUIET]
    with pytest.raises(ValueError, match="column 'score' has 2 missing values"):
        train.main(common + ["--label_column", "grade", "--output_dir", str(tmp_path / "strict")])
    single = train.main(common + ["--label_column", "grade", "--missing_values", "mean", "--output_dir", str(tmp_path / "single")])
    assert "test_accuracy" in single
    multi = train.main(common + ["--label_column", "spam", "urgent", "--feature_columns", "height", "city",
                                 "--output_dir", str(tmp_path / "multi")])
    config = json.loads((tmp_path / "multi" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification" and len(config["id2label"]) == 2
    assert 0.0 <= multi["test_micro_f1"] <= 1.0 and "test_exact_match" in multi


@pytest.mark.slow
def test_hub_table_ids_go_through_load_dataset(tmp_path, monkeypatch):
    """A Hub table (the schema of scikit-learn/iris: Id, SepalLengthCm, ..., Species) through the real
    `load_dataset` in offline mode, from a real datasets cache."""
    import datasets
    import huggingface_hub.constants
    from datasets import Dataset, DatasetDict
    from hub_layout import cache_hub_dataset

    iris = OFFLINE_DATASETS["iris"]()["train"].to_pandas()
    names = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]
    hub = pd.DataFrame({
        "Id": np.arange(1, 151),
        "SepalLengthCm": iris.iloc[:, 0], "SepalWidthCm": iris.iloc[:, 1],
        "PetalLengthCm": iris.iloc[:, 2], "PetalWidthCm": iris.iloc[:, 3],
        "Species": [names[i] for i in iris["label"]],
    })
    cache = tmp_path / "cache"
    cache_hub_dataset(cache, "scikit-learn/iris", DatasetDict({"train": Dataset.from_pandas(hub)}))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    metrics = train.main([str(ROOT / "recipes" / "uci_mlp.yaml"), "--dataset_name", "scikit-learn/iris",
                          "--label_column", "Species", "--feature_columns", "SepalLengthCm", "SepalWidthCm",
                          "PetalLengthCm", "PetalWidthCm", "--output_dir", str(tmp_path / "run"), *QUIET])
    assert metrics["test_error"] < 0.5
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert sorted(config["id2label"].values()) == names
    assert config["preprocessing"]["numeric_features"] == ["SepalLengthCm", "SepalWidthCm", "PetalLengthCm", "PetalWidthCm"]


@pytest.mark.slow
def test_reproduce_uci_writes_the_table(tmp_path):
    import runpy

    script = runpy.run_path(str(ROOT / "scripts" / "reproduce_uci.py"), run_name="uci_runner")  # its main(argv)
    script["main"](["--seeds", "2", "--datasets", "iris", "diabetes", "--runs_dir", str(tmp_path / "runs"),
                    "--output", str(tmp_path / "uci")])
    results = json.loads((tmp_path / "uci.json").read_text())["results"]
    assert len(results["iris"]["erm"]) == len(results["iris"]["mixup"]) == 2
    assert len(results["diabetes"]["erm"]) == len(results["diabetes"]["mixup"]) == 2
    text = (tmp_path / "uci.md").read_text()
    assert "| iris |" in text and "| 21.3 | 17.3 |" in text and "| diabetes |" in text


def test_codes_and_names_survive_type_changes_and_a_save(tmp_path):
    """An integer code column read back as floats (a gap makes pandas upcast it) keeps its categories,
    and tables whose column names are not strings (read_csv(header=None)) survive save/load."""
    frame = pd.DataFrame({0: [1.5, 2.5, 3.5, 4.5], 1: [1, 2, 1, 3], 2: ["x", "y", "x", "y"]})
    p = TabularPreprocessor.fit(frame, "2", categorical_columns=["1"])
    assert p.categorical_features == ["1"] and p.vocabularies["1"] == ["1", "2", "3"]
    gaps = pd.DataFrame({0: [1.5, 2.5], 1: [2.0, None]})  # floats now, and a missing code
    np.testing.assert_array_equal(p.encode(gaps)[:, 1:], [[0, 1, 0, 0], [0, 0, 0, 1]])
    p.save_pretrained(tmp_path)
    loaded = AutoFeatureExtractor.from_pretrained(tmp_path)
    np.testing.assert_array_equal(loaded.encode(gaps), p.encode(gaps))
    np.testing.assert_array_equal(loaded.encode_labels(frame), [0, 1, 0, 1])
