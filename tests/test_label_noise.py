"""Corrupted labels (Section 3.4, Table 2): `corrupt_labels`, the training errors on real and on
corrupted labels, best / last test error, and `--label_noise` in the training command."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
from conftest import SMALL_IMAGE_RUN, mixup_args
from datasets import ClassLabel, Dataset, Features, Value
from scipy.stats import chisquare

from hf_mixup.robustness.labels import (
    MemorisationCallback,
    best_and_last_test_error,
    corrupt_labels,
    memorisation_errors,
    training_errors,
)

N = 60_000
K = 10


def labels_dataset(labels, feature=None) -> Dataset:
    """A dataset of ``labels`` (a ClassLabel of K classes unless ``feature`` says otherwise) and a row id."""
    labels = np.asarray(labels)
    feature = feature or ClassLabel(num_classes=K)
    features = Features({"id": Value("int64"), "label": feature})
    return Dataset.from_dict({"id": np.arange(len(labels)), "label": labels}, features=features)


def column(dataset, name) -> np.ndarray:
    return np.asarray(dataset.with_format("numpy", columns=[name])[:][name])


def within_binomial(share: float, p: float, n: int, sds: float = 5.0) -> bool:
    return abs(share - p) <= sds * math.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def balanced():
    return labels_dataset(np.arange(N) % K)


# -- corrupt_labels ---------------------------------------------------------------------------------


def test_half_the_labels_redrawn_uniformly_over_all_classes(balanced):
    start = time.perf_counter()
    noisy = corrupt_labels(balanced, 0.5, seed=0)
    assert time.perf_counter() - start < 1.0  # vectorised: 60,000 labels well under a second
    labels, clean = column(noisy, "label"), column(noisy, "clean_label")
    changed = labels != clean
    # Re-drawn with probability 0.5, and a re-draw lands on the true class 1 time in 10: 0.45 change.
    assert within_binomial(changed.mean(), 0.45, N), changed.mean()
    # A changed label is uniform over the other 9 classes, whatever the true one.
    for true in range(K):
        counts = np.bincount(labels[changed & (clean == true)], minlength=K)
        assert counts[true] == 0
        assert chisquare(np.delete(counts, true)).pvalue > 1e-4, (true, counts)


def test_redrawn_labels_include_the_true_class():
    """Every label 0 and every one re-drawn: the new labels are uniform over all K classes, 0 included."""
    noisy = corrupt_labels(labels_dataset(np.zeros(N, np.int64)), 1.0, seed=3)
    counts = np.bincount(column(noisy, "label"), minlength=K)
    assert counts.sum() == N
    assert chisquare(counts).pvalue > 1e-4, counts
    assert within_binomial(counts[0] / N, 1 / K, N)


def test_fraction_zero_keeps_every_label_and_one_redraws_them_all(balanced):
    kept = corrupt_labels(balanced, 0.0, seed=0)
    assert np.array_equal(column(kept, "label"), column(balanced, "label"))
    redrawn = corrupt_labels(balanced, 1.0, seed=0)
    changed = (column(redrawn, "label") != column(redrawn, "clean_label")).mean()
    assert within_binomial(changed, 0.9, N), changed


def test_same_seed_same_labels_other_seed_other_labels_global_rng_untouched(balanced):
    state = np.random.get_state()
    np.random.seed(123)
    first = column(corrupt_labels(balanced, 0.5, seed=7), "label")
    np.random.seed(456)
    second = column(corrupt_labels(balanced, 0.5, seed=7), "label")
    assert np.array_equal(first, second)
    other = column(corrupt_labels(balanced, 0.5, seed=8), "label")
    assert (first != other).mean() > 0.3
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    corrupt_labels(balanced, 0.5, seed=7)
    assert np.array_equal(np.random.get_state()[1], before)
    np.random.set_state(state)


def test_clean_label_kept_with_the_feature_type_rows_and_format():
    names = [f"c{i}" for i in range(K)]
    source = labels_dataset(np.arange(500) % K, ClassLabel(names=names))
    # A shuffled selection (an indices mapping, as --max_train_samples makes) in torch format.
    subset = source.shuffle(seed=1).select(range(200)).with_format("torch")
    noisy = corrupt_labels(subset, 0.5, seed=0)
    assert noisy.column_names == ["id", "label", "clean_label"]
    assert noisy.features["label"] == noisy.features["clean_label"] == ClassLabel(names=names)
    assert noisy.format["type"] == "torch" and isinstance(noisy[0]["clean_label"], torch.Tensor)
    assert np.array_equal(column(noisy, "id"), column(subset, "id"))
    assert np.array_equal(column(noisy, "clean_label"), column(subset, "label"))
    assert (column(noisy, "label") != column(noisy, "clean_label")).any()


def test_plain_integer_labels_need_num_classes():
    ints = labels_dataset(np.arange(100) % 4, Value("int64"))
    with pytest.raises(ValueError, match="not a ClassLabel: give num_classes"):
        corrupt_labels(ints, 0.5)
    noisy = corrupt_labels(ints, 1.0, num_classes=6, seed=0)
    assert set(column(noisy, "label")) <= set(range(6)) and noisy.features["label"] == Value("int64")
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        corrupt_labels(ints, 0.5, num_classes=3)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), "half"])
def test_fraction_outside_zero_one_is_refused(balanced, fraction):
    with pytest.raises(ValueError, match=r"fraction must be .*\[0, 1\]"):
        corrupt_labels(balanced, fraction)


def test_label_columns_that_are_not_class_ids_are_refused(balanced):
    with pytest.raises(ValueError, match="label_column='target' is not a column"):
        corrupt_labels(balanced, 0.5, label_column="target")
    with pytest.raises(ValueError, match="num_classes=5 but the ClassLabel column 'label' has 10 classes"):
        corrupt_labels(balanced, 0.5, num_classes=5)
    words = Dataset.from_dict({"label": ["cat", "dog"]})
    with pytest.raises(ValueError, match="not class ids; cast it with dataset.class_encode_column"):
        corrupt_labels(words, 0.5, num_classes=2)
    with pytest.raises(ValueError, match="not a ClassLabel: give num_classes"):
        corrupt_labels(words, 0.5)
    with pytest.raises(ValueError, match="already has a 'clean_label' column"):
        corrupt_labels(corrupt_labels(balanced.select(range(10)), 0.5), 0.5)


# -- Real / Corrupted training errors ---------------------------------------------------------------

# 12 examples: 7 keep their label (rows 0-5 and 11), 5 are corrupted (rows 6-10).
CLEAN = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
NOISY = [0, 1, 2, 3, 4, 5, 9, 9, 1, 2, 3, 1]
# Real: rows 3 and 4 wrong (2 / 7). Corrupted, against the noisy label: rows 7, 9, 10 wrong (3 / 5);
# row 7 predicts the true class, which counts as an error on the corrupted label.
PREDICTED = [0, 1, 2, 0, 0, 5, 9, 7, 1, 9, 0, 1]
EXPECTED = {"train_error_real": 2 / 7, "train_error_corrupted": 3 / 5, "train_corrupted_fraction": 5 / 12}


def test_training_errors_by_hand():
    assert training_errors(PREDICTED, NOISY, CLEAN) == pytest.approx(EXPECTED)
    nothing_corrupted = training_errors([0, 1], [0, 0], [0, 0])
    assert nothing_corrupted["train_error_real"] == 0.5 and math.isnan(nothing_corrupted["train_error_corrupted"])
    with pytest.raises(ValueError, match="one entry per example"):
        training_errors([0], [0, 1], [0, 1])


def lookup_model():
    """A classifier whose input is the class it predicts (``pixel_values`` [B, 1]); in train mode it
    predicts the next class instead, so only eval-mode predictions give the expected errors."""
    from transformers import PretrainedConfig, PreTrainedModel
    from transformers.modeling_outputs import ImageClassifierOutput

    class Lookup(PreTrainedModel):
        config_class = PretrainedConfig
        main_input_name = "pixel_values"

        def __init__(self, config):
            super().__init__(config)
            self.scale = torch.nn.Parameter(torch.tensor(5.0))
            self.post_init()

        def _init_weights(self, module):
            pass

        def forward(self, pixel_values):
            predicted = pixel_values[:, 0].round().long().clamp(0, self.config.num_labels - 1)
            if self.training:
                predicted = (predicted + 1) % self.config.num_labels
            one_hot = torch.nn.functional.one_hot(predicted, self.config.num_labels).float()
            return ImageClassifierOutput(logits=one_hot * self.scale)

    return Lookup(PretrainedConfig(num_labels=K))


def lookup_dataset() -> Dataset:
    """The 12 examples above as `corrupt_labels` output, with a transform giving the model's input."""
    features = Features({"x": Value("float32"), "label": ClassLabel(num_classes=K), "clean_label": ClassLabel(num_classes=K)})
    data = Dataset.from_dict({"x": PREDICTED, "label": NOISY, "clean_label": CLEAN}, features=features)

    def transform(batch):
        return {"pixel_values": torch.tensor(batch["x"]).view(-1, 1), "labels": torch.tensor(batch["label"])}

    data.set_transform(transform)
    return data


