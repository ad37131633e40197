"""A used `--output_dir`: resumed only with the settings that shaped its weights, refused in one line (exit 2)
with no file changed otherwise, left as it is when already finished, started over with
`--overwrite_output_dir`; and `hf-mixup publish` reads a run's settings from JSON, never unpickling a file."""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import pytest
import torch
from conftest import digits_dataset  # noqa: F401  (fixture)
from conftest import mixup_args, tiny_resnet
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from test_cli import one_line_error

from hf_mixup import MixupTrainer
from hf_mixup.cli import train
from hf_mixup.runs import RUN_SETTINGS_NAME, differing_settings, read_run_settings

pytestmark = pytest.mark.slow

WINE = ["--dataset_name", "wine", "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2",
        "--eval_strategy", "no", "--report_to", "none", "--disable_tqdm", "true"]


def snapshot(folder) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: its content hash and modification time."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = (hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("wine") / "run"
    metrics = train.main(WINE + ["--output_dir", str(out)])
    return out, metrics


def test_other_settings_are_refused_in_one_line_and_change_nothing(finished_run, capsys):
    out, _ = finished_run
    before = snapshot(out)
    code = train.run(WINE + ["--output_dir", str(out), "--mixup_alpha", "0.2", "--learning_rate", "0.1"],
                     prog="hf-mixup train")
    line = one_line_error(capsys, code)
    assert "holds a run with other settings: learning_rate (0.002 there, 0.1 here); mixup_alpha (1.0 there, 0.2 here)" in line
    assert "--overwrite_output_dir" in line
    assert snapshot(out) == before
    card = ModelCard.load(out / "README.md").text
    assert "| mixup_alpha | 1.0 |" in card and "0.2" not in card.split("## Training")[1].split("##")[0]


@pytest.mark.parametrize("flags", [
    ["--model_kwargs", '{"hidden_sizes": [8]}'],  # the model
    ["--max_train_samples", "50"],  # the data
    ["--seed", "7"],
    ["--max_steps", "6"],  # the schedule
])
def test_every_kind_of_weight_shaping_setting_counts(finished_run, capsys, flags):
    out, _ = finished_run
    code = train.run(WINE + ["--output_dir", str(out), *flags], prog="hf-mixup train")
    assert flags[0].lstrip("-") in one_line_error(capsys, code)


def test_the_same_command_on_a_finished_run_does_nothing(finished_run, caplog):
    out, metrics = finished_run
    before = snapshot(out)
    # Settings that do not touch the weights (logging, saving, evaluation batches) may differ.
    again = train.main(WINE + ["--output_dir", str(out), "--logging_steps", "3", "--save_total_limit", "1",
                               "--per_device_eval_batch_size", "7"])
    assert snapshot(out) == before
    assert again == json.loads((out / "all_results.json").read_text())
    assert again["test_accuracy"] == metrics["test_accuracy"]
    assert "holds a finished run with these settings: nothing to do" in caplog.text


def test_overwrite_output_dir_starts_over(finished_run, tmp_path, caplog):
    out, _ = finished_run
    copy = tmp_path / "copy"
    os.system(f"cp -a {out} {copy}")
    (copy / "notes.txt").write_text("mine")
    (copy / ".partial-checkpoint-6").mkdir()  # what an interrupted save of the old run left
    # A shorter run (2 steps, one checkpoint): nothing of the old run may outlive the overwrite.
    flags = ["--mixup_alpha", "0.2", "--max_steps", "2"]
    with caplog.at_level("WARNING", logger="hf_mixup.train"):
        train.main(WINE + ["--output_dir", str(copy), *flags, "--overwrite_output_dir", "true"])
    assert "--overwrite_output_dir: removed the previous run from" in caplog.text
    record = read_run_settings(str(copy))
    assert record["training"]["mixup_alpha"] == 0.2 and record["finished"] is True
    assert "| mixup_alpha | 0.2 |" in ModelCard.load(copy / "README.md").text
    assert (copy / "notes.txt").read_text() == "mine"  # not a file of the run
    assert sorted(p.name for p in copy.iterdir() if "checkpoint" in p.name) == ["checkpoint-2"]
    assert read_run_settings(str(copy / "checkpoint-2"))["training"]["mixup_alpha"] == 0.2
    # Started from scratch: the weights of the same command on an empty folder, bit for bit.
    fresh = tmp_path / "fresh"
    train.main(WINE + ["--output_dir", str(fresh), *flags])
    expected, got = load_file(str(fresh / "model.safetensors")), load_file(str(copy / "model.safetensors"))
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    # And the folder now holds this run alone: the same command again finds it finished.
    before = snapshot(copy)
    train.main(WINE + ["--output_dir", str(copy), *flags])
    assert snapshot(copy) == before


def test_an_unrecorded_run_is_not_resumed(finished_run, tmp_path, capsys):
    out, _ = finished_run
    copy = tmp_path / "old"
    os.system(f"cp -a {out} {copy}")
    (copy / RUN_SETTINGS_NAME).unlink()
    before = snapshot(copy)
    code = train.run(WINE + ["--output_dir", str(copy)], prog="hf-mixup train")
    assert "whose settings were not recorded" in one_line_error(capsys, code)
    assert snapshot(copy) == before


