"""Inputs checked once, before training (`MixupTrainer.check_inputs`, `hf_mixup.checks`): a label the model
cannot take, or CutMix on inputs without two spatial axes, is a `ValueError` that names the column, the bad
values and what to change, raised before the first step; on the command line, one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import digits_as_dataset, mixup_args, tiny_resnet, weights
from datasets import Dataset, Features, Sequence, Value
from test_cli import one_line_error

from hf_mixup import MixupArguments, MixupTrainer
from hf_mixup.checks import check_spatial_inputs
from hf_mixup.cli import train


def digits_with_labels(digits_arrays, labels, n=64, label_feature=None):
    pixels, _ = digits_arrays
    features = Features({"pixel_values": Sequence(Sequence(Sequence(Value("float32")))),
                         "label": label_feature or Value("int64")})
    return Dataset.from_dict({"pixel_values": pixels[:n].numpy(), "label": labels}, features=features).with_format("torch")


def trainer_for(tmp_path, train, evaluation=None, **kwargs):
    return MixupTrainer(model=tiny_resnet(), args=mixup_args(tmp_path, max_steps=2, per_device_train_batch_size=8, **kwargs),
                        train_dataset=train, eval_dataset=evaluation)


def test_a_class_id_out_of_range_is_named_before_the_first_step(tmp_path, digits_arrays):
    labels = [i % 10 for i in range(64)]
    labels[5], labels[9] = 18, 12
    trainer = trainer_for(tmp_path, digits_with_labels(digits_arrays, labels))
    before = weights(trainer.model)
    with pytest.raises(ValueError) as error:
        trainer.train()
    message = str(error.value)
    assert "training labels in 'label' must be class ids in 0..9" in message
    assert "found 12, 18 in 2 example(s)" in message and "num_labels" in message
    assert all(torch.equal(before[k], v) for k, v in weights(trainer.model).items())
    assert trainer.state.global_step == 0


def test_minus_100_is_for_evaluation_and_erm_only(tmp_path, digits_arrays):
    labels = [i % 10 for i in range(64)]
    ignored = [-100 if i == 3 else label for i, label in enumerate(labels)]
    negative = [-3 if i == 3 else label for i, label in enumerate(labels)]
    clean = digits_with_labels(digits_arrays, labels)
    trainer_for(tmp_path, clean, digits_with_labels(digits_arrays, ignored)).check_inputs()  # -100 in evaluation
    trainer_for(tmp_path, digits_with_labels(digits_arrays, ignored), mixup_alpha=0.0).check_inputs()  # ERM
    with pytest.raises(ValueError, match="found -100 in 1 example.*cannot be mixed"):
        trainer_for(tmp_path, digits_with_labels(digits_arrays, ignored)).check_inputs()
    with pytest.raises(ValueError, match=r"evaluation labels in 'label' must be class ids in 0..9 \(or -100.*found -3"):
        trainer_for(tmp_path, clean, {"a": clean, "b": digits_with_labels(digits_arrays, negative)}).check_inputs()


def test_float_labels_of_the_wrong_width_and_strings(tmp_path, digits_arrays):
    soft = np.full((64, 3), 1 / 3).tolist()
    wide = digits_with_labels(digits_arrays, soft, label_feature=Sequence(Value("float32")))
    with pytest.raises(ValueError, match="have width 3, but the model has num_labels=10"):
        trainer_for(tmp_path, wide).check_inputs()
    scalar = digits_with_labels(digits_arrays, [0.5] * 64, label_feature=Value("float32"))
    with pytest.raises(ValueError, match="are floats .*not class ids"):
        trainer_for(tmp_path, scalar).check_inputs()
    names = digits_with_labels(digits_arrays, ["cat"] * 64, label_feature=Value("string"))
    with pytest.raises(ValueError, match=r"are strings .*class_encode_column\('label'\)"):
        trainer_for(tmp_path, names).check_inputs()
    good = digits_with_labels(digits_arrays, np.eye(10)[np.arange(64) % 10].tolist(), label_feature=Sequence(Value("float32")))
    trainer_for(tmp_path, good).check_inputs()


class LoadedWhenAsked(torch.utils.data.Dataset):
    """A map-style dataset that makes each example when asked (as one reading files would)."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def test_a_dataset_the_checks_cannot_read_ahead_is_checked_per_batch(tmp_path, digits_arrays):
    pixels, labels = digits_arrays
    rows = [{"pixel_values": pixels[i], "label": int(labels[i]) if i != 2 else 18} for i in range(16)]
    trainer = trainer_for(tmp_path, LoadedWhenAsked(rows))
    trainer.check_inputs()  # nothing read ahead
    with pytest.raises(ValueError, match="found 18 in 1 example"):
        trainer.train()


def test_examples_in_a_list_and_labels_in_one_tensor_are_checked_before_the_first_step(tmp_path, digits_arrays):
    from hf_mixup.data.tabular import TensorTable

    pixels, labels = digits_arrays
    rows = [{"pixel_values": pixels[i], "label": int(labels[i])} for i in range(64)]
    rows[40]["label"] = 18  # in a batch that two steps of 8 never reach
    for dataset in (rows, tuple(rows)):
        with pytest.raises(ValueError, match=r"training labels in 'label' must be class ids in 0..9.*found 18 in 1"):
            trainer_for(tmp_path, dataset).check_inputs()
    rows[40]["label"] = torch.tensor(3)  # tensors in the examples are read too
    trainer_for(tmp_path, rows).check_inputs()
    rows[40]["label"] = "cat"
    with pytest.raises(ValueError, match="training labels in 'label' are not numbers"):
        trainer_for(tmp_path, rows).check_inputs()
    table = TensorTable(torch.zeros(64, 4), torch.tensor([i % 10 for i in range(63)] + [12]))
    with pytest.raises(ValueError, match=r"training labels in 'labels' must be class ids in 0..9.*found 12"):
        trainer_for(tmp_path, table).check_inputs()
    rows[40]["label"] = None
    with pytest.raises(ValueError, match=r"are not numbers \(0, 1, 2, 3, 4 and 6 more"):
        trainer_for(tmp_path, rows).check_inputs()


