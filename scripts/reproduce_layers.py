#!/usr/bin/env python
"""Which layer to mix? ERM vs mixup at each mixing site of a transformers model trained from scratch (the paper's
Table 5 question, for text and for a ViT): `--task rotten_tomatoes` (a small BERT, mixing the token embeddings,
the hidden states entering blocks 2 and 4, and the pooled features) and `--task fashion_mnist_vit` (a small
`ViTForImageClassification`, mixing the images, the hidden states entering blocks 2 and 4, and the pooled features).

    python scripts/reproduce_layers.py                                 # rotten_tomatoes, seeds 1 2 3
    python scripts/reproduce_layers.py --task fashion_mnist_vit --jobs 2
    python scripts/reproduce_layers.py --seeds 1 2 3 4                 # a fourth seed: only its runs are new

Each run is `hf-mixup train <recipe> --mixup_alpha <0|alpha> --mixup_layer <site> --seed <k> --num_train_epochs
<epochs> --output_dir <runs_dir>/<task>-<method>-seed<k>` (a process of its own; with `--jobs 2`, two at a time
with one thread each):

- rotten_tomatoes: the `rotten_tomatoes_small_bert` recipe: a 4-layer, 128-wide BERT (`small_bert`, its
  WordPiece tokenizer trained on the training split), batches of 32, AdamW lr 5e-4, weight decay 0.01, 10%
  warm-up then cosine decay, 5 epochs, evaluated on the held-out 10% (853 sentences; the package ships only the
  Hub's train split, see docs/text.md).
- fashion_mnist_vit: the `fashion_mnist_small_vit` recipe: a 4-block, 128-wide ViT on 7x7 patches of the 28x28
  images (`small_vit`), 10,000 training images (drawn by the seed), batches of 128, AdamW lr 1e-3, weight decay
  0.05, 10% warm-up then cosine decay, 5 epochs, evaluated once at the end on the 10,000 test images. The patch
  embedding is affine, so mixing the patch embeddings ("embeddings") is mixing the images: the inputs stand
  for both.

Writes results/<text|vit>_layers_<data>.{md,json,png}: the last test error and ECE as mean ± standard deviation
over seeds, and a plot. Each finished run is recorded in <runs_dir>/<state file>; running the command again skips
the runs already there, and an interrupted run resumes from its last epoch checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hf_mixup import paper
from hf_mixup.experiments import file_digest, render_results, run_grid, write_results

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Task:
    recipe: str
    methods: dict[str, str | None]  # method -> --mixup_layer (None: ERM, mixup_alpha 0)
    names: dict[str, str]
    state_file: str
    output: str
    title: str
    evaluated_on: str
    flags: tuple[str, ...] = ()
    default_batch_size: int = 32
    needs: tuple[str, ...] = ()  # prepared datasets: "fashion_mnist"


TASKS = {
    "rotten_tomatoes": Task(
        recipe="rotten_tomatoes_small_bert",
        methods={"erm": None, "embeddings": "embeddings", "block2": "2", "block4": "4", "pooled": "pooled"},
        names={"erm": "ERM", "embeddings": "mixup at the token embeddings", "block2": "mixup entering block 2",
               "block4": "mixup entering block 4 (the last)", "pooled": "mixup of the pooled features"},
        state_file="text_layers_grid.json",
        output="results/text_layers_rotten_tomatoes",
        title="Which layer to mix for text: Rotten Tomatoes, small BERT from scratch",
        evaluated_on="the 853 held-out sentences",
    ),
    "fashion_mnist_vit": Task(
        recipe="fashion_mnist_small_vit",
        methods={"erm": None, "inputs": "0", "block2": "2", "block4": "4", "pooled": "pooled"},
        names={"erm": "ERM", "inputs": "mixup of the images (= of the patch embeddings)",
               "block2": "mixup entering block 2", "block4": "mixup entering block 4 (the last)",
               "pooled": "mixup of the pooled features"},
        state_file="vit_layers_grid.json",
        output="results/vit_layers_fashion_mnist",
        title="Which layer to mix in a ViT: Fashion-MNIST (10,000 training images), small ViT from scratch",
        evaluated_on="the 10,000 test images",
        flags=("--eval_strategy", "no"),
        default_batch_size=128,
        needs=("fashion_mnist",),
    ),
}


def mean_std(values: list[float]) -> str:
    """``mean ± std`` in percent (std over seeds; ``±`` omitted for one seed)."""
    mean = 100 * statistics.mean(values)
    return f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else f"{mean:.2f}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=list(TASKS), default="rotten_tomatoes")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", help="a subset of the task's methods (default: all of them)")
    parser.add_argument("--alpha", type=float, default=1.0, help="mixup_alpha of the mixup runs")
    parser.add_argument("--epochs", type=float, default=5)
    parser.add_argument("--batch_size", type=int, help="default: the recipe's (32 for text, 128 for the ViT)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each with one thread when > 1)")
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--output", help="default: results/text_layers_rotten_tomatoes, results/vit_layers_fashion_mnist")
    parser.add_argument("--render_only", action="store_true", help="write the page and plot again from the json")
    args = parser.parse_args(argv)
    task = TASKS[args.task]
    if args.render_only:
        output = os.path.join(ROOT, args.output or task.output)
        render_results(output, render)
        with open(output + ".json") as f:
            plot(json.load(f), output + ".png")
        return {}
    methods = args.methods or list(task.methods)
    unknown = sorted(set(methods) - set(task.methods))
    if unknown:
        parser.error(f"--methods {' '.join(unknown)}: --task {args.task} has {', '.join(task.methods)}")
    batch_size = args.batch_size or task.default_batch_size
    output = args.output or task.output
    os.chdir(ROOT)
    binary = Path(sys.executable).with_name("hf-mixup")
    if "fashion_mnist" in task.needs:
        from hf_mixup.data import prepared_fashion_mnist

        prepared_fashion_mnist("data/fashion_mnist")

    def run_dir(method: str, seed: int) -> str:
        return os.path.join(args.runs_dir, f"{args.task}-{method}-seed{seed}")

    def run_cell(method: str, seed: int) -> dict:
        layer = task.methods[method]
        command = [
            str(binary), "train", task.recipe, "--seed", str(seed),
            "--mixup_alpha", "0" if layer is None else f"{args.alpha:g}", "--mixup_layer", layer or "0",
            "--num_train_epochs", f"{args.epochs:g}", "--per_device_train_batch_size", str(batch_size),
            "--output_dir", run_dir(method, seed), "--report_to", "none", "--disable_tqdm", "true", *task.flags,
        ]
        env = dict(os.environ, OMP_NUM_THREADS="1") if args.jobs > 1 else None
        with open(f"{run_dir(method, seed)}.log", "w") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
        with open(os.path.join(run_dir(method, seed), "all_results.json")) as f:
            return json.load(f)

    os.makedirs(args.runs_dir, exist_ok=True)
    config = {"alpha": args.alpha, "epochs": args.epochs, "batch_size": batch_size,
              "recipe_sha1": file_digest(str(ROOT / "recipes" / f"{task.recipe}.yaml"))}
    state_file = os.path.join(args.runs_dir, task.state_file)
    run_grid(run_cell, methods, args.seeds, state_file=state_file, config=config, desc=f"{args.task} runs",
             jobs=args.jobs,
             still_done=lambda method, seed: os.path.isfile(os.path.join(run_dir(method, seed), "all_results.json")))
    with open(state_file) as f:
        cells = json.load(f)["cells"].values()
    results: dict[str, list[dict]] = {}
    for cell in sorted(cells, key=lambda c: c["seed"]):
        if cell["config"] == config and cell["method"] in methods and cell["seed"] in args.seeds:
            results.setdefault(cell["method"], []).append(cell["result"])
    summary = {
        method: {"test_error": [r["test_error"] for r in runs], "test_ece": [r["test_ece"] for r in runs],
                 "seeds": len(runs)}
        for method in methods if (runs := results.get(method))
    }
    payload = {"task": args.task, "alpha": args.alpha, "epochs": args.epochs, "batch_size": batch_size,
               "methods": summary}
    record = write_results(output, None, payload, argv=argv, script=__file__, render=render)
    plot(record, output + ".png")
    return record


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def against_erm(runs: dict, erm: dict, key: str) -> str:
    """``lower``, ``higher`` or ``within the seeds' spread`` of ERM's, by the difference of the means against the
    larger of the two standard deviations over seeds."""
    difference = statistics.mean(runs[key]) - statistics.mean(erm[key])
    if abs(difference) <= max(spread(runs[key]), spread(erm[key])):
        return "within the seeds' spread of"
    return "lower than" if difference < 0 else "higher than"


def findings(record: dict) -> list[str]:
    """Each site against ERM, in words, and the paper's Table 5 findings on where to mix, computed from both
    tables (`paper.site_checks`)."""
    methods, task = record["methods"], TASKS[record["task"]]
    if "erm" not in methods or len(methods) < 2:
        return ["Too few runs yet to compare the sites with ERM."]
    erm = methods["erm"]
    sites = [m for m in task.methods if m != "erm" and m in methods]
    lines = [f"- {task.names[m]}: test error {against_erm(methods[m], erm, 'test_error')} ERM's, ECE "
             f"{against_erm(methods[m], erm, 'test_ece')} ERM's." for m in sites]
    ours = {"erm": statistics.mean(erm["test_error"]),
            "sites": [(task.names[m], statistics.mean(methods[m]["test_error"])) for m in sites]}
    basis = ("the paper's Table 5 at weight decay 1e-4: ERM, the inputs, layers 1-5; ours: the mean test error of "
             "each site over seeds, compared as means even where, as the lines above say, the seeds' spread is wider")
    return lines + [""] + paper.findings_section(paper.compare(paper.site_checks, paper.table5_sites(), ours), basis)


def render(record: dict) -> str:
    task = TASKS[record["task"]]
    methods = record["methods"]
    rows = [f"| {task.names[m]} | {mean_std(r['test_error'])} | {mean_std(r['test_ece'])} | {r['seeds']} |"
            for m, r in methods.items()]
    lines = [
        f"# {task.title}",
        "",
        f"ERM vs mixup (alpha {record['alpha']:g}) at {len(methods) - 1} sites, {record['epochs']:g} epochs, batch "
        f"{record['batch_size']}; the last test error and ECE (15 bins) in %, mean ± std over seeds, on "
        f"{task.evaluated_on}.",
        "",
        "| method | test error (%) | ECE (%) | seeds |",
        "|---|---|---|---|",
        *rows,
        "",
        f"The paper's Table 5 asks the same question on another experiment: {paper.TABLE5_SETTING}. Its sites at "
        f"weight decay 1e-4: ERM {paper.TABLE5['erm'][0]} %, the inputs {paper.TABLE5['mixup_ac_rp'][0]} %, layers 1-5 "
        f"{', '.join(str(paper.TABLE5[f'layer{k}'][0]) for k in range(1, 6))} %. Each site here against ERM (the "
        "difference of the means against the larger standard deviation over seeds):",
        "",
        *findings(record),
        f"![Test error and ECE per site]({os.path.basename(task.output)}.png)",
        "",
        f"`{record['command']}`",
        "",
    ]
    return "\n".join(lines)


def plot(record: dict, path: str) -> None:
    from matplotlib.figure import Figure

    task, summary = TASKS[record["task"]], record["methods"]
    methods = list(summary)
    if not methods:
        return
    figure = Figure(figsize=(8, 3.2), constrained_layout=True)
    for axis, key, name in zip(figure.subplots(1, 2), ("test_error", "test_ece"), ("test error (%)", "ECE (%)")):
        means = [100 * statistics.mean(summary[m][key]) for m in methods]
        stds = [100 * spread(summary[m][key]) for m in methods]
        axis.bar(range(len(methods)), means, yerr=stds, color=["grey"] + ["tab:blue"] * (len(methods) - 1))
        axis.set_xticks(range(len(methods)), methods, rotation=20)
        axis.set_title(name)
    figure.suptitle(task.title.split(": ", 1)[1] + ": where to mix")
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
