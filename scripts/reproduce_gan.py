#!/usr/bin/env python
"""The paper's GAN experiment (Section 3.7): Figure 5, and a stability sweep that puts numbers on it.

    python scripts/reproduce_gan.py figure5                      # ring and grid, plain GAN vs mixup, 20,000 iterations
    python scripts/reproduce_gan.py sweep --iterations 1000      # data x latent dim x m x seeds

figure5: for each data set (`ring`, `grid`), a plain GAN (m = 0) and a mixup GAN (--mixup_max, 0.2 by
default) with a 2-D latent noise, samples drawn at iterations 10, 100, 1,000, 10,000 and 20,000 (those within
--iterations). Output: results/gan_figure5.png (the grid of samples) and results/gan_figure5.{md,json} (modes
covered and high-quality share at every snapshot).

sweep: every data set x latent dim {2, 5, 10} x m {0, 0.1, 0.2, 0.5, 1} x seed, the released code's grid, each
run --iterations long. Output: results/gan_sweep.{md,json,png}: per m, the final modes covered, the
high-quality share and the fraction of runs that cover all modes; the modes covered over training (Figure 5's
iterations and each quarter of the run) and how far runs fell back from their best snapshot.

Each run is one `scripts/gan.py` process (--jobs at once); each finished run is recorded in
runs/gan_<figure5|sweep>_grid.json and skipped when the command is run again (while its folder is there), an
interrupted run continues from its last checkpoint (every --save_steps iterations), a longer --iterations
extends the finished runs, and a run folder left by other settings is started afresh.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from hf_mixup.experiments import command_line, describe_machine, run_grid, write_results
from hf_mixup.gan.training import SNAPSHOTS  # Figure 5's iterations, the runs' default snapshots

ROOT = Path(__file__).resolve().parents[1]


def sweep_snapshots(iterations: int) -> list[int]:
    """Where a sweep run is scored: Figure 5's iterations within the run, and each quarter of it."""
    quarters = {max(1, round(iterations * q / 4)) for q in range(1, 5)}
    return sorted({s for s in SNAPSHOTS if s <= iterations} | quarters)


MARKER = "reproduce_gan.json"  # in each run folder: what the runner asked of it


def run_gan(launch: str, output_dir: str, settings: dict, save_steps: int, extra: str = "") -> dict:
    """One `scripts/gan.py` run: continued from its last checkpoint when the folder holds the same run cut short
    (or a shorter one, which it extends), started afresh when it holds a run with other settings; its metrics."""
    marker = Path(output_dir) / MARKER
    asked = {"settings": settings, "extra": extra}
    before = json.loads(marker.read_text()) if marker.exists() else None
    same_run = before is not None and before["extra"] == extra and all(
        before["settings"].get(k) == v for k, v in settings.items() if k not in ("iterations", "snapshots")
    ) and before["settings"].get("iterations", 0) <= settings["iterations"]
    command = [*shlex.split(launch), "--output_dir", output_dir, "--disable_tqdm", "true", "--save_steps", str(save_steps),
               *(["--resume_from_checkpoint", "latest"] if same_run else ["--overwrite_output_dir", "true"])]
    for key, value in settings.items():
        command += [f"--{key}", *(map(str, value) if isinstance(value, (list, tuple)) else [str(value)])]
    command += shlex.split(extra)
    os.makedirs(output_dir, exist_ok=True)
    marker.write_text(json.dumps(asked, indent=2) + "\n")
    with open(f"{output_dir}.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    metrics = json.loads((Path(output_dir) / "metrics.json").read_text())
    return {"final": metrics["final"], "snapshots": metrics["snapshots"],
            "iterations_per_second": metrics["iterations_per_second"], "machine": describe_machine()}


def common_arguments(parser: argparse.ArgumentParser, iterations: int) -> None:
    parser.add_argument("--iterations", type=int, default=iterations,
                        help=f"generator iterations per run (default {iterations}; the paper: 20000)")
    parser.add_argument("--data", nargs="+", choices=["ring", "grid"], default=["ring", "grid"], help="toy data sets")
    parser.add_argument("--eval_samples", type=int, default=2500, help="generated points scored at each snapshot")
    parser.add_argument("--save_steps", type=int, default=1000, help="checkpoint every this many iterations")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each a process; give each one thread)")
    parser.add_argument("--runs_dir", default="runs/gan", help="one folder per run in here (its grid state beside it)")
    parser.add_argument("--launch", default=os.environ.get("LAUNCH") or f"{sys.executable} {ROOT / 'scripts' / 'gan.py'}",
                        help="the command that runs scripts/gan.py (default: this Python)")
    parser.add_argument("--extra", default="", help="more scripts/gan.py flags for every run, e.g. '--mixed_precision bf16'")