def test_an_interrupted_run_of_the_same_settings_is_resumed(finished_run, tmp_path):
    out, metrics = finished_run
    copy = tmp_path / "resumed"
    os.system(f"cp -a {out} {copy}")
    record = read_run_settings(str(copy))
    record.pop("finished")
    (copy / RUN_SETTINGS_NAME).write_text(json.dumps(record))
    for name in ("model.safetensors", "README.md", "all_results.json"):
        (copy / name).unlink()
    again = train.main(WINE + ["--output_dir", str(copy)])
    assert again["test_accuracy"] == metrics["test_accuracy"] and again["test_nll"] == metrics["test_nll"]
    assert read_run_settings(str(copy))["finished"] is True


def test_the_trainer_refuses_a_checkpoint_of_other_settings(tmp_path, digits_dataset):  # noqa: F811
    common = dict(max_steps=2, per_device_train_batch_size=16, save_strategy="steps", save_steps=2)
    MixupTrainer(model=tiny_resnet(), args=mixup_args(tmp_path, **common), train_dataset=digits_dataset).train()
    checkpoint = tmp_path / "checkpoint-2"
    assert read_run_settings(str(checkpoint))["training"]["learning_rate"] == 5e-5
    other = MixupTrainer(model=tiny_resnet(), args=mixup_args(tmp_path, learning_rate=0.1, **common),
                         train_dataset=digits_dataset)
    with pytest.raises(ValueError, match=r"checkpoint-2 was trained with other settings: learning_rate \(5e-05 there, 0.1 here\)"):
        other.train(resume_from_checkpoint=str(checkpoint))


def test_neutral_fields_are_not_compared_unless_they_pick_the_best_model():
    saved = {"training": {"eval_steps": 10, "logging_steps": 5, "load_best_model_at_end": False, "seed": 1}}
    assert differing_settings(saved, {"training": {**saved["training"], "eval_steps": 20, "logging_steps": 1}}) == []
    best = {"training": {**saved["training"], "load_best_model_at_end": True}}
    assert differing_settings(best, {"training": {**best["training"], "eval_steps": 20}}) == ["eval_steps (10 there, 20 here)"]


def test_another_number_of_processes_is_a_differing_setting():
    saved = {"training": {"seed": 1}, "world_size": 2}
    assert differing_settings(saved, {**saved, "world_size": 2}) == []
    assert differing_settings(saved, {**saved, "world_size": 1}) == [
        "the number of processes (2 there, 1 here: launch it with `accelerate launch --num_processes 2`)"]
    assert differing_settings({"training": {"seed": 1}}, {**saved, "world_size": 1}) == []  # an older record
    parallel = {**saved, "gpus_per_process": 2}
    assert differing_settings(parallel, {**parallel, "gpus_per_process": 1}) == [
        "the GPUs one process uses (DataParallel: 2 there, 1 here; CUDA_VISIBLE_DEVICES picks them)"]


class Payload:
    """Unpickling this runs code: it writes a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_publish_unpickles_nothing_from_a_run_folder(finished_run, tmp_path):
    from hf_mixup.hub import load_run, render_card

    out, _ = finished_run
    received = tmp_path / "received"
    os.system(f"cp -a {out} {received}")
    marker = tmp_path / "executed"
    with open(received / "training_args.bin", "wb") as f:
        pickle.dump(Payload(str(marker)), f)
    with open(received / "training_args.bin", "rb") as f:  # the planted file does run code when unpickled
        pickle.load(f).close()
    assert marker.exists()
    marker.unlink()
    run = load_run(received)
    card = str(render_card(run, "someone/wine-mlp-mixup"))
    assert not marker.exists()
    assert run.method == "mixup" and run.args.learning_rate == 0.002 and run.args.world_size == 1
    assert "| mixup_alpha | 1.0 |" in card


def test_the_publish_command_unpickles_nothing_from_either_run_folder(finished_run, tmp_path, monkeypatch):
    """`hf-mixup publish` as a whole (both folders read, curves, reliability, staging, the push to a Hub that
    writes into a local cache), on an ERM/mixup pair whose training_args.bin would run code when unpickled."""
    from hub_layout import FakeHub

    from hf_mixup.cli import publish

    out, _ = finished_run
    mixup, erm = tmp_path / "mixup", tmp_path / "erm"
    os.system(f"cp -a {out} {mixup}")
    train.main(WINE + ["--output_dir", str(erm), "--mixup_alpha", "0"])
    markers = {folder: tmp_path / f"executed-{folder.name}" for folder in (erm, mixup)}
    for folder, marker in markers.items():  # written as the Trainer writes the file (torch.save)
        torch.save(Payload(str(marker)), folder / "training_args.bin")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    args = ["--erm", str(erm), "--mixup", str(mixup), "--namespace", "someone", "--stage_dir", str(tmp_path / "staged")]
    assert publish.main(args + ["--dry_run"]) == 0
    assert publish.main(args) == 0
    assert len(hub.commits) == 2
    assert not any(marker.exists() for marker in markers.values()), "hf-mixup publish unpickled training_args.bin"