def test_labels_a_collator_of_your_own_encodes_are_left_to_the_batch_check(tmp_path, digits_arrays):
    """Raw labels are read ahead only when the collator passes them through; a collator that encodes them
    (names to ids here) gets its batches checked instead. bfloat16 soft labels are read too, and an object
    whose `labels` is not one per example is not taken for a label tensor."""
    from transformers import default_data_collator

    pixels, labels = digits_arrays
    names = [f"class{int(label)}" for label in labels[:64]]
    rows = [{"pixel_values": pixels[i], "label": names[i]} for i in range(64)]

    def encode(features):
        return default_data_collator([{**f, "label": int(f["label"][5:])} for f in features])

    trainer = MixupTrainer(model=tiny_resnet(), args=mixup_args(tmp_path, max_steps=2, per_device_train_batch_size=8),
                           train_dataset=rows, data_collator=encode)
    trainer.train()
    assert trainer.state.global_step == 2
    soft = [{"pixel_values": pixels[i], "label": torch.eye(10, dtype=torch.bfloat16)[i % 10]} for i in range(64)]
    trainer_for(tmp_path, soft).check_inputs()

    class Rows(torch.utils.data.Dataset):
        labels = torch.arange(100)  # not one per example

        def __len__(self):
            return 64

        def __getitem__(self, i):
            return {"pixel_values": pixels[i], "label": int(labels[i])}

        def __getitems__(self, indices):
            return [self[i] for i in indices]

    trainer_for(tmp_path, Rows()).check_inputs()


def test_cutmix_needs_two_spatial_axes(tmp_path, digits_dataset):
    with pytest.raises(ValueError, match=r"'input_values' of shape \[13\] per example.*set cutmix_alpha=0"):
        check_spatial_inputs({"input_values": torch.zeros(13), "labels": 1}, ["labels"], "CutMix")
    check_spatial_inputs({"pixel_values": torch.zeros(3, 8, 8), "labels": 1}, ["labels"], "CutMix")
    trainer = trainer_for(tmp_path, digits_dataset, cutmix_alpha=1.0)
    state = torch.get_rng_state()
    trainer.check_inputs()  # images: fine, and the example it looked at moved no global generator
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize(("flags", "expected"), [
    (["--per_device_train_batch_size", "0"], "per_device_train_batch_size must be an int >= 1"),
    (["--num_train_epochs", "0"], "nothing to train: num_train_epochs=0.0 and max_steps=-1"),
    (["--cutmix_alpha", "1"], "CutMix (cutmix_alpha / cutmix_minmax) pastes boxes along two spatial axes"),
])
def test_the_command_refuses_in_one_line(tmp_path, capsys, flags, expected):
    code = train.run(["--dataset_name", "wine", "--output_dir", str(tmp_path / "run"), *flags], prog="hf-mixup train")
    assert expected in one_line_error(capsys, code)
    assert not (tmp_path / "run" / "README.md").exists()


def test_a_label_column_of_numbers_and_strings_is_one_line(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"a": i / 10, "label": i % 2 if i < 50 else "cat"}) + "\n" for i in range(60)))
    code = train.run(["--dataset_name", str(path), "--output_dir", str(tmp_path / "run")], prog="hf-mixup train")
    assert "label column 'label' mixes numbers and strings (e.g. 'cat')" in one_line_error(capsys, code)


def test_a_table_label_column_of_lists_is_one_line(tmp_path, capsys):
    """Float labels of a width (soft labels, several labels in one cell) are no table label: one line, not a
    pandas traceback; the same ValueError from the preprocessing's fit in the API."""
    from hf_mixup.data.tabular import TabularPreprocessor

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"a": i / 10, "label": [0.5, 0.5] if i % 2 else [1.0, 0.0]}) + "\n"
                            for i in range(60)))
    code = train.run(["--dataset_name", str(path), "--output_dir", str(tmp_path / "run")], prog="hf-mixup train")
    line = one_line_error(capsys, code)
    assert "label column 'label' holds several values per row (e.g. [" in line and "one 0/1 column per label" in line
    assert not (tmp_path / "run").exists()
    several = r"label column 'y' holds several values per row \(e\.g\. \[0\.2, 0\.8\] in 1 row"
    with pytest.raises(ValueError, match=several):
        TabularPreprocessor.fit({"a": [1.0, 2.0, 3.0], "y": [0, 1, [0.2, 0.8]]}, "y")


def test_zero_epochs_and_batches_in_the_api():
    with pytest.raises(ValueError, match="per_device_train_batch_size must be an int >= 1"):
        MixupArguments(output_dir="unused", per_device_train_batch_size=0)
    with pytest.raises(ValueError, match="nothing to train"):
        MixupArguments(output_dir="unused", num_train_epochs=0)
    assert MixupArguments(output_dir="unused", num_train_epochs=0, max_steps=3).max_steps == 3
