#!/usr/bin/env python
"""ERM vs mixup on the offline UCI tables with the paper's Section 3.6 protocol (Table 4).

    python scripts/reproduce_uci.py                    # 10 seeds x {ERM, mixup} x 6 tables
    python scripts/reproduce_uci.py --seeds 3 --datasets iris wine

Each run is `scripts/train.py recipes/uci_mlp.yaml --dataset_name <table> --seed <k>` (in-process): an
MLP with two hidden layers of 128 ReLU units, Adam (lr 1e-3), 10 epochs, batches of 16, on a
stratified 80/20 split fixed by --split_seed (the same test rows for every seed, so the spread is
the training's). Writes results/uci_erm_vs_mixup.{md,json}: test error (regression: RMSE) as mean ±
standard deviation over seeds, next to the paper's Table 4 (all six of its sets) and its findings. Each
finished run is recorded in <runs_dir>/grid.json; running the command again skips the runs already there;
`--render_only` writes the .md again from the .json.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from pathlib import Path

from hf_mixup import paper
from hf_mixup.experiments import file_digest, render_results, run_grid, write_results

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "uci_mlp.yaml"

DATASETS = ["iris", "wine", "breast_cancer", "phishing", "abalone", "diabetes"]
# Our tables that are (or stand for) sets of the paper's Table 4 (hf_mixup.paper.TABLE4); its other sets are not
# available offline.
PAPER_SETS = {"iris": "Iris", "phishing": "Phishing", "abalone": "Abalone"}
NOTES = {
    "iris": "same data as the paper (150 rows, 3 classes)",
    "wine": "not in the paper",
    "breast_cancer": "not in the paper (UCI Breast Cancer Wisconsin, diagnostic)",
    "phishing": "UCI *Website Phishing* (1,250 x 9, via river); the paper does not say which UCI phishing "
                "set it used, so its figure may be for another one (e.g. Phishing Websites, 11,055 x 30)",
    "abalone": "KEEL abalone19: binary (19 rings vs the rest, 32 positives in 4,174), not the paper's "
               "multi-class Abalone; error near the 0.8% base rate says little",
    "diabetes": "regression (not in the paper; its Discussion only says mixup for regression is "
                "straightforward): RMSE in the target's units",
}
# What each of the paper's sets is here.
HERE = {"Iris": "`iris` above, the same data", "Phishing": "`phishing` above, perhaps another UCI phishing set",
        "Abalone": "`abalone` above is another task on these shells (KEEL abalone19, binary)"}


def run_one(dataset: str, alpha: float, seed: int, output_root: Path, split_seed: int) -> dict:
    from hf_mixup.cli import train

    out = output_root / f"{dataset}-{'erm' if alpha == 0 else 'mixup'}-seed{seed}"
    metrics = train.main([
        str(RECIPE), "--dataset_name", dataset, "--mixup_alpha", str(alpha),
        "--seed", str(seed), "--split_seed", str(split_seed), "--output_dir", str(out),
        "--report_to", "none", "--disable_tqdm", "true", "--log_level", "error", "--logging_strategy", "no",
    ])
    return metrics


def summarise(values: list[float]) -> str:
    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {spread:.2f}"


def render(record: dict) -> str:
    """results/uci_erm_vs_mixup.md from what its .json records: our table, the paper's Table 4 with all six sets,
    and the paper's findings checked on the sets we share."""
    results = record["results"]
    seeds = len(next(iter(results.values()))["erm"])
    rows = []
    for dataset, runs in results.items():
        erm, mix = runs["erm"], runs["mixup"]
        theirs = paper.TABLE4.get(PAPER_SETS.get(dataset, ""))
        wins = sum(m < e for e, m in zip(erm, mix))
        ties = sum(m == e for e, m in zip(erm, mix))
        rows.append(
            f"| {dataset} | {summarise(erm)} | {summarise(mix)} | {wins}/{ties}/{len(erm) - wins - ties} "
            f"| {f'{theirs[0]:.1f}' if theirs else '–'} | {f'{theirs[1]:.1f}' if theirs else '–'} | {NOTES[dataset]} |"
        )
    theirs = [f"| {name} | {erm:.1f} | {mixup:.1f} | {HERE.get(name, 'not available offline')} |"
              for name, (erm, mixup) in paper.TABLE4.items()]
    lines = [
        f"# ERM vs mixup (alpha {record['alpha']:g}) on the offline UCI tables, {seeds} seeds each",
        "",
        f"`{record['command']}` ({record['seconds'] / 60:.1f} min of runs on this machine). Test error in % (diabetes: "
        "RMSE), mean ± standard deviation over seeds; the same stratified 20% test split (split seed "
        f"{record['split_seed']}) for every seed. mixup wins/ties/losses: per seed, mixup's error against ERM's "
        "with the same seed.",
        "",
        "| table | ERM | mixup | mixup wins/ties/losses | paper ERM | paper mixup | our data vs the paper's |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"The paper's Table 4, another experiment: {paper.TABLE4_SETTING}; test error in %:",
        "",
        "| the paper's set | ERM | mixup | here |",
        "|---|---|---|---|",
        *theirs,
        "",
    ]
    ours = {PAPER_SETS[d]: (statistics.mean(r["erm"]), statistics.mean(r["mixup"])) for d, r in results.items() if d in PAPER_SETS}
    if ours:
        lines += paper.findings_section(
            paper.compare(paper.uci_checks, paper.TABLE4, ours),
            f"its Table 4 and ours on the mean over seeds, on the sets we share: {', '.join(ours)}, our Abalone being another task")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    parser.add_argument("--seeds", type=int, default=10, help="Seeds per table and method (1..N).")
    parser.add_argument("--alpha", type=float, default=1.0, help="mixup alpha (ERM is alpha 0).")
    parser.add_argument("--split_seed", type=int, default=0)
    parser.add_argument("--runs_dir", default="runs/uci")
    parser.add_argument("--output", default="results/uci_erm_vs_mixup")
    parser.add_argument("--render_only", action="store_true",
                        help="write <output>.md again from <output>.json, running nothing")
    args = parser.parse_args(argv)
    if args.render_only:
        render_results(args.output, render)
        return json.loads(Path(f"{args.output}.json").read_text())["results"]
    if args.seeds < 2:
        raise ValueError("--seeds must be at least 2 to report a spread")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("hf_mixup").setLevel(logging.ERROR)

    def run_cell(method: str, seed: int) -> float:
        dataset, kind = method.split("/")
        metrics = run_one(dataset, 0.0 if kind == "erm" else args.alpha, seed, Path(args.runs_dir), args.split_seed)
        return metrics["test_rmse"] if "test_rmse" in metrics else 100.0 * metrics["test_error"]

    # One cell per (seed, table and method); finished cells are kept in <runs_dir>/grid.json and skipped
    # when the command is run again.
    outcome = run_grid(
        run_cell, [f"{d}/{m}" for d in args.datasets for m in ("erm", "mixup")], range(1, args.seeds + 1),
        state_file=str(Path(args.runs_dir) / "grid.json"), desc="UCI runs",
        config={"alpha": args.alpha, "split_seed": args.split_seed, "recipe_sha1": file_digest(str(RECIPE))},
    )
    results: dict[str, dict[str, list[float]]] = {
        d: {m: [outcome.results[f"{d}/{m}"][s] for s in range(1, args.seeds + 1)] for m in ("erm", "mixup")}
        for d in args.datasets
    }
    write_results(args.output, None, {"alpha": args.alpha, "split_seed": args.split_seed, "results": results,
                                      "seconds": outcome.seconds}, argv=argv, script=__file__, render=render)
    return results


if __name__ == "__main__":
    main()
