"""Publishing to the Hub and loading published checkpoints, without network: `HfApi`'s upload calls
write into a real Hub cache layout (tests/hub_layout.py), and the download runs through the real
`from_pretrained` / `pipeline` in a fresh process with HF_HUB_OFFLINE=1 and that cache."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import ROOT, assert_scores_are_softmax, mixup_args, tiny_resnet
from hub_layout import FakeHub
from huggingface_hub import ModelCard

from hf_mixup.cli import publish, train
from hf_mixup.hub import PUBLISHED_RECORD, PublishError, load_run, push_run, repo_name

pytestmark = pytest.mark.slow
QUIET = ["--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no"]
IMAGE = ["--model_name", "preact_resnet18", "--model_kwargs", '{"channels": [8, 16, 32, 64]}', "--max_train_samples", "128",
         "--max_eval_samples", "64", "--per_device_train_batch_size", "32", "--num_train_epochs", "2",
         "--eval_strategy", "epoch", *QUIET]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_keywords):
    """An ERM and a mixup run of each modality, trained briefly by scripts/train.py."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for method, alpha in (("erm", "0"), ("mixup", "1")):
        out["image", method] = root / f"image-{method}"
        train.main(IMAGE + ["--mixup_alpha", alpha, "--output_dir", str(out["image", method])])
        out["audio", method] = root / f"audio-{method}"
        train.main(["--dataset_name", synthetic_keywords, "--model_name", "lenet", "--mixup_alpha", alpha, "--max_steps", "2",
                    "--per_device_train_batch_size", "16", "--eval_strategy", "no", *QUIET,
                    "--output_dir", str(out["audio", method])])
        out["tabular", method] = root / f"tabular-{method}"
        train.main([str(ROOT / "recipes" / "uci_mlp.yaml"), "--mixup_alpha", alpha, "--num_train_epochs", "2",
                    "--eval_strategy", "epoch", *QUIET, "--output_dir", str(out["tabular", method])])
    return out


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_names_follow_the_convention(runs):
    assert repo_name(load_run(runs["image", "mixup"]), "me") == "me/preact-resnet18-digits-mixup"
    assert repo_name(load_run(runs["image", "erm"]), "me") == "me/preact-resnet18-digits-erm"
    assert repo_name(load_run(runs["tabular", "erm"]), "org") == "org/mlp-iris-erm"
    assert repo_name(load_run(runs["audio", "mixup"]), "org").startswith("org/lenet-")
    with pytest.raises(ValueError, match="namespace"):
        repo_name(load_run(runs["image", "erm"]), "a/b")