def test_memorisation_errors_through_the_trainer_in_eval_mode(tmp_path):
    from hf_mixup import MixupTrainer

    model = lookup_model().train()
    # An eval batch of 5 does not divide the 12 rows: the order and count of predictions must hold.
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path, per_device_eval_batch_size=5, remove_unused_columns=False))
    assert memorisation_errors(trainer, lookup_dataset()) == pytest.approx(EXPECTED)


def test_callback_logs_every_epoch_and_at_the_end_with_best_and_last_test_error(tmp_path):
    from hf_mixup import MixupTrainer

    data = lookup_dataset()
    trainer = MixupTrainer(
        model=lookup_model(),
        args=mixup_args(tmp_path, num_train_epochs=2, per_device_train_batch_size=4, learning_rate=0.0,
                        eval_strategy="epoch", remove_unused_columns=False),
        train_dataset=data,
        eval_dataset=data,
    )
    callback = MemorisationCallback(trainer, data, every_epoch=True)
    trainer.add_callback(callback)
    trainer.train()
    assert [row["epoch"] for row in callback.history] == [1.0, 2.0]
    for row in callback.history:
        assert {k: row[k] for k in EXPECTED} == pytest.approx(EXPECTED)
    logged = [h for h in trainer.state.log_history if "train_error_real" in h]
    assert [h["epoch"] for h in logged] == [1.0, 2.0]
    # The model predicts PREDICTED in eval mode; evaluated against the noisy labels: 5 of 12 wrong.
    assert callback.final == pytest.approx({**EXPECTED, "test_error": 5 / 12, "best_test_error": 5 / 12})
    with pytest.raises(ValueError, match=r"no column \['clean_label'\]"):
        MemorisationCallback(trainer, data.remove_columns("clean_label"))