def figure5(args, argv) -> dict:
    from hf_mixup.gan.plots import plot_grid

    methods = {"plain": 0.0, "mixup": args.mixup_max}
    snapshots = sorted({s for s in SNAPSHOTS if s <= args.iterations} | {args.iterations})
    cells = [f"{data}/{method}" for data in args.data for method in methods]

    def run_dir(cell: str, seed: int) -> str:
        return os.path.join(args.runs_dir, f"figure5-{cell.replace('/', '-')}-seed{seed}")

    def run_cell(cell: str, seed: int) -> dict:
        data, method = cell.split("/")
        settings = {"data": data, "mixup_max": methods[method], "latent_dim": 2, "seed": seed,
                    "iterations": args.iterations, "snapshots": snapshots, "eval_samples": args.eval_samples}
        return run_gan(args.launch, run_dir(cell, seed), settings, args.save_steps, args.extra)

    config = {"iterations": args.iterations, "mixup_max": args.mixup_max, "eval_samples": args.eval_samples, "extra": args.extra}
    outcome = run_grid(run_cell, cells, [args.seed], state_file=os.path.join(os.path.dirname(args.runs_dir) or ".",
                       "gan_figure5_grid.json"), config=config, desc="Figure 5", jobs=args.jobs,
                       still_done=lambda cell, seed: (Path(run_dir(cell, seed)) / "metrics.json").exists())
    labels = {"plain": "plain GAN", "mixup": f"mixup GAN (m = {args.mixup_max:g})"}
    rows = [(f"{cell.split('/')[0]}: {labels[cell.split('/')[1]]}", run_dir(cell, args.seed)) for cell in cells]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    plot_grid(rows, f"{args.output}.png", snapshots,
              title=f"Figure 5: real (blue) and generated (orange) points, latent dim 2, seed {args.seed}")
    lines = [
        "# Figure 5: plain vs mixup GAN on the toy data",
        "",
        f"`{command_line(argv, __file__)}`",
        "",
        f"![Figure 5]({Path(args.output).name}.png)",
        "",
        f"Generator MLP and discriminator MLP (3 x 512 ReLU), latent dim 2, Adam, batches of 128 real + 128 generated "
        f"points, 5 discriminator steps per generator iteration, seed {args.seed}. Modes covered (of 8 for ring, 25 "
        f"for grid) and the share of high-quality samples (within 3 std of a mode) among {args.eval_samples} "
        "generated points, at each iteration:",
        "",
        "| data | method | " + " | ".join(f"iteration {s}" for s in snapshots) + " |",
        "|---|---|" + "---|" * len(snapshots),
    ]
    payload = {}
    for cell in cells:
        data, method = cell.split("/")
        result = outcome.results[cell][args.seed]
        by_iteration = {entry["iteration"]: entry for entry in result["snapshots"]}
        shown = [by_iteration.get(s) for s in snapshots]
        lines.append(f"| {data} | {labels[method]} | " + " | ".join(
            f"{e['modes_covered']}/{e['num_modes']}, {100 * e['high_quality']:.0f}% HQ" if e else "-" for e in shown) + " |")
        payload[cell] = result
    machines = sorted({outcome.results[c][args.seed]["machine"] for c in cells})
    lines += ["", f"Runs: {outcome.seconds / 60:.0f} min in all on {'; '.join(machines)}.", ""]
    write_results(args.output, "\n".join(lines), {"runs": payload, "settings": config}, argv=argv, script=__file__)
    return payload


