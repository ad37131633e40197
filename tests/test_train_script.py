"""scripts/train.py: in-process functions, config files, resume, local datasets, and two gloo ranks
through the real `accelerate launch`."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import torch
from conftest import (
    ROOT,
    SMALL_IMAGE_RUN,
    accelerate_launch,
    assert_scores_are_softmax,
    free_port,
    hub_like_images,
    launch_env,
)

from hf_mixup.cli import train

SMALL = SMALL_IMAGE_RUN

pytestmark = pytest.mark.slow


def test_main_writes_checkpoint_metrics_and_card(tmp_path):
    from huggingface_hub import ModelCard
    from PIL import Image
    from transformers import pipeline

    out = tmp_path / "mixup"
    metrics = train.main(SMALL + ["--num_train_epochs", "2", "--output_dir", str(out)])
    for name in ("model.safetensors", "config.json", "all_results.json", "README.md"):
        assert (out / name).is_file(), name
    results = json.loads((out / "all_results.json").read_text())
    assert {"test_accuracy", "test_error", "test_nll", "test_ece", "train_loss"} <= results.keys()
    assert results["test_accuracy"] == pytest.approx(metrics["test_accuracy"])

    card = ModelCard.load(out / "README.md")
    assert {"hf_mixup", "mixup"} <= set(card.data.tags)
    by_type = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert by_type["accuracy"] == pytest.approx(results["test_accuracy"], abs=1e-6)
    assert by_type["ece"] == pytest.approx(results["test_ece"], abs=1e-6)

    # The reliability diagram's bins of the same final evaluation: they give its accuracy and its ECE.
    from hf_mixup.metrics.functional import ece_of_bins

    bins = json.loads((out / "test_calibration.json").read_text())
    assert bins["n_bins"] == 15 and sum(bins["count"]) == 128
    assert sum(bins["correct_sum"]) / 128 == pytest.approx(results["test_accuracy"], abs=1e-12)
    assert ece_of_bins(bins) == pytest.approx(results["test_ece"], abs=1e-12)

    config = json.loads((out / "config.json").read_text())
    assert config.get("problem_type") is None
    classifier = pipeline("image-classification", model=str(out))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    scores = classifier(image, top_k=10)
    with torch.no_grad():
        logits = classifier.model(**classifier.image_processor(images=image, return_tensors="pt")).logits[0]
    assert_scores_are_softmax(scores, logits, classifier.model.config.id2label)


def test_config_file_then_command_line_overrides(tmp_path, capsys):
    config = tmp_path / "recipe.yaml"
    config.write_text("mixup_alpha: 0.0\nnum_train_epochs: 7\ncutmix_minmax: [0.2, 0.8]\nlearning_rate: 0.01\n")
    model_args, data_args, args = train.parse_args([str(config), "--num_train_epochs", "3", "--output_dir", str(tmp_path)])
    assert args.mixup_alpha == 0.0 and args.num_train_epochs == 3 and args.learning_rate == 0.01
    assert args.cutmix_minmax == [0.2, 0.8]
    # No --model_name: the modality picks the default (resnet18 for images, vgg11 for speech, mlp for tables).
    assert data_args.dataset_name == "digits" and model_args.model_name is None
    as_json = tmp_path / "recipe.json"
    as_json.write_text(json.dumps({"mixup_mode": "elem", "seed": 9}))
    _, _, args = train.parse_args([str(as_json), "--output_dir", str(tmp_path)])
    assert args.mixup_mode == "elem" and args.seed == 9
    with pytest.raises(SystemExit):
        train.parse_args(["--mixup_mode", "rows", "--output_dir", str(tmp_path)])
    assert "choose from 'batch', 'pair', 'elem'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="mixup_prob must be a probability"):
        train.parse_args(["--mixup_prob", "2", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="unknown arguments"):
        train.parse_args(["--no_such_flag", "1"])


def test_default_output_dir_names_the_method(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train.parse_args([])[2].output_dir == os.path.join("runs", "digits-mixup")
    assert train.parse_args(["--mixup_alpha", "0"])[2].output_dir == os.path.join("runs", "digits-erm")


def test_rerun_resumes_from_the_last_checkpoint(tmp_path):
    out = str(tmp_path / "run")
    common = SMALL + ["--output_dir", out, "--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "no",
                      "--logging_steps", "1"]
    from transformers import TrainerCallback

    class StopAfterTwo(TrainerCallback):  # the first run stops after checkpoint-2, as an interrupted one would
        def on_step_end(self, args, state, control, **kwargs):
            control.should_training_stop = state.global_step >= 2

    model_args, data_args, args = train.parse_args(common + ["--max_steps", "4"])
    first, _, _ = train.build_trainer(model_args, data_args, args)
    first.add_callback(StopAfterTwo())
    first.train()
    assert first.state.global_step == 2 and os.path.isdir(os.path.join(out, "checkpoint-2"))
    model_args, data_args, args = train.parse_args(common + ["--max_steps", "4"])
    trainer, _, _ = train.build_trainer(model_args, data_args, args)
    train.run_training(trainer, args)
    assert trainer.state.global_step == 4
    steps = [h["step"] for h in trainer.state.log_history if "loss" in h]
    assert steps[:2] == [1, 2]  # history of the first run, carried by checkpoint-2


def test_local_saved_dataset_and_image_folder(tmp_path):
    from PIL import Image

    from hf_mixup.data import load_any_dataset, load_digits_dataset

    saved = tmp_path / "saved"
    load_digits_dataset().save_to_disk(str(saved))
    loaded = load_any_dataset(str(saved))
    assert set(loaded) == {"train", "test"} and loaded["train"].features["label"].names[3] == "3"

    folder = tmp_path / "folder"
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (folder / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(folder / split / cls / f"{i}.png")
    metrics = train.main(
        SMALL + ["--dataset_name", str(folder), "--max_steps", "2", "--output_dir", str(tmp_path / "out"),
                 "--eval_strategy", "no", "--save_strategy", "no"]
    )
    assert "test_accuracy" in metrics
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["label_names"] == ["cat", "dog"]


def test_bad_columns_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"--label_column \['target'\] is not among the dataset's columns"):
        train.main(SMALL + ["--label_column_name", "target", "--output_dir", str(tmp_path)])


def test_two_gloo_ranks_through_accelerate_launch(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2 ... --use_cpu` starts two gloo ranks; each
    draws its own mixing decisions (its own generator state in every checkpoint)."""
    out = tmp_path / "ddp"
    command = accelerate_launch(
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        str(ROOT / "scripts" / "train.py"), "--use_cpu", "true",
        *SMALL, "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "4", "--eval_strategy", "no",
        "--mixup_mode", "elem", "--mixup_layer", "2", "--output_dir", str(out), "--logging_steps", "1",
    )
    done = subprocess.run(command, env=launch_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    checkpoint = out / "checkpoint-4"
    states = [torch.load(checkpoint / f"mixup_state_{rank}.pth", weights_only=True) for rank in (0, 1)]
    assert not torch.equal(states[0]["mixer"]["generator"], states[1]["mixer"]["generator"])
    assert (checkpoint / "rng_state_1.pth").is_file()
    args = torch.load(out / "training_args.bin", weights_only=False)
    assert args.world_size == 2
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert all("mixup_lambda" in h for h in state["log_history"] if "loss" in h)
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()


def test_hub_ids_go_through_load_dataset_with_the_hub_schema(tmp_path, monkeypatch):
    """The Hub is out of reach here, so the real `load_dataset("uoft-cs/cifar100")` runs offline
    against a real datasets cache holding a copy with the Hub dataset's schema (img, fine_label,
    coarse_label), as a first online load leaves it; the script must pick the right columns."""
    import datasets
    import huggingface_hub.constants
    from hub_layout import cache_hub_dataset

    cache = tmp_path / "datasets-cache"
    images = hub_like_images("img", {"fine_label": 100, "coarse_label": 20}, 32)
    cache_hub_dataset(cache, "uoft-cs/cifar100", images, "cifar100")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "run"
    metrics = train.main(SMALL + ["--dataset_name", "uoft-cs/cifar100", "--max_steps", "1", "--eval_strategy", "no",
                                  "--save_strategy", "no", "--output_dir", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["num_classes"] == 100 and "test_accuracy" in metrics
    from huggingface_hub import ModelCard

    assert ModelCard.load(out / "README.md").data.datasets == ["uoft-cs/cifar100"]


def test_small_vit_trains_at_a_block_and_its_checkpoint_predicts_as_evaluation_did(tmp_path):
    """`--model_name small_vit`: transformers' ViT from a config, mixed entering block 2; the checkpoint carries
    its image processor, and `pipeline()` on it reproduces the accuracy evaluation reported, image by image."""
    from transformers import pipeline

    from hf_mixup.data import load_digits_dataset

    out = tmp_path / "vit"
    vit = '{"patch_size": 4, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}'
    metrics = train.main([
        "--model_name", "small_vit", "--model_kwargs", vit, "--image_size", "8", "--mixup_layer", "2",
        "--max_train_samples", "256", "--max_eval_samples", "128", "--per_device_train_batch_size", "32",
        "--max_steps", "40", "--learning_rate", "0.003", "--logging_steps", "1", "--report_to", "none", "--disable_tqdm", "true",
        "--eval_strategy", "no", "--save_strategy", "no", "--output_dir", str(out),
    ])
    assert (out / "preprocessor_config.json").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "vit" and config["num_hidden_layers"] == 2 and config["patch_size"] == 4
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert any(0 < h.get("mixup_lambda", 0) < 1 for h in history)  # the batches were mixed
    classifier = pipeline("image-classification", model=str(out))
    test = load_digits_dataset()["test"].select(range(128))
    predicted = [classifier(example["image"], top_k=1)[0]["label"] for example in test]
    names = test.features["label"].names
    accuracy = np.mean([p == names[example["label"]] for p, example in zip(predicted, test)])
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-9)
    assert len(set(predicted)) > 1  # a model that learned something, not one class everywhere