def test_with_load_best_model_at_end_the_final_figures_are_the_best_models(tmp_path):
    """The lookup model predicts PREDICTED in epoch 1 and, with its scale set to -5 in epoch 2, class 0 (1 where
    PREDICTED is 0) for every row: every training label wrong, and a worse evaluation. The best checkpoint (epoch
    1) is loaded at the end, and the final memorisation figures are its own, not the last epoch's."""
    from transformers import TrainerCallback

    from hf_mixup import MixupTrainer

    class ScalePerEpoch(TrainerCallback):
        def __init__(self, scales):
            self.scales = iter(scales)

        def on_epoch_begin(self, args, state, control, model=None, **kwargs):
            with torch.no_grad():
                model.scale.fill_(next(self.scales))

    data = lookup_dataset()
    trainer = MixupTrainer(
        model=lookup_model(),
        args=mixup_args(tmp_path, num_train_epochs=2, per_device_train_batch_size=4, learning_rate=0.0,
                        eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
                        metric_for_best_model="accuracy", remove_unused_columns=False),
        train_dataset=data,
        eval_dataset=data,
        callbacks=[ScalePerEpoch([5.0, -5.0])],
    )
    callback = MemorisationCallback(trainer, data, every_epoch=True)
    trainer.add_callback(callback)
    trainer.train()
    last_epoch = {"train_error_real": 1.0, "train_error_corrupted": 1.0, "train_corrupted_fraction": 5 / 12}
    assert [{k: row[k] for k in EXPECTED} for row in callback.history] == [pytest.approx(EXPECTED), last_epoch]
    assert trainer.state.best_model_checkpoint == str(tmp_path / "checkpoint-3")
    assert trainer.model.scale.item() == 5.0  # the best model is the one in the trainer now
    # final: the loaded best model's figures; test errors: last (epoch 2: 12 of 12 wrong) and best (5 of 12)
    assert callback.final == pytest.approx({**EXPECTED, "test_error": 1.0, "best_test_error": 5 / 12})
    logged = [h for h in trainer.state.log_history if "train_error_real" in h]
    assert {k: logged[-1][k] for k in EXPECTED} == pytest.approx(EXPECTED)  # and logged


def test_best_and_last_test_error_from_the_log_history():
    history = [
        {"loss": 2.0, "step": 1},
        {"eval_accuracy": 0.80, "epoch": 1.0},
        {"eval_accuracy": 0.90, "epoch": 2.0},
        {"eval_accuracy": 0.85, "epoch": 3.0},
        {"train_loss": 1.0},
        {"test_accuracy": 0.84},
    ]
    assert best_and_last_test_error(history) == pytest.approx({"test_error": 0.16, "best_test_error": 0.10})
    assert best_and_last_test_error([{"loss": 1.0}]) == {}


# -- the training command ---------------------------------------------------------------------------

SMALL = [*SMALL_IMAGE_RUN, "--save_strategy", "no"]


