"""The Table 2 and Table 3 runners, end to end on a little Fashion-MNIST, as a user runs them: every cell
recorded, a second start reusing them all, the tables' figures equal to the runs' own results."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from hf_mixup.data import FASHION_MNIST_DIR


@pytest.fixture(scope="module")
def little_fashion(tmp_path_factory):
    if not Path(FASHION_MNIST_DIR).is_dir():
        pytest.fail("Fashion-MNIST is not installed: `make test` installs the Debian package dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("fm") / "fashion_mnist"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare_fashion_mnist.py"), "--output", str(out),
                           "--limit", "200"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


_SCRIPTS: dict[str, dict] = {}


def script(name: str) -> dict:
    """The globals of scripts/<name>, run once (its ``main(argv)`` is what ``python scripts/<name>`` runs)."""
    if name not in _SCRIPTS:
        _SCRIPTS[name] = runpy.run_path(str(ROOT / "scripts" / name), run_name=name.removesuffix(".py"))
    return _SCRIPTS[name]


@pytest.fixture
def run(capfd):
    """``run(script, *argv)``: the runner's ``main(argv)`` in this process (the cells it trains are still the
    real command, each in its own process); returns what it printed. A process of its own per runner would
    add the imports of torch and transformers to every call."""

    def run(name: str, *argv: str) -> str:
        capfd.readouterr()
        script(name)["main"](list(argv))
        out, err = capfd.readouterr()
        return out + err

    return run


def test_label_noise_runner(tmp_path, little_fashion, run):
    runs, output = tmp_path / "runs", tmp_path / "table"
    argv = ["--model", "mlp", "--noise", "0.5", "--seeds", "1", "--methods", "erm", "mixup8_dropout",
            "--train_samples", "64", "--epochs", "2", "--eval_every", "1", "--data", str(little_fashion),
            "--runs_dir", str(runs), "--output", str(output), "--jobs", "2"]
    run("reproduce_label_noise.py", *argv)
    grid = json.loads((runs / "label_noise_mlp_grid.json").read_text())["cells"]
    assert set(grid) == {"erm@noise50/seed1", "mixup8_dropout@noise50/seed1"}
    for cell, method in (("erm@noise50", "erm"), ("mixup8_dropout@noise50", "mixup8_dropout")):
        folder = runs / f"label_noise-mlp-{method}-noise50-seed1"
        results = json.loads((folder / "all_results.json").read_text())
        assert grid[f"{cell}/seed1"]["result"]["train_error_corrupted"] == results["train_error_corrupted"]
        config = json.loads((folder / "config.json").read_text())
        assert config["architecture"] == "image_mlp"
        assert (config.get("model_args") or {}).get("block_drop_rate") == (0.3 if "dropout" in method else None)
        args = json.loads((folder / "hf_mixup_card.json").read_text())["run_settings"]
        assert args["label noise"].startswith("0.5:") and args["training examples"].startswith("64")
    summary = json.loads((tmp_path / "table.json").read_text())
    assert summary["cells"]["erm@noise50"]["train_error_real"]["values"] == [
        100 * grid["erm@noise50/seed1"]["result"]["train_error_real"]]
    table = (tmp_path / "table.md").read_text()
    assert "| 50% | ERM |" in table and "| 50% | mixup + dropout (alpha = 8, p = 0.3) |" in table
    assert "| 50% | mixup (alpha = 32) | 11.3 | 12.7 | 5.84 | 85.71 |" in table  # the paper's Table 2, all four columns
    assert "- mixup" not in table  # two of the five methods: no family to compare with the paper's
    assert "reproduce_label_noise.py --model mlp" in table

    again = run("reproduce_label_noise.py", *argv)
    assert "2 of 2 cells reused" in again


def test_attack_runner(tmp_path, little_fashion, run):
    recipe = tmp_path / "recipe.yaml"
    # The recipe at 1 epoch on 64 images, and a narrower network (the attacks take most of the time): what is
    # checked is the runner's bookkeeping, not the figures.
    text = (ROOT / "recipes" / "fashion_mnist_cpu.yaml").read_text()
    assert '"channels": [16, 32, 64, 128]' in text and "num_train_epochs: 6" in text
    text = text.replace('"channels": [16, 32, 64, 128]', '"channels": [4, 8, 8, 8]')
    recipe.write_text(text.replace("num_train_epochs: 6", "num_train_epochs: 1")
                      + "max_train_samples: 64\nmax_eval_samples: 20\nper_device_eval_batch_size: 20\n")
    runs, output = tmp_path / "runs", tmp_path / "attack"
    argv = ["--recipe", str(recipe), "--seeds", "1", "2", "--data", str(little_fashion), "--max_samples", "6",
            "--runs_dir", str(runs), "--output", str(output)]
    run("reproduce_attacks.py", *argv)
    trained = json.loads((runs / "recipe_grid.json").read_text())["cells"]
    assert set(trained) == {"erm/seed1", "erm/seed2", "mixup/seed1"}
    per_triple = json.loads((runs / "attack-triple1-2.json").read_text())
    summary = json.loads((tmp_path / "attack.json").read_text())
    # The summary's white-box mixup FGSM error at 4/255 is the triple's own figure.
    mixup = next(r for r in per_triple["results"] if r["setting"] == "white box" and r["attack"] == "fgsm"
                 and r["target"].endswith("recipe-mixup-seed1") and round(r["epsilon"] * 255) == 4)
    assert summary["epsilon_4"]["top1/fgsm"]["white_mixup"]["values"] == [100 * mixup["top1_error"]]
    black = [r for r in per_triple["results"] if r["setting"] == "black box"]
    assert {r["source"] for r in black} == {str(runs / "recipe-erm-seed1")}
    assert {r["target"] for r in black} == {str(runs / "recipe-erm-seed2"), str(runs / "recipe-mixup-seed1")}
    assert (tmp_path / "attack.png").stat().st_size > 10_000
    again = run("reproduce_attacks.py", *argv)
    assert "1 of 1 cells reused" in again


def test_ablation_runner(tmp_path, little_fashion, run):
    """Two rows of Table 5 (one through the nearest-neighbour partners of the training command), one weight
    decay, one seed: the cell's figure is the median of the last epochs' test errors of its run."""
    runs, output = tmp_path / "runs", tmp_path / "ablations"
    argv = ["--rows", "erm", "inputs_sc_knn", "--weight_decays", "5e-4", "--seeds", "1", "--train_samples", "64",
            "--epochs", "2", "--last", "2", "--knn_k", "3", "--data", str(little_fashion), "--runs_dir", str(runs),
            "--output", str(output), "--jobs", "2"]
    run("ablations.py", *argv)
    grid = json.loads((runs / "ablations_grid.json").read_text())["cells"]
    assert set(grid) == {"erm@wd0.0005/seed1", "inputs_sc_knn@wd0.0005/seed1"}
    state = json.loads((runs / "ablation-inputs_sc_knn-wd0.0005-seed1" / "trainer_state.json").read_text())
    errors = [100 * (1 - h["eval_accuracy"]) for h in state["log_history"] if "eval_accuracy" in h]
    assert len(errors) == 2  # evaluated after each of the last 2 epochs
    assert grid["inputs_sc_knn@wd0.0005/seed1"]["result"]["median_test_error"] == pytest.approx(sum(errors) / 2)
    card = (runs / "ablation-inputs_sc_knn-wd0.0005-seed1" / "README.md").read_text()
    assert "| mixup_partner | knn |" in card and "| mixup_targets | input_only |" in card and "| weight decay | 0.0005 |" in card
    table = (tmp_path / "ablations.md").read_text()
    assert "| mix inputs only | SC + KNN |" in table and "test error, weight decay 0.0005" in table
    # The paper's Table 5 sits beside ours, every row: ERM and SMOTE at weight decay 5e-4.
    erm = next(line for line in table.splitlines() if line.startswith("| ERM |"))
    assert erm.endswith("| 5.18 |")
    smote = next(line for line in table.splitlines() if line.startswith("| mix inputs only | SC + KNN |"))
    assert smote.endswith("| 5.52 |")
    assert "another experiment: CIFAR-10, full-width PreAct ResNet-18, 200 epochs" in table
    # Two rows of 22: too few for the paper's findings, which need every row.
    assert "The paper's findings against ours" not in table
    # The page again from the json alone.
    (tmp_path / "ablations.md").unlink()
    run("ablations.py", "--render_only", "--output", str(output))
    assert (tmp_path / "ablations.md").read_text() == table


GAN_SMALL = "--hidden_size 16 --batch_size 8 --d_steps 2"


def test_gan_figure5_runner(tmp_path, run):
    """Figure 5 at a few iterations: four runs recorded, the figure drawn, the table's figures those of the runs'
    metrics, and a second start reusing every run."""
    runs, output = tmp_path / "runs" / "gan", tmp_path / "figure5"
    argv = ["figure5", "--iterations", "12", "--eval_samples", "200", "--runs_dir", str(runs), "--output", str(output),
            "--extra", GAN_SMALL, "--jobs", "2"]
    run("reproduce_gan.py", *argv)
    grid = json.loads((tmp_path / "runs" / "gan_figure5_grid.json").read_text())["cells"]
    assert set(grid) == {"ring/plain/seed1", "ring/mixup/seed1", "grid/plain/seed1", "grid/mixup/seed1"}
    metrics = json.loads((runs / "figure5-grid-mixup-seed1" / "metrics.json").read_text())
    config = json.loads((runs / "figure5-grid-mixup-seed1" / "gan_config.json").read_text())
    assert config["mixup_max"] == 0.2 and config["hidden_size"] == 16 and config["latent_dim"] == 2
    assert [e["iteration"] for e in metrics["snapshots"]] == [10, 12]
    table = (tmp_path / "figure5.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| grid | mixup GAN (m = 0.2) |"))
    cells = [c.strip() for c in row.strip("|").split("|")][2:]
    assert cells == [f"{e['modes_covered']}/25, {100 * e['high_quality']:.0f}% HQ" for e in metrics["snapshots"]]
    assert (tmp_path / "figure5.png").stat().st_size > 20_000
    assert "4 of 4 cells reused" in run("reproduce_gan.py", *argv)


def test_gan_sweep_runner(tmp_path, run):
    """The stability sweep on a 1 x 1 x 2 x 2 grid: per m, the mean modes covered and the share of runs covering
    every mode are those of the runs."""
    runs, output = tmp_path / "runs" / "gan", tmp_path / "sweep"
    extra = GAN_SMALL + " --data_std 0.3 --learning_rate 0.02"  # wide modes and big steps: the coverage moves
    run("reproduce_gan.py", "sweep", "--data", "ring", "--latent_dims", "2", "--mixup_max", "0", "0.5", "--seeds", "1", "2",
        "--iterations", "5", "--eval_samples", "200", "--runs_dir", str(runs), "--output", str(output), "--extra", extra,
        "--jobs", "2")
    payload = json.loads((tmp_path / "sweep.json").read_text())
    losses = []
    for m in ("0", "0.5"):
        finals = [json.loads((runs / f"sweep-ring-z2-m{m}-seed{s}" / "metrics.json").read_text())["final"] for s in (1, 2)]
        summary = payload["per_m"]["ring"][m]
        assert summary["modes_covered"] == pytest.approx(sum(f["modes_covered"] for f in finals) / 2)
        assert summary["high_quality"] == pytest.approx(sum(f["high_quality"] for f in finals) / 2)
        assert summary["covers_all"] == pytest.approx(sum(f["covers_all"] for f in finals) / 2)
        assert summary["runs"] == 2
        histories = [json.loads((runs / f"sweep-ring-z2-m{m}-seed{s}" / "metrics.json").read_text())["snapshots"]
                     for s in (1, 2)]
        assert [[e["iteration"] for e in h] for h in histories] == [[1, 2, 4, 5]] * 2  # each quarter of 5
        curve = payload["over_training"]["ring"][m]
        assert curve == {str(i): pytest.approx(sum(h[k]["modes_covered"] for h in histories) / 2)
                         for k, i in enumerate((1, 2, 4, 5))}
        lost = [max(e["modes_covered"] for e in h) - h[-1]["modes_covered"] for h in histories]
        losses.append(sum(lost))
        assert payload["fell_back"]["ring"][m] == {"modes_lost": pytest.approx(sum(lost) / 2),
                                                   "runs_that_lost_modes": pytest.approx(sum(v > 0 for v in lost) / 2)}
    assert sum(losses) > 0  # some run fell back, so the check above is not of zeros
    assert json.loads((runs / "sweep-ring-z2-m0.5-seed2" / "gan_config.json").read_text())["mixup_max"] == 0.5
    assert "| 0 (plain GAN) |" in (tmp_path / "sweep.md").read_text()
    assert (tmp_path / "sweep.png").stat().st_size > 10_000

    # A longer --iterations extends the finished runs from their checkpoints; other settings start them afresh.
    common = ["sweep", "--data", "ring", "--latent_dims", "2", "--mixup_max", "0.5", "--seeds", "1", "--eval_samples", "200",
              "--runs_dir", str(runs), "--output", str(output)]
    folder = runs / "sweep-ring-z2-m0.5-seed1"
    run("reproduce_gan.py", *common, "--iterations", "8", "--extra", extra)
    # scored at each quarter of the run: 1, 2, 4, 5 of the first 5 iterations, then 6 and 8 (2 and 4 already are)
    assert [e["iteration"] for e in json.loads((folder / "metrics.json").read_text())["snapshots"]] == [1, 2, 4, 5, 6, 8]
    run("reproduce_gan.py", *common, "--iterations", "8", "--extra", extra.replace("16", "8"))
    assert [e["iteration"] for e in json.loads((folder / "metrics.json").read_text())["snapshots"]] == [2, 4, 6, 8]
    assert json.loads((folder / "gan_config.json").read_text())["hidden_size"] == 8


def test_compare_draws_the_reliability_diagrams_of_both_methods(tmp_path, run):
    """`scripts/compare.py --reliability`: the table and the diagrams from each run's files; a run evaluated before
    the bins were recorded is named, with what to do."""
    from hf_mixup.hub.plots import CALIBRATION_FILE

    bins = {"n_bins": 2, "count": [1, 3], "confidence_sum": [0.5, 2.7], "correct_sum": [0, 3]}
    dirs = {}
    for method, accuracy in (("erm", 0.75), ("mixup", 0.8)):
        for seed in (1, 2):
            folder = tmp_path / f"{method}-seed{seed}"
            folder.mkdir()
            (folder / "all_results.json").write_text(json.dumps(
                {"test_error": 1 - accuracy, "test_accuracy": accuracy, "test_nll": 0.5, "test_ece": 0.1}))
            (folder / CALIBRATION_FILE).write_text(json.dumps(bins))
            dirs.setdefault(method, []).append(str(folder))
    png = tmp_path / "reliability.png"
    out = run("compare.py", "--erm", *dirs["erm"], "--mixup", *dirs["mixup"], "--reliability", str(png))
    assert "| ERM | 2 | 25.00 ± 0.00 |" in out and png.read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "mixup-seed2" / CALIBRATION_FILE).unlink()
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "compare.py"), "--erm", *dirs["erm"], "--mixup",
                           *dirs["mixup"], "--reliability", str(png)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.startswith(f"compare.py: error: {tmp_path / 'mixup-seed2'} has no")


def test_the_long_schedule_verdict_weighs_the_gap_against_the_seeds_spread():
    verdict = script("reproduce_long.py")["verdict"]

    def cells(*errors):
        return [{"test_error": e, "best_test_error": e, "train_error": 0.0, "test_ece": 0.01} for e in errors]

    one = verdict({"erm": cells(0.10), "mixup1": cells(0.09)})
    assert ("(lower, agrees with the paper's direction on this one seed; 1 seed: the seeds' spread is not known yet)"
            in one[0])
    close = verdict({"erm": cells(0.100, 0.104, 0.096), "mixup1": cells(0.099, 0.097, 0.098)})
    assert ("(lower, within the seeds' spread: no finding either way; a gap of 0.20 points, less "
            "than the seeds' spread of 0.40)") in close[0]
    apart = verdict({"erm": cells(0.100, 0.101, 0.099), "mixup1": cells(0.110, 0.111, 0.109)})
    assert ("(higher, goes against the paper's direction; a gap of 1.00 points, more than the seeds' spread of "
            "0.10)") in apart[0]


def test_long_schedule_runner(tmp_path, little_fashion, run):
    """scripts/reproduce_long.py on 200 images for one epoch: the table's figures come from the runs (test error,
    the best of the per-epoch ones, training error measured on the training images, calibration bins of every
    test prediction), the page is its json rendered, and a second start trains nothing."""
    runs, output = tmp_path / "runs", tmp_path / "long"
    argv = ["--epochs", "1", "--seeds", "1", "--methods", "erm", "mixup1", "--data", str(little_fashion),
            "--runs_dir", str(runs), "--output", str(output)]
    # A grid stopped in the middle (here the second run fails: its output_dir is a file) leaves the page of the runs
    # finished so far.
    runs.mkdir()
    (runs / "long-mixup1-seed1").write_text("in the way")
    stopped = subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce_long.py"), *argv], capture_output=True,
                             text=True, timeout=600)
    assert stopped.returncode != 0
    partial = output.with_suffix(".md").read_text()
    assert "| ERM | 1 |" in partial and "mixup (alpha 1)" not in partial
    (runs / "long-mixup1-seed1").unlink()
    run("reproduce_long.py", *argv)
    record = json.loads(output.with_suffix(".json").read_text())
    assert set(record["runs"]) == {"erm", "mixup1"} and record["train_images"] == 200
    for method in ("erm", "mixup1"):
        cell = record["runs"][method][0]
        results = json.loads((runs / f"long-{method}-seed1" / "all_results.json").read_text())
        assert cell["test_error"] == results["test_error"] and len(cell["curve"]) == 1
        assert cell["best_test_error"] == pytest.approx(cell["curve"][0][1]) == pytest.approx(results["test_error"])
        assert 0 <= cell["train_error"] <= 1 and sum(cell["calibration"]["count"]) == 200
    page = output.with_suffix(".md").read_text()
    assert "| ERM | 1 |" in page and "Figure 3a" in page and "all 200 training images" in page
    assert (tmp_path / "long_curves.png").is_file() and (tmp_path / "long_reliability.png").is_file()
    output.with_suffix(".md").write_text("stale")
    run("reproduce_long.py", "--render_only", "--output", str(output))
    assert output.with_suffix(".md").read_text() == page
    again = run("reproduce_long.py", *argv)
    assert "2/2" in again and not (runs / "long-erm-seed1.log").read_text().count("***** train metrics *****") > 1
