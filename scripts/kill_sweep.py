#!/usr/bin/env python
"""Kill a real `hf-mixup train` with SIGKILL at 20 moments of its run, run the same command again, and check
that it finishes with weights bit-identical to an uninterrupted run.

    python scripts/kill_sweep.py                 # writes results/kill_sweep.{json,md}

The run: the wine table, 6 steps, a checkpoint every 2 steps (3 checkpoints, at most 2 kept, so old ones are
rotated out). The moments are counted by `scripts/killpoint/sitecustomize.py` in an uninterrupted run: the
entry and exit of every training step, of every write of a checkpoint (weights, optimizer and scheduler,
RNG states, trainer state, mixing state, run settings, the rename into place, the rotation) and of every
write of the final outputs. 20 of them, evenly spaced from the first to the last, are the kill moments.

For each: a fresh output folder, the command killed at that moment (exit status -9), then the same command
again (at most twice more) until it exits 0. A kill counts as survived when the command then finishes, leaves
no hidden partial folder, marks the run finished, and its final `model.safetensors` equals the uninterrupted
run's tensor for tensor. Each finished kill is recorded in the state file and skipped on a restart.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KILLPOINT = ROOT / "scripts" / "killpoint"
COMMAND = ["train", "--dataset_name", "wine", "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "2",
           "--save_total_limit", "2", "--eval_strategy", "no", "--report_to", "none", "--disable_tqdm", "true"]


def hf_mixup_train(out: Path, kill_at: int | None = None, trace: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(KILLPOINT), OMP_NUM_THREADS="1")
    for name in ("HF_MIXUP_KILL_AT", "HF_MIXUP_KILL_TRACE"):
        env.pop(name, None)
    if kill_at:
        env["HF_MIXUP_KILL_AT"] = str(kill_at)
    if trace:
        env["HF_MIXUP_KILL_TRACE"] = str(trace)
    binary = Path(sys.executable).parent / "hf-mixup"
    return subprocess.run([str(binary), *COMMAND, "--output_dir", str(out)], env=env, capture_output=True, text=True,
                          timeout=900)


def same_weights(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    left, right = load_file(str(a)), load_file(str(b))
    return left.keys() == right.keys() and all(bool((left[k] == right[k]).all()) for k in left)


def kill_moments(count: int, total: int) -> list[int]:
    """``count`` moments evenly spaced over 1..total, first and last included."""
    if total < count:
        return list(range(1, total + 1))
    return sorted({round(1 + i * (total - 1) / (count - 1)) for i in range(count)})


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="how many kill moments")
    parser.add_argument("--work_dir", default=None, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--output", default="results/kill_sweep", help="results/kill_sweep.{json,md}")
    args = parser.parse_args(argv)
    from hf_mixup.experiments import command_line, run_grid
    from hf_mixup.runs import read_run_settings

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="kill_sweep_"))
    work.mkdir(parents=True, exist_ok=True)
    reference, trace = work / "reference", work / "reference_moments.txt"
    if not (reference / "model.safetensors").is_file() or not trace.is_file():
        trace.unlink(missing_ok=True)
        done = hf_mixup_train(reference, trace=trace)
        if done.returncode != 0:
            raise SystemExit(f"the uninterrupted run failed:\n{done.stderr[-3000:]}")
    names = dict(line.split(" ", 1) for line in trace.read_text().splitlines())
    moments = kill_moments(args.kills, len(names))

    def run_cell(method: str, seed: int) -> dict:
        moment = int(method.split("@")[1])
        out = work / f"killed_at_{moment}"
        if out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        killed = hf_mixup_train(out, kill_at=moment)
        reruns = []
        while len(reruns) < 2:
            again = hf_mixup_train(out)
            reruns.append(again.returncode)
            if again.returncode == 0:
                break
        leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith(".")) if out.exists() else []
        record = read_run_settings(str(out)) if out.exists() else None
        identical = (out / "model.safetensors").is_file() and same_weights(reference / "model.safetensors",
                                                                           out / "model.safetensors")
        return {
            "moment": moment, "name": names[str(moment)], "killed": killed.returncode == -signal.SIGKILL,
            "reruns": reruns, "finished": bool(record and record.get("finished")), "leftovers": leftovers,
            "bit_identical": identical,
            "survived": killed.returncode == -signal.SIGKILL and reruns[-1] == 0 and not leftovers and identical,
        }

    state_file = f"{args.output}.json"
    config = {"command": COMMAND, "moments": len(names), "kills": args.kills}
    outcome = run_grid(run_cell, [f"kill@{m}" for m in moments], [1], state_file=state_file, config=config, desc="kills")
    with open(state_file) as f:
        cells = [entry["result"] for entry in json.load(f)["cells"].values() if entry["config"] == config]
    cells.sort(key=lambda cell: cell["moment"])
    survived = sum(cell["survived"] for cell in cells)
    identical = sum(cell["bit_identical"] for cell in cells)
    lines = [
        "# Kill sweep: `hf-mixup train` killed with SIGKILL at 20 moments",
        "",
        f"Command: `{command_line()}` ({len(names)} moments in an uninterrupted run of "
        f"`hf-mixup {' '.join(COMMAND)}`).",
        "",
        f"**{survived} of {len(cells)} kills survived; {identical} of {len(cells)} runs bit-identical** to the "
        "uninterrupted run after the same command was run again.",
        "",
        "| moment | killed at | killed | reruns (exit) | finished | leftovers | bit-identical |",
        "|---:|---|---|---|---|---|---|",
    ]
    for cell in cells:
        lines.append(
            f"| {cell['moment']} | {cell['name']} | {'yes' if cell['killed'] else 'no'} | "
            f"{', '.join(str(r) for r in cell['reruns'])} | {'yes' if cell['finished'] else 'no'} | "
            f"{', '.join(cell['leftovers']) or 'none'} | {'yes' if cell['bit_identical'] else 'no'} |"
        )
    Path(f"{args.output}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return {"survived": survived, "bit_identical": identical, "kills": len(cells), "outcome": str(outcome)}


if __name__ == "__main__":
    main()