@pytest.mark.slow
def test_train_command_with_label_noise(tmp_path):
    from huggingface_hub import ModelCard

    from hf_mixup.cli import train
    from hf_mixup.data import load_digits_dataset

    out = tmp_path / "noisy"
    argv = SMALL + ["--label_noise", "0.5", "--label_noise_seed", "3", "--memorisation_every_epoch", "true",
                    "--max_steps", "2", "--output_dir", str(out)]
    metrics = train.main(argv)

    # The training split is the --max_train_samples selection, corrupted; the evaluation split is intact.
    trainer, evaluation, _ = train.build_trainer(*train.parse_args(argv))
    digits = load_digits_dataset()
    selection = digits["train"].shuffle(seed=42).select(range(256))
    expected = corrupt_labels(selection, 0.5, seed=3)
    noisy = trainer.train_dataset.with_format("numpy", columns=["label", "clean_label"])[:]
    assert np.array_equal(noisy["label"], column(expected, "label"))
    assert np.array_equal(noisy["clean_label"], column(selection, "label"))
    assert "clean_label" not in evaluation.column_names
    assert np.array_equal(column(evaluation, "label"), column(digits["test"], "label")[:128])
    share = float((noisy["label"] != noisy["clean_label"]).mean())
    assert within_binomial(share, 0.45, 256)

    results = json.loads((out / "all_results.json").read_text())
    keys = {"train_error_real", "train_error_corrupted", "train_corrupted_fraction", "test_error", "best_test_error"}
    assert keys <= results.keys() and keys <= metrics.keys()
    assert results["train_corrupted_fraction"] == pytest.approx(share)
    assert all(0.0 <= results[k] <= 1.0 for k in keys)
    assert results["test_error"] == pytest.approx(1.0 - results["test_accuracy"])
    assert results["best_test_error"] <= results["test_error"] + 1e-12
    state = json.loads((out / "trainer_state.json").read_text())
    per_epoch = [h for h in state["log_history"] if "train_error_corrupted" in h]
    assert per_epoch and per_epoch[-1]["train_error_corrupted"] == pytest.approx(results["train_error_corrupted"])

    card = ModelCard.load(out / "README.md")
    results_in_card = {r.metric_type: (r.metric_value, r.dataset_split) for r in card.data.eval_results}
    assert results_in_card["train_error_corrupted"] == (pytest.approx(results["train_error_corrupted"], abs=1e-6), "train")
    assert results_in_card["train_error_real"][0] == pytest.approx(results["train_error_real"], abs=1e-6)
    assert results_in_card["best_error"][0] == pytest.approx(results["best_test_error"], abs=1e-6)
    assert "Training error on corrupted labels" in card.text
    # The recipe table says what the run trained on; the published card (rebuilt from the folder) too.
    from hf_mixup.hub.publish import load_run, render_card

    for text in (card.text, render_card(load_run(str(out)), "someone/noisy-digits").text):
        assert "| label noise | 0.5: each training label re-drawn uniformly over the classes with this probability " \
               "(corruption seed 3); evaluation labels intact |" in text
        assert "| training examples | 256 (a subset drawn with the seed) |" in text


def test_card_names_the_step_schedule(tmp_path):
    """With lr_milestones the schedule is the step decay (it replaces lr_scheduler_type), not "linear"."""
    from hf_mixup.hub.card import lr_schedule_of, recipe_of

    args = mixup_args(tmp_path, lr_milestones=[30, 45], lr_gamma=0.2)
    assert lr_schedule_of(args) == recipe_of(args)["lr schedule"] == "step: x 0.2 at epochs 30, 45"
    assert lr_schedule_of(mixup_args(tmp_path, lr_scheduler_type="cosine")) == "cosine"


def test_train_command_refuses_label_noise_it_cannot_apply(tmp_path):
    from hf_mixup.cli import train
    from hf_mixup.data import load_digits_dataset

    out = ["--output_dir", str(tmp_path / "out"), "--report_to", "none"]
    with pytest.raises(ValueError, match="--label_noise 1.5 is not a probability"):
        train.build_trainer(*train.parse_args(out + ["--label_noise", "1.5"]))
    with pytest.raises(ValueError, match="--memorisation_every_epoch needs --label_noise"):
        train.build_trainer(*train.parse_args(out + ["--memorisation_every_epoch", "true"]))
    with pytest.raises(ValueError, match="image datasets only; this dataset is a table"):
        train.build_trainer(*train.parse_args(out + ["--dataset_name", "iris", "--label_noise", "0.5"]))
    plain = tmp_path / "plain"
    digits = load_digits_dataset()
    digits.cast_column("label", Value("int64")).save_to_disk(str(plain))
    with pytest.raises(ValueError, match="--label_noise needs class ids in a ClassLabel label column"):
        train.build_trainer(*train.parse_args(out + ["--dataset_name", str(plain), "--label_noise", "0.5"]))
