#!/usr/bin/env python
"""ERM vs mixup to convergence: all 60,000 Fashion-MNIST training images, 100 epochs, the paper's step schedule
(the regime of the paper's headline claim, where a CPU affords it).

    python scripts/reproduce_long.py                     # ERM, mixup alpha 0.2 and 1; seeds 1 2 3
    python scripts/reproduce_long.py --seeds 1           # one seed of each method first
    python scripts/reproduce_long.py --render_only       # the page again from results/long_fashion_mnist.json
    python scripts/reproduce_long.py --candidates        # the step time of the candidate models, to choose one
    python scripts/reproduce_long.py --preset gpu --jobs 3   # full-width PreAct ResNet-18, 200 epochs, on a GPU

Each run is `hf-mixup train fashion_mnist_long_mlp --mixup_alpha <0|alpha> --seed <k> --output_dir
<runs_dir>/long-<method>-seed<k>` (a process of its own): the 784-1024-1024-10 MLP (`image_mlp`), SGD (lr 0.1,
momentum 0.9, weight decay 1e-4, batch 128), the rate divided by 10 at epochs 50 and 75, no augmentation, the
in-memory fast path, evaluated on the 10,000 test images after every epoch. After each run the final model's
error on the 60,000 training images is measured (clean images, evaluation mode).

Writes results/long_fashion_mnist.{md,json} (best and last test error, training error, test NLL and ECE, mean ±
std over seeds, the paper's Figure 3a beside them), results/long_fashion_mnist_curves.png (test error per epoch,
per method) and results/long_fashion_mnist_reliability.png (reliability diagrams, every seed's test predictions
pooled). Each finished run is recorded in <runs_dir>/long_grid.json: running the command again skips the runs
already there, and an interrupted run resumes from its last epoch checkpoint, so the grid can be spread over
several sittings. The page is written again before each run starts, from the runs finished so far (its table
counts the seeds), so a grid stopped in the middle leaves its page up to date.

`--preset gpu` runs the same grid as the paper's CIFAR recipe would on a GPU: full-width PreAct ResNet-18, 200
epochs (lr / 10 at 100 and 150), the pad-4 crop and flip on the device (the `fashion_mnist_long_preact_gpu`
recipe), into results/long_fashion_mnist_preact and <runs_dir>/long_gpu_grid.json; `--jobs 3` shares one GPU
between three runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from hf_mixup import paper
from hf_mixup.experiments import command_line, describe_machine, file_digest, render_results, run_grid, write_results

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "fashion_mnist_long_mlp"
# --preset: (recipe, epochs, the model in words, the schedule in words, output, state file)
PRESETS = {
    "cpu": (RECIPE, 100, "the 784-1024-1024-10 MLP", "divided by 10 at epochs 50 and 75), weight decay 1e-4, no "
            "augmentation", "results/long_fashion_mnist", "long_grid.json"),
    "gpu": ("fashion_mnist_long_preact_gpu", 200, "full-width PreAct ResNet-18", "divided by 10 at epochs 100 and "
            "150), weight decay 1e-4, pad-4 crop and flip on the device", "results/long_fashion_mnist_preact",
            "long_gpu_grid.json"),
}
DATA = "data/fashion_mnist"
# method -> mixup_alpha
METHODS = {"erm": 0.0, "mixup0.2": 0.2, "mixup1": 1.0}
NAMES = {"erm": "ERM", "mixup0.2": "mixup (alpha 0.2)", "mixup1": "mixup (alpha 1)"}
# The models measured for this schedule (--candidates): (name, timm architecture, model_kwargs).
CANDIDATES = (
    ("MLP 784-1024-1024-10 (image_mlp)", "image_mlp", {"in_chans": 1}),
    ("PreAct ResNet-18 at 1/8 width (8-16-32-64)", "preact_resnet18", {"channels": [8, 16, 32, 64], "in_chans": 1}),
    ("PreAct ResNet-18 at 1/4 width (16-32-64-128)", "preact_resnet18", {"channels": [16, 32, 64, 128], "in_chans": 1}),
)


def mean_std(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    mean = scale * statistics.mean(values)
    return f"{mean:.{digits}f} ± {scale * statistics.stdev(values):.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def training_error(run_dir: str, data: str = DATA) -> float:
    """The final model's error on every training image (clean, evaluation mode), on the in-memory path."""
    import torch
    from transformers import AutoModelForImageClassification

    from hf_mixup.data import load_any_dataset
    from hf_mixup.data.in_memory import InMemoryImages

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForImageClassification.from_pretrained(run_dir).eval().to(device)
    cfg = model.config.pretrained_cfg
    mode = "L" if cfg["input_size"][0] == 1 else "RGB"
    train = InMemoryImages.from_dataset(load_any_dataset(data)["train"], mean=cfg["mean"], std=cfg["std"], mode=mode,
                                        size=cfg["input_size"][-1], device=device)
    wrong = 0
    with torch.inference_mode():
        for start in range(0, len(train), 2000):
            batch = train.__getitems__(range(start, min(start + 2000, len(train))))
            wrong += int((model(pixel_values=batch["pixel_values"]).logits.argmax(-1) != batch["labels"]).sum())
    return wrong / len(train)


