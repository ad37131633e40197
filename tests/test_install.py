"""A light install: `pip install hf_mixup` (no extras) brings what `MixupTrainer` needs and nothing more, the
README's two-name example runs on it, and whatever needs an extra says which one.

`test_the_core_install_runs_the_two_name_example` builds the wheel once, installs it with constraints.txt
into a fresh virtual environment (torch from the local disk, so the copy of torch's files is most of its
time) and trains a tiny transformers ViT there. The fast tests below hide the extras inside this process's
environment instead (``sys.modules[name] = None``, which makes both ``import`` and transformers'
availability checks see them missing).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
# Distributions the core must not install (each is an extra's, or an extra's dependency).
NOT_IN_CORE = ("datasets", "pandas", "timm", "torchvision", "evaluate", "scikit-learn", "matplotlib", "tensorboard",
               "pyarrow", "scipy", "river", "torchcodec")
# Their import names: hidden in the simulated core, and never imported by `import hf_mixup`.
EXTRA_MODULES = ("datasets", "pandas", "timm", "torchvision", "evaluate", "sklearn", "matplotlib", "tensorboard",
                 "pyarrow", "scipy", "river", "torchcodec")

# The README's two-name example (`MixupArguments`, `MixupTrainer`) on a ViT built from a config, on random
# pixels in a list, with its model card; then the error a missing extra gives, and what `import hf_mixup` imported.
EXAMPLE = textwrap.dedent(
    """
    import json, sys
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    from hf_mixup import MixupArguments, MixupTrainer

    imported_by_hf_mixup = sorted(m for m, v in sys.modules.items() if m.split(".")[0] in EXTRA_MODULES and v is not None)
    torch.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(
        image_size=8, patch_size=4, num_channels=3, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=3,
    ))
    data = [{"pixel_values": torch.randn(3, 8, 8), "labels": i % 3} for i in range(16)]
    args = MixupArguments(  # was TrainingArguments
        output_dir=OUTPUT_DIR, mixup_alpha=1.0, max_steps=2, per_device_train_batch_size=8, learning_rate=1e-3,
        report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True,
    )
    trainer = MixupTrainer(model=model, args=args, train_dataset=data, eval_dataset=data)  # was Trainer
    trainer.train()
    metrics = trainer.evaluate()
    trainer.create_model_card(dataset_name="random pixels")  # offline card: huggingface_hub + jinja2, in the core
    card = open(OUTPUT_DIR + "/README.md").read()
    try:
        from hf_mixup.models import create_timm_classifier  # noqa: F401
        missing = None
    except ImportError as error:
        missing = f"{type(error).__name__}: {error}"
    import hf_mixup
    print("RESULT " + json.dumps({
        "global_step": trainer.state.global_step, "metrics": metrics, "file": hf_mixup.__file__,
        "imported_by_hf_mixup": imported_by_hf_mixup, "missing_extra": missing, "card_has_results": "model-index" in card,
    }))
    """
)


def _check_example(result: dict) -> None:
    assert result["global_step"] == 2
    assert set(result["metrics"]) >= {"eval_loss", "eval_accuracy", "eval_nll", "eval_ece"}  # the default metrics
    assert result["imported_by_hf_mixup"] == []
    assert result["card_has_results"]
    assert result["missing_extra"] == (
        "MissingExtraError: hf_mixup.models.create_timm_classifier needs timm: pip install 'hf_mixup[vision]'"
    )


def _run_example(python: str, cwd: Path, prelude: str = "") -> dict:
    output_dir = str(cwd / "out")
    code = f"EXTRA_MODULES = {EXTRA_MODULES!r}\nOUTPUT_DIR = {output_dir!r}\n{prelude}\n{EXAMPLE}"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run([python, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    _check_example(result)
    return result


def _copy_sources(dest: Path) -> Path:
    """What the wheel is built from (not the checkout's build/ or egg-info, not .venv)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("hf_mixup", "model_cards", "recipes"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    return dest


@pytest.mark.slow
def test_the_core_install_runs_the_two_name_example(tmp_path):
    """`pip install -c constraints.txt hf_mixup` without extras in a fresh venv: no datasets, pandas, timm
    (nor any other extra), `import hf_mixup` works, and MixupTrainer trains and evaluates a ViT."""
    timings = {}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    venv = tmp_path / "venv"
    try:
        start = time.perf_counter()
        (tmp_path / "src").mkdir()
        src = _copy_sources(tmp_path / "src")
        # One wheel, built with this environment's setuptools when it has one (no isolated build env to set up).
        build = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
        done = subprocess.run(pip + ["wheel", "--no-deps", *build, "-q", "-w", str(tmp_path / "wheels"), str(src)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        (wheel,) = (tmp_path / "wheels").glob("hf_mixup-*.whl")
        timings["wheel"] = time.perf_counter() - start

        start = time.perf_counter()
        # No pip inside: this environment's pip installs into it (`pip --python`).
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
        python = str(venv / "bin" / "python")
        done = subprocess.run(pip + ["--python", python, "install", "-q", "--no-compile", "-c", str(CONSTRAINTS), str(wheel)],
                              capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, done.stderr[-4000:]
        timings["install"] = time.perf_counter() - start

        listed = subprocess.run(pip + ["--python", python, "list", "--format=json"], capture_output=True, text=True,
                                check=True, timeout=300)
        installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
        assert {"hf-mixup", "torch", "transformers", "accelerate", "safetensors", "huggingface-hub"} <= installed
        assert sorted(installed & set(NOT_IN_CORE)) == []

        start = time.perf_counter()
        result = _run_example(python, tmp_path)
        timings["example"] = time.perf_counter() - start
        assert Path(result["file"]).is_relative_to(venv), "ran the checkout, not the installed wheel"

        # The command line without its extra: one line naming it, exit 2, no traceback.
        cli = subprocess.run([str(venv / "bin" / "hf-mixup"), "train", "--max_steps", "1"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert cli.returncode == 2, cli.stderr
        assert cli.stderr.strip().splitlines() == [
            "hf-mixup train needs datasets, tensorboard, scikit-learn, timm, torchvision: pip install 'hf_mixup[train]'"
        ]
        print(f"core install: {len(installed)} packages; " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # several GB (torch and its CUDA libraries)


def test_a_simulated_core_runs_the_two_name_example(tmp_path):
    """The same example in this environment with every extra hidden: what the core install runs, in seconds."""
    hide = f"import sys\nfor _name in {EXTRA_MODULES!r}:\n    sys.modules[_name] = None\n"
    _run_example(sys.executable, tmp_path, prelude=hide)


def test_import_hf_mixup_adds_no_extra_to_what_transformers_imports():
    """With every extra installed (`.[dev]`), `import hf_mixup` imports none of them beyond what transformers'
    own `Trainer` import already does (transformers imports datasets, torchvision, ... when they are there)."""
    code = textwrap.dedent(
        f"""
        import sys
        from transformers import Trainer, TrainingArguments
        before = set(sys.modules)
        import hf_mixup
        print(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in {EXTRA_MODULES!r}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_timm_models_register_when_timm_is_imported_after_hf_mixup():
    """`import hf_mixup` leaves timm alone; the CIFAR family is registered when timm is imported later, so
    a card's `import hf_mixup` + `pipeline(...)` / `timm.create_model(...)` still finds the architecture."""
    code = textwrap.dedent(
        """
        import sys
        import hf_mixup
        assert "timm" not in sys.modules, "import hf_mixup imported timm"
        from transformers.utils import is_timm_available
        assert is_timm_available()  # a find_spec without an import: the hook must stay in place
        import timm
        assert timm.is_model("preact_resnet18") and timm.is_model("wide_resnet28_10")
        from hf_mixup.models import CIFAR_MODEL_NAMES, cifar
        assert CIFAR_MODEL_NAMES == cifar.MODEL_NAMES
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().splitlines()[-1] == "ok"


def test_missing_extras_name_the_extra(monkeypatch, capsys):
    from hf_mixup import _extras
    from hf_mixup._extras import MissingExtraError, require, require_extra

    monkeypatch.setitem(sys.modules, "evaluate", None)
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingExtraError, match=r"^hf_mixup.metrics.load needs evaluate: pip install 'hf_mixup\[metrics\]'$"):
        from hf_mixup import metrics

        metrics.load("ece")
    with pytest.raises(ImportError, match=r"pip install 'hf_mixup\[train\]'"):
        require("datasets", "train", "hf_mixup.data")
    with pytest.raises(MissingExtraError, match=r"^hf-mixup train needs datasets: pip install 'hf_mixup\[train\]'$"):
        require_extra("train", "hf-mixup train")
    assert _extras.missing_modules("vision") == []

    from hf_mixup.cli.main import main

    assert main(["train", "--max_steps", "1"]) == 2
    assert capsys.readouterr().err.strip() == "hf-mixup train needs datasets: pip install 'hf_mixup[train]'"


def test_a_broken_install_is_not_reported_as_a_missing_extra(tmp_path, monkeypatch):
    """`require` names an extra only when the module itself is missing, not when it fails on its own import."""
    from hf_mixup._extras import require

    (tmp_path / "hf_mixup_broken_extra.py").write_text("import hf_mixup_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="hf_mixup_no_such_dependency"):
        require("hf_mixup_broken_extra", "vision")