def test_publish_pairs_then_load_them_with_plain_transformers(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    repos = {}
    for modality in ("image", "audio", "tabular"):
        code = publish.main(["--erm", str(runs[modality, "erm"]), "--mixup", str(runs[modality, "mixup"]),
                             "--namespace", "hf-mixup-test", "--dataset", f"{modality}-set"])
        assert code == 0
        for method in ("erm", "mixup"):
            run = load_run(runs[modality, method])
            repos[modality, method] = repo_name(run, "hf-mixup-test", dataset=f"{modality}-set")
    assert len(hub.commits) == 6

    # The cards: metadata that parses back, the sibling linked, the plot where there are per-epoch evaluations.
    for (modality, method), repo_id in repos.items():
        snapshot = hub.snapshot(repo_id)
        card = ModelCard.load(snapshot / "README.md")
        assert card.data.library_name == "transformers" and card.data.license == "apache-2.0"
        assert {"hf_mixup", method, modality} <= set(card.data.tags)
        other = repos[modality, "mixup" if method == "erm" else "erm"]
        assert f"https://huggingface.co/{other}" in card.text and f'"{repo_id}"' in card.text
        assert "@inproceedings{zhang2018mixup" in card.text and "## Framework versions" in card.text
        results = {r.metric_type: r.metric_value for r in card.data.eval_results}
        run = load_run(runs[modality, method])
        assert results["accuracy"] == pytest.approx(run.metrics["accuracy"], abs=1e-6)
        assert {"error", "nll", "ece"} <= set(results)
        assert ("curves.png" in os.listdir(snapshot)) == (modality != "audio")
        # Every pair here is single-label: the reliability diagrams of both runs, in the card.
        assert "reliability.png" in os.listdir(snapshot) and "test_calibration.json" in os.listdir(snapshot)
        assert "## Calibration" in card.text and "](reliability.png)" in card.text
        assert not any(name.startswith("checkpoint") or name == "training_args.bin" for name in os.listdir(snapshot))

    # Download through the real from_pretrained, offline, in a fresh process.
    script = textwrap.dedent("""
        import json, sys, numpy as np, torch
        from safetensors.torch import load_file
        import hf_mixup
        from transformers import AutoModel, AutoModelForAudioClassification, AutoModelForImageClassification, pipeline
        from PIL import Image
        repos, runs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
        out = {}
        rng = np.random.default_rng(0)
        for key, repo in repos.items():
            modality = key.split(":")[0]
            if modality == "image":
                model = AutoModelForImageClassification.from_pretrained(repo).eval()
                classifier = pipeline("image-classification", model=repo)
                image = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
                scores = classifier(image, top_k=3)
                inputs = classifier.image_processor(images=image, return_tensors="pt")
            elif modality == "audio":
                model = AutoModelForAudioClassification.from_pretrained(repo).eval()
                classifier = pipeline("audio-classification", model=repo)
                wave = (0.1 * rng.standard_normal(16000)).astype(np.float32)
                scores = classifier(wave, top_k=3)
                inputs = classifier.feature_extractor(wave, sampling_rate=16000, return_tensors="pt")
            else:
                model = AutoModel.from_pretrained(repo).eval()
                row = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}
                scores = model.predict(row)
                inputs = {"input_values": model.preprocessor(row)["input_values"].to(model.dtype)}
            with torch.no_grad():
                logits = model(**inputs).logits[0]
            local = load_file(runs[key] + "/model.safetensors")
            state = model.state_dict()
            same = all(torch.equal(state[k], v) for k, v in local.items())
            out[key] = {"same_weights": same, "n": len(local), "scores": scores, "logits": logits.tolist(),
                         "id2label": model.config.id2label}
        print(json.dumps(out))
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hub.cache_dir), HF_HOME=str(tmp_path / "home"),
               TRANSFORMERS_OFFLINE="1")
    keys = {f"{m}:{k}": v for (m, k), v in repos.items()}
    paths = {f"{m}:{k}": str(v) for (m, k), v in runs.items()}
    done = subprocess.run([sys.executable, "-c", script, json.dumps(keys), json.dumps(paths)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    for key, result in loaded.items():
        assert result["same_weights"] and result["n"] > 0, key
        # The scores are the softmax of the downloaded model's logits (the tabular predict gives the top class).
        id2label = {int(i): label for i, label in result["id2label"].items()}
        assert_scores_are_softmax(result["scores"], torch.tensor(result["logits"]), id2label)
        if key.startswith("tabular"):
            assert result["scores"][0]["label"] in ("setosa", "versicolor", "virginica")
        else:
            assert len(result["scores"]) == 3


def test_a_failed_push_leaves_the_run_as_it_was_and_a_retry_does_not_duplicate(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    erm, mixup = runs["tabular", "erm"], runs["tabular", "mixup"]
    args = ["--erm", str(erm), "--mixup", str(mixup), "--namespace", "retry-test"]
    for folder in (erm, mixup):
        (folder / PUBLISHED_RECORD).unlink(missing_ok=True)
        (folder / "checkpoint-1").mkdir(exist_ok=True)  # what save_total_limit leaves: never uploaded
        (folder / "checkpoint-1" / "model.safetensors").write_bytes(b"intermediate")
    assert publish.main(args + ["--dry_run"]) == 0  # render the cards: the state a push starts from
    before = {folder: digest(folder) for folder in (erm, mixup)}

    FakeHub(tmp_path / "hub", fail_with=ConnectionError("[Errno -3] Temporary failure in name resolution")).install(monkeypatch)
    assert publish.main(args) == 1
    assert {folder: digest(folder) for folder in (erm, mixup)} == before  # checkpoint and card untouched
    with pytest.raises(PublishError, match="ConnectionError.*unchanged"):
        push_run(load_run(erm), "retry-test/x")

    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    assert publish.main(args) == 0
    assert len(hub.commits) == 2 and len(hub.created) == 2
    assert not (hub.snapshot("retry-test/mlp-iris-erm") / "checkpoint-1").exists()
    first = hub.head("retry-test/mlp-iris-erm")
    assert publish.main(args) == 0  # again: nothing new is uploaded
    assert len(hub.commits) == 2 and len(hub.created) == 2 and hub.head("retry-test/mlp-iris-erm") == first


def test_a_push_without_a_token_says_how_to_log_in(runs, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(PublishError, match="no Hugging Face token.*hf auth login"):
        push_run(load_run(runs["image", "erm"]), "someone/some-repo")


def test_push_to_hub_in_the_training_script(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    with pytest.raises(ValueError, match="--hub_model_id <namespace>/<name>"):
        train.main([str(ROOT / "recipes" / "uci_mlp.yaml"), "--push_to_hub", "true", *QUIET,
                    "--output_dir", str(tmp_path / "no-id")])
    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    train.main([str(ROOT / "recipes" / "uci_mlp.yaml"), "--push_to_hub", "true", "--hub_model_id", "me/iris-mlp-mixup",
                *QUIET, "--output_dir", str(tmp_path / "run")])
    assert hub.commits and hub.commits[0][0] == "me/iris-mlp-mixup"
    card = ModelCard.load(hub.snapshot("me/iris-mlp-mixup") / "README.md")
    assert 'AutoModel.from_pretrained("me/iris-mlp-mixup")' in card.text and "import hf_mixup" in card.text
    # A failing Hub does not fail the run: the output is complete and the error is logged.
    FakeHub(tmp_path / "hub2", fail_with=ConnectionError("offline")).install(monkeypatch)
    metrics = train.main([str(ROOT / "recipes" / "uci_mlp.yaml"), "--push_to_hub", "true", "--hub_model_id",
                          "me/iris-mlp-erm", "--mixup_alpha", "0", *QUIET, "--output_dir", str(tmp_path / "run2")])
    assert "test_accuracy" in metrics and (tmp_path / "run2" / "model.safetensors").is_file()


def test_the_card_template_ships_in_the_wheel(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                           "-w", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("hf_mixup-*.whl")
    check = ("import hf_mixup.model_cards, importlib.resources as r; "
             "assert hf_mixup.model_cards.__file__.endswith('.whl/hf_mixup/model_cards/__init__.py'), hf_mixup.model_cards.__file__; "
             "print(r.files('hf_mixup.model_cards').joinpath('template.md').read_text()[:400])")
    loaded = subprocess.run([sys.executable, "-c", check], env=dict(os.environ, PYTHONPATH=str(wheel)),
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert "{{ card_data }}" in loaded.stdout


def test_reference_cards_hold_only_their_own_runs_figures():
    """model_cards/reference: the Fashion-MNIST pair of scripts/reproduce_fashion_mnist.py, ready to push."""
    folders = sorted((ROOT / "model_cards" / "reference").iterdir())
    assert [f.name for f in folders] == ["preact-resnet18-fashion-mnist-erm", "preact-resnet18-fashion-mnist-mixup"]
    for folder in folders:
        card = ModelCard.load(folder / "README.md")
        results = json.loads((folder / "test_results.json").read_text())
        values = {r.metric_type: r.metric_value for r in card.data.eval_results}
        assert values["accuracy"] == pytest.approx(results["test_accuracy"], abs=1e-6)
        assert values["nll"] == pytest.approx(results["test_nll"], abs=1e-6)
        assert card.data.datasets == ["zalando-datasets/fashion_mnist"]
        run = load_run(folder)  # the staged folder can be published as it is
        assert run.method == folder.name.rsplit("-", 1)[1]
        assert (folder / "curves.png").is_file() and (folder / "model.safetensors").is_file()


def test_push_to_hub_card_keeps_the_run_figures(tmp_path):
    """`Trainer.push_to_hub` calls `create_model_card` again with its own arguments: the card keeps the
    figures and settings an earlier call gave."""
    from hf_mixup import MixupTrainer

    trainer = MixupTrainer(model=tiny_resnet(), args=mixup_args(tmp_path))
    trainer.create_model_card(dataset_name="digits", metrics={"accuracy": 0.75}, eval_split="validation")
    trainer.create_model_card(model_name="run")  # what Trainer.push_to_hub does
    card = ModelCard.load(tmp_path / "README.md")
    result = card.data.eval_results[0]
    assert result.dataset_name == "digits" and result.dataset_split == "validation" and result.metric_value == 0.75


def test_card_template_is_found_in_a_source_checkout_without_the_installed_package_data(monkeypatch):
    """Run from a checkout with PYTHONPATH (no `hf_mixup.model_cards` subpackage), the card still gets the
    template, from model_cards/template.md beside the package."""
    from importlib import resources

    from hf_mixup.hub import card

    installed = card.card_template()

    def no_package(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(resources, "files", no_package)
    assert card.card_template() == installed == (Path(card.__file__).parents[2] / "model_cards" / "template.md").read_text()