def read_run(run_dir: str, data: str = DATA) -> dict:
    """What the page needs from a finished run: its final metrics, the test error after every epoch, the
    reliability bins of its final evaluation and its error on the training images."""
    with open(os.path.join(run_dir, "all_results.json")) as f:
        results = json.load(f)
    with open(os.path.join(run_dir, "trainer_state.json")) as f:
        history = json.load(f)["log_history"]
    with open(os.path.join(run_dir, "test_calibration.json")) as f:
        calibration = json.load(f)
    curve = [[round(h["epoch"], 3), 1.0 - h["eval_accuracy"]] for h in history if "eval_accuracy" in h]
    return {
        "test_error": results["test_error"], "test_nll": results["test_nll"], "test_ece": results["test_ece"],
        "best_test_error": min(error for _, error in curve), "train_error": training_error(run_dir, data),
        "curve": curve, "calibration": calibration,
    }


def render(record: dict) -> str:
    runs = record["runs"]
    rows = []
    for method, name in NAMES.items():
        cells = runs.get(method, [])
        if not cells:
            continue
        column = {key: [cell[key] for cell in cells] for key in ("best_test_error", "test_error", "train_error")}
        rows.append(
            f"| {name} | {len(cells)} | {mean_std(column['best_test_error'])} | {mean_std(column['test_error'])} | "
            f"{mean_std(column['train_error'])} | {mean_std([c['test_nll'] for c in cells], 1.0, 4)} | "
            f"{mean_std([c['test_ece'] for c in cells])} |"
        )
    erm, mixup = paper.FIGURE3A[("CIFAR-10", "PreAct ResNet-18")]
    epochs = f"{record['config']['epochs']:g}"
    images = f"{record['train_images']:,}"
    lines = [
        f"# ERM vs mixup to convergence: Fashion-MNIST, all {images} training images, {epochs} epochs",
        "",
        f"Ours: {record['setting']}. On {record['machine_note']}.",
        "",
        "| method | seeds | best test error (%) | last test error (%) | training error (%) | test NLL | test ECE (%) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Mean ± standard deviation over seeds. Best: the lowest of the {epochs} per-epoch test errors; last: after the last "
        f"epoch; training error: the final model on the {images} training images, clean; NLL and ECE (15 bins) of the "
        "last evaluation.",
        "",
        f"The paper (Figure 3a), another experiment: {paper.FIGURE3A_SETTING}. CIFAR-10, PreAct ResNet-18: ERM "
        f"{erm} %, mixup {mixup} % test error; its Section 3.2 adds that models with higher capacities and/or "
        "longer training runs benefit the most.",
        "",
    ]
    lines += verdict(runs)
    lines += [
        "",
        f"![Test error per epoch]({record['plots']}_curves.png)",
        "",
        f"![Reliability diagrams]({record['plots']}_reliability.png)",
        "",
        f"`{record['command']}`",
        "",
    ]
    return "\n".join(lines)


def spread_words(runs: dict, method: str, key: str = "test_error") -> tuple[str, bool | None]:
    """How the gap in mean ``key`` between ``method`` and ERM compares with what the seeds move either one (the larger
    of the two standard deviations over seeds: a yardstick, not a significance test), and whether it is larger
    (None with fewer than two seeds of either: the spread is unknown)."""
    ours, erm = [c[key] for c in runs[method]], [c[key] for c in runs["erm"]]
    seeds = min(len(ours), len(erm))
    if seeds < 2:
        return f"{seeds} seed{'s' if seeds != 1 else ''}: the seeds' spread is not known yet", None
    spread = max(statistics.stdev(ours), statistics.stdev(erm))
    gap = abs(statistics.mean(ours) - statistics.mean(erm))
    beyond = gap > spread
    return (f"a gap of {100 * gap:.2f} points, {'more' if beyond else 'less'} than the seeds' spread of "
            f"{100 * spread:.2f}"), beyond