def sweep(args, argv) -> dict:
    cells = [f"{data}/z{latent}/m{m:g}" for data in args.data for latent in args.latent_dims for m in args.mixup_max]
    snapshots = sweep_snapshots(args.iterations)

    def run_dir(cell: str, seed: int) -> str:
        return os.path.join(args.runs_dir, f"sweep-{cell.replace('/', '-')}-seed{seed}")

    def run_cell(cell: str, seed: int) -> dict:
        data, latent, m = cell.split("/")
        settings = {"data": data, "latent_dim": int(latent[1:]), "mixup_max": float(m[1:]), "seed": seed,
                    "iterations": args.iterations, "snapshots": snapshots, "eval_samples": args.eval_samples}
        return run_gan(args.launch, run_dir(cell, seed), settings, args.save_steps, args.extra)

    config = {"iterations": args.iterations, "snapshots": snapshots, "eval_samples": args.eval_samples, "extra": args.extra}
    outcome = run_grid(run_cell, cells, args.seeds, state_file=os.path.join(os.path.dirname(args.runs_dir) or ".",
                       "gan_sweep_grid.json"), config=config, desc="GAN sweep", jobs=args.jobs,
                       still_done=lambda cell, seed: (Path(run_dir(cell, seed)) / "metrics.json").exists())
    finals = {(cell, seed): outcome.results[cell][seed]["final"] for cell in cells for seed in args.seeds}
    histories = {(cell, seed): {e["iteration"]: e for e in outcome.results[cell][seed]["snapshots"]}
                 for cell in cells for seed in args.seeds}
    # the iterations every run was scored at (a run extended from a shorter sweep lacks some of the new ones)
    shared = sorted(set.intersection(*(set(h) for h in histories.values())))

    def summary(selected: list[dict]) -> dict:
        return {
            "modes_covered": statistics.fmean(e["modes_covered"] for e in selected),
            "num_modes": selected[0]["num_modes"],
            "high_quality": statistics.fmean(e["high_quality"] for e in selected),
            "covers_all": statistics.fmean(1.0 if e["covers_all"] else 0.0 for e in selected),
            "runs": len(selected),
        }

    def runs_of(data: str, m: float) -> list[tuple[str, int]]:
        return [(f"{data}/z{z}/m{m:g}", s) for z in args.latent_dims for s in args.seeds]

    def lost(key: tuple[str, int]) -> int:
        """Modes covered at the run's best snapshot but no longer at its end: how far it fell back."""
        return max(e["modes_covered"] for e in histories[key].values()) - finals[key]["modes_covered"]

    over_training = {data: {m: {i: statistics.fmean(histories[key][i]["modes_covered"] for key in runs_of(data, m))
                                for i in shared} for m in args.mixup_max} for data in args.data}
    fell_back = {data: {m: {"modes_lost": statistics.fmean(lost(key) for key in runs_of(data, m)),
                            "runs_that_lost_modes": statistics.fmean(1.0 if lost(key) > 0 else 0.0 for key in runs_of(data, m))}
                        for m in args.mixup_max} for data in args.data}

    per_m = {data: {m: summary([finals[key] for key in runs_of(data, m)]) for m in args.mixup_max} for data in args.data}
    per_latent = {data: {z: {m: summary([finals[f"{data}/z{z}/m{m:g}", s] for s in args.seeds]) for m in args.mixup_max}
                         for z in args.latent_dims} for data in args.data}
    machines = sorted({outcome.results[c][s]["machine"] for c in cells for s in args.seeds})
    speed = statistics.median(outcome.results[c][s]["iterations_per_second"] for c in cells for s in args.seeds)
    lines = [
        "# How steady is a mixup GAN? A sweep over the released code's grid",
        "",
        f"`{command_line(argv, __file__)}`",
        "",
        f"![modes covered per m]({Path(args.output).name}.png)",
        "",
        f"{len(cells) * len(args.seeds)} runs: data {', '.join(args.data)} x latent dim "
        f"{', '.join(map(str, args.latent_dims))} x m {', '.join(f'{m:g}' for m in args.mixup_max)} (lam ~ Uniform(0, m) "
        f"per example in the discriminator's batches; m = 0 is a plain GAN) x seeds {', '.join(map(str, args.seeds))}, "
        f"each {args.iterations} generator iterations (the paper: 20,000), scored on {args.eval_samples} generated points.",
        "",
        "Per m, over latent dims and seeds: mean modes covered, mean share of high-quality samples, and the share of runs "
        "that cover every mode.",
        "",
        "| m | " + " | ".join(f"{d}: modes covered | {d}: high quality | {d}: runs covering all" for d in args.data) + " |",
        "|---|" + "---|---|---|" * len(args.data),
    ]
    for m in args.mixup_max:
        cells_text = []
        for data in args.data:
            s = per_m[data][m]
            cells_text += [f"{s['modes_covered']:.1f} / {s['num_modes']}", f"{100 * s['high_quality']:.1f}%",
                           f"{100 * s['covers_all']:.0f}% of {s['runs']}"]
        lines.append(f"| {'0 (plain GAN)' if m == 0 else f'{m:g}'} | " + " | ".join(cells_text) + " |")
    lines += ["", "Over training, per m (over latent dims and seeds): mean modes covered at each scored iteration, and "
              "how far runs fell back, the modes covered at a run's best snapshot but not at its end (mean, and the "
              "share of runs that lost any).", ""]
    for data in args.data:
        lines += [f"**{data}**", "", "| m | " + " | ".join(f"iteration {i}" for i in shared) +
                  " | modes lost from best | runs that lost modes |", "|---|" + "---|" * (len(shared) + 2)]
        for m in args.mixup_max:
            lines.append(f"| {'0 (plain GAN)' if m == 0 else f'{m:g}'} | " + " | ".join(
                f"{over_training[data][m][i]:.1f}" for i in shared) + f" | {fell_back[data][m]['modes_lost']:.1f} | "
                f"{100 * fell_back[data][m]['runs_that_lost_modes']:.0f}% |")
        lines.append("")
    lines += ["Mean modes covered at the end per latent dim (rows) and m (columns):", ""]
    for data in args.data:
        lines += [f"**{data}**", "", "| latent dim | " + " | ".join(f"m = {m:g}" for m in args.mixup_max) + " |",
                  "|---|" + "---|" * len(args.mixup_max)]
        for z in args.latent_dims:
            lines.append(f"| {z} | " + " | ".join(
                f"{per_latent[data][z][m]['modes_covered']:.1f} ({100 * per_latent[data][z][m]['high_quality']:.0f}% HQ)"
                for m in args.mixup_max) + " |")
        lines.append("")
    lines += [f"Median speed {speed:.1f} generator iterations/s per run; {outcome.seconds / 3600:.2f} h of run time in all "
              f"(summed over the runs, however many ran at once) on {'; '.join(machines)}.", ""]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    plot_sweep(per_m, per_latent, over_training, args, f"{args.output}.png")
    payload = {"per_m": {d: {f"{m:g}": v for m, v in per_m[d].items()} for d in args.data},
               "per_latent_dim": {d: {str(z): {f"{m:g}": v for m, v in per_latent[d][z].items()} for z in args.latent_dims}
                                  for d in args.data},
               "over_training": {d: {f"{m:g}": {str(i): v for i, v in over_training[d][m].items()} for m in args.mixup_max}
                                 for d in args.data},
               "fell_back": {d: {f"{m:g}": v for m, v in fell_back[d].items()} for d in args.data},
               "runs": {f"{cell}/seed{seed}": final for (cell, seed), final in finals.items()},
               "settings": {**config, "latent_dims": args.latent_dims, "mixup_max": args.mixup_max, "seeds": args.seeds}}
    write_results(args.output, "\n".join(lines), payload, argv=argv, script=__file__)
    return payload


