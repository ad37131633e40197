#!/usr/bin/env python
"""ERM vs mixup (alpha 1) on Fashion-MNIST, one run of each per seed, then the table and the curves.

    python scripts/reproduce_fashion_mnist.py              # seeds 1 2 3
    python scripts/reproduce_fashion_mnist.py 1 2 3 4      # a fourth seed: only its two runs are new

Each run is `accelerate launch scripts/train.py recipes/fashion_mnist_cpu.yaml --mixup_alpha <0|1>
--seed <k> --output_dir runs/fashion_mnist-<erm|mixup>-seed<k>` (a process of its own; set LAUNCH to
change the launcher). The data is prepared first if missing (`scripts/prepare_fashion_mnist.py`). Each
finished run is recorded in <runs_dir>/fashion_mnist_grid.json; running the command again skips the runs
already there, and an interrupted run resumes from its last epoch checkpoint. Then `scripts/compare.py`
writes results/fashion_mnist_erm_vs_mixup.md and `scripts/plot_curves.py` results/fashion_mnist_curves.png
from exactly the runs of the seeds asked for. Relative paths are taken from the repository's root.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from hf_mixup.experiments import file_digest, run_grid

ROOT = Path(__file__).resolve().parents[1]
ALPHAS = {"erm": 0.0, "mixup": 1.0}


def default_launch() -> str:
    accelerate = Path(sys.executable).with_name("accelerate")
    return (f"{accelerate if accelerate.exists() else 'accelerate'} launch --num_processes 1 --num_machines 1 "
            f"--mixed_precision no --dynamo_backend no --num_cpu_threads_per_process {os.cpu_count() or 1}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seeds", nargs="*", type=int, default=[1, 2, 3])
    parser.add_argument("--recipe", default="recipes/fashion_mnist_cpu.yaml")
    parser.add_argument("--data", default="data/fashion_mnist", help="the recipe's dataset_name, prepared if missing")
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--output", default="results/fashion_mnist_erm_vs_mixup.md")
    parser.add_argument("--curves", default="results/fashion_mnist_curves.png")
    parser.add_argument("--launch", default=os.environ.get("LAUNCH") or default_launch(),
                        help="the launcher of scripts/train.py (default: accelerate launch on one CPU process)")
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # relative paths (the recipe's dataset_name included) are the repository's

    from hf_mixup.data import prepared_fashion_mnist

    prepared_fashion_mnist(args.data)

    def run_dir(method: str, seed: int) -> str:
        return os.path.join(args.runs_dir, f"fashion_mnist-{method}-seed{seed}")

    def run_cell(method: str, seed: int) -> dict:
        command = [
            *shlex.split(args.launch), str(ROOT / "scripts" / "train.py"), args.recipe, "--dataset_name", args.data,
            "--mixup_alpha", f"{ALPHAS[method]:g}", "--seed", str(seed), "--output_dir", run_dir(method, seed),
            "--disable_tqdm", "true",
        ]
        subprocess.run(command, check=True)
        with open(os.path.join(run_dir(method, seed), "all_results.json")) as f:
            return json.load(f)

    run_grid(
        run_cell, list(ALPHAS), args.seeds, state_file=os.path.join(args.runs_dir, "fashion_mnist_grid.json"),
        config={"recipe": args.recipe, "recipe_sha1": file_digest(args.recipe), "data": args.data},
        still_done=lambda method, seed: os.path.isfile(os.path.join(run_dir(method, seed), "trainer_state.json")),
        desc="Fashion-MNIST runs",
    )
    erm = [run_dir("erm", s) for s in args.seeds]
    mixup = [run_dir("mixup", s) for s in args.seeds]
    scripts = ROOT / "scripts"
    subprocess.run([sys.executable, str(scripts / "compare.py"), "--erm", *erm, "--mixup", *mixup,
                    "--output", args.output], check=True)
    subprocess.run([sys.executable, str(scripts / "plot_curves.py"), "--erm", *erm, "--mixup", *mixup,
                    "--output", args.curves], check=True)
    return {"table": args.output, "curves": args.curves}


if __name__ == "__main__":
    main()