def verdict(runs: dict) -> list[str]:
    """One line per claim, in words, from the table."""
    if "erm" not in runs or len(runs) < 2:
        return ["Too few runs yet to compare the methods."]
    lines = []
    erm_last = statistics.mean(c["test_error"] for c in runs["erm"])
    erm_train = statistics.mean(c["train_error"] for c in runs["erm"])
    erm_ece = statistics.mean(c["test_ece"] for c in runs["erm"])
    for method in (m for m in NAMES if m != "erm" and m in runs):
        last = statistics.mean(c["test_error"] for c in runs[method])
        best = statistics.mean(c["best_test_error"] for c in runs[method])
        erm_best = statistics.mean(c["best_test_error"] for c in runs["erm"])
        ece = statistics.mean(c["test_ece"] for c in runs[method])
        spread, beyond = spread_words(runs, method)
        if beyond is False:
            reading = "within the seeds' spread: no finding either way"
        else:
            reading = f"{'agrees with' if last < erm_last else 'goes against'} the paper's direction"
            reading += "" if beyond else " on this one seed"
        lines.append(
            f"- {NAMES[method]}: last test error {100 * last:.2f} % against ERM's {100 * erm_last:.2f} % "
            f"({'lower' if last < erm_last else 'higher'}, {reading}; {spread}); "
            f"best {100 * best:.2f} % against {100 * erm_best:.2f} %; ECE {100 * ece:.2f} % against "
            f"{100 * erm_ece:.2f} %."
        )
    lines.append(f"- ERM's training error ends at {100 * erm_train:.2f} %: "
                 + ("it fits the training set." if erm_train < 0.01 else "it does not fit the training set yet."))
    return lines