def plot_sweep(per_m: dict, per_latent: dict, over_training: dict, args, output: str) -> str:
    """Top row: final modes covered against m, one line per latent dim; bottom row: mean modes covered over
    training, one line per m."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(args.data), figsize=(4.8 * len(args.data), 6.8), squeeze=False)
    positions = range(len(args.mixup_max))
    for column, data in enumerate(args.data):
        modes = per_m[data][args.mixup_max[0]]["num_modes"]
        axis = axes[0][column]
        for z in args.latent_dims:
            axis.plot(positions, [per_latent[data][z][m]["modes_covered"] for m in args.mixup_max], "o-", label=f"latent dim {z}")
        axis.plot(positions, [per_m[data][m]["modes_covered"] for m in args.mixup_max], "k--", lw=2, label="mean")
        axis.axhline(modes, color="grey", lw=0.8)
        axis.set_xticks(list(positions), [("0\n(plain)" if m == 0 else f"{m:g}") for m in args.mixup_max])
        axis.set_xlabel("m (lam ~ Uniform(0, m))")
        axis.set_ylabel("modes covered at the end")
        axis.set_title(f"{data}, {args.iterations} iterations")
        axis.set_ylim(0, modes + 1)
        axis = axes[1][column]
        for m in args.mixup_max:
            curve = over_training[data][m]
            axis.plot(list(curve), list(curve.values()), "o-", label="plain GAN" if m == 0 else f"m = {m:g}")
        axis.axhline(modes, color="grey", lw=0.8)
        axis.set_xscale("log")
        axis.set_xlabel("generator iteration")
        axis.set_ylabel("modes covered (mean of runs)")
        axis.set_ylim(0, modes + 1)
    axes[0][0].legend(fontsize=8)
    axes[1][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    fig = commands.add_parser("figure5", help="Figure 5: samples of a plain and a mixup GAN over iterations")
    common_arguments(fig, 20000)
    fig.add_argument("--mixup_max", type=float, default=0.2, help="m of the mixup GAN")
    fig.add_argument("--seed", type=int, default=1, help="seed of both runs per data set")
    fig.add_argument("--output", default="results/gan_figure5", help="writes OUTPUT.png, OUTPUT.md and OUTPUT.json")
    swp = commands.add_parser("sweep", help="modes covered over data x latent dim x m x seeds")
    common_arguments(swp, 1000)
    swp.add_argument("--latent_dims", type=int, nargs="+", default=[2, 5, 10], help="latent noise sizes")
    swp.add_argument("--mixup_max", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.5, 1.0],
                     help="values of m (lam ~ Uniform(0, m)); 0 is a plain GAN")
    swp.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds of every cell")
    swp.add_argument("--output", default="results/gan_sweep", help="writes OUTPUT.png, OUTPUT.md and OUTPUT.json")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error(f"--iterations {args.iterations}: give at least 1")
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give at least 1")
    os.chdir(ROOT)
    return figure5(args, argv) if args.command == "figure5" else sweep(args, argv)


if __name__ == "__main__":
    main()