def plot(record: dict, output: str) -> None:
    """The error curves (mean over seeds per method) and the pooled reliability diagrams."""
    import numpy as np

    from hf_mixup.hub.plots import pyplot, plot_reliability

    runs = record["runs"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (method, name), color in zip(NAMES.items(), ("tab:grey", "tab:orange", "tab:blue")):
        cells = runs.get(method, [])
        if not cells:
            continue
        epochs = [e for e, _ in cells[0]["curve"]]
        errors = np.array([[100 * err for _, err in c["curve"]] for c in cells if len(c["curve"]) == len(epochs)])
        mean = errors.mean(0)
        ax.plot(epochs, mean, color=color, label=f"{name} ({len(errors)} seed{'s' if len(errors) != 1 else ''})")
        if len(errors) > 1:
            std = errors.std(0, ddof=1)
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)
    ax.set(xlabel="epoch", ylabel="test error (%)", title="Fashion-MNIST: test error after each epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(output + "_curves.png", dpi=120)
    plt.close(fig)
    groups = {NAMES[m]: [c["calibration"] for c in runs[m]] for m in NAMES if runs.get(m)}
    if groups:
        plot_reliability(groups, output + "_reliability.png",
                         title=f"Fashion-MNIST test split, after {record['config']['epochs']:g} epochs")


def candidates(output: str) -> None:
    """Median step time (batch 128, 28x28 grey images, SGD) of each candidate model, and what an epoch and the
    100-epoch schedule cost at that rate, written to <output>_candidates.md."""
    import torch

    from hf_mixup.models import create_timm_classifier

    rows, totals = [], {}
    for name, architecture, kwargs in CANDIDATES:
        torch.manual_seed(0)
        model = create_timm_classifier(architecture, [str(i) for i in range(10)], image_size=28, model_args=kwargs).timm_model
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
        times = []
        for _ in range(15):
            start = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        step = statistics.median(times[3:])
        epoch_minutes = 60000 / 128 * step / 60
        params = sum(p.numel() for p in model.parameters()) / 1e6
        hours = 100 * epoch_minutes / 60
        totals[name] = 9 * hours
        rows.append(f"| {name} | {params:.2f} M | {1000 * step:.0f} | {epoch_minutes:.1f} | {hours:.1f} | {9 * hours:.1f} |")
        print(rows[-1], flush=True)
    text = "\n".join([
        "# Which model for the long schedule: step time of the candidates",
        "",
        f"Batch 128 of 28x28 grey images, a forward, backward and SGD step, median of 12 steps ({describe_machine()}).",
        "",
        "| model | parameters | step (ms) | epoch of 60,000 (min) | 100 epochs (h) | nine runs (h) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Bare training steps only: a run also evaluates and saves a checkpoint after every epoch. The grid is nine runs "
        "(ERM, mixup alpha 0.2 and 1; three seeds) of 100 epochs, to fit a budget of 6 to 9 hours of this 2-core "
        "machine: " + "; ".join(f"{name} {hours:.1f} h" for name, hours in totals.items())
        + " of bare steps. Only the MLP fits; the ResNets (the paper's family) would take "
        + " and ".join(f"{hours / 9:.1f}-{hours / 6:.1f}x" for name, hours in totals.items() if "ResNet" in name)
        + " of it.",
        "",
        f"`{command_line(None, __file__)}`",
        "",
    ])
    write_results(output + "_candidates", text, {"rows": rows}, script=__file__)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--preset", choices=list(PRESETS), default="cpu")
    parser.add_argument("--epochs", type=float, help="default: the preset's (100 on the CPU, 200 on a GPU)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each with one thread when > 1)")
    parser.add_argument("--data", default=DATA, help="a saved Fashion-MNIST (the default is prepared if missing)")
    parser.add_argument("--runs_dir", default="runs/long")
    parser.add_argument("--output", help="default: the preset's results file")
    parser.add_argument("--render_only", action="store_true", help="write the page and plots again from the json")
    parser.add_argument("--candidates", action="store_true", help="measure the candidate models' step time")
    args = parser.parse_args(argv)
    recipe, default_epochs, model_words, schedule_words, default_output, state_name = PRESETS[args.preset]
    args.epochs = args.epochs or default_epochs
    args.output = args.output or default_output
    os.chdir(ROOT)
    if args.render_only:
        render_results(args.output, render)
        with open(args.output + ".json") as f:
            plot(json.load(f), args.output)
        return {}
    if args.candidates:
        candidates(args.output)
        return {}
    from hf_mixup.data import prepared_fashion_mnist

    if args.data == DATA:
        prepared_fashion_mnist(DATA)
    binary = Path(sys.executable).with_name("hf-mixup")

    def run_dir(method: str, seed: int) -> str:
        return os.path.join(args.runs_dir, f"long-{method}-seed{seed}")

    os.makedirs(args.runs_dir, exist_ok=True)
    config = {"epochs": args.epochs, "recipe_sha1": file_digest(str(ROOT / "recipes" / f"{recipe}.yaml")),
              **({"data": args.data} if args.data != DATA else {})}
    state_file = os.path.join(args.runs_dir, state_name)
    from hf_mixup.data import load_any_dataset

    images = len(load_any_dataset(args.data)["train"])
    setting = (f"Fashion-MNIST ({images:,} training images), {model_words}, {args.epochs:g} epochs of SGD with "
               f"batches of 128 (lr 0.1, {schedule_words}")
    page_lock = threading.Lock()

    def write_page() -> dict | None:
        """The page, json and plots from every cell of this grid finished so far (the table counts the seeds)."""
        if not os.path.isfile(state_file):
            return None
        with page_lock:
            with open(state_file) as f:
                cells = json.load(f)["cells"].values()
            runs: dict[str, list[dict]] = {}
            seconds = 0.0
            for cell in sorted(cells, key=lambda c: (c["method"], c["seed"])):
                if cell["config"] == config and cell["method"] in args.methods and cell["seed"] in args.seeds:
                    runs.setdefault(cell["method"], []).append({**cell["result"], "seed": cell["seed"]})
                    seconds += cell["seconds"]
            if not runs:
                return None
            payload = {"runs": runs, "setting": setting, "config": config, "seconds": seconds,
                       "train_images": images, "plots": os.path.basename(args.output),
                       "machine_note": f"{describe_machine()}, {seconds / 3600:.2f} h of runs (wall clock)"}
            record = write_results(args.output, None, payload, argv=argv, script=__file__, render=render)
            plot(record, args.output)
            return record

    def run_cell(method: str, seed: int) -> dict:
        write_page()  # the cells finished so far: a grid stopped in the middle leaves its page up to date
        command = [str(binary), "train", recipe, "--seed", str(seed), "--mixup_alpha", f"{METHODS[method]:g}",
                   "--num_train_epochs", f"{args.epochs:g}", "--dataset_name", args.data,
                   "--output_dir", run_dir(method, seed),
                   "--report_to", "none", "--disable_tqdm", "true"]
        env = dict(os.environ, OMP_NUM_THREADS="1") if args.jobs > 1 else None
        with open(f"{run_dir(method, seed)}.log", "a") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
        return read_run(run_dir(method, seed), args.data)

    run_grid(run_cell, args.methods, args.seeds, state_file=state_file, config=config, desc="long runs", jobs=args.jobs,
             still_done=lambda method, seed: os.path.isfile(os.path.join(run_dir(method, seed), "all_results.json")))
    return write_page()


if __name__ == "__main__":
    main()
