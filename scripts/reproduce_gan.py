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
extends the finished runs, and a run folder left by other settings is started afresh. Both pages say where
the runs agree with the paper's words; `--render_only` writes OUTPUT.md again from OUTPUT.json.
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

from hf_mixup import paper
from hf_mixup.experiments import describe_machine, render_results, run_grid, write_results
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
    parser.add_argument("--render_only", action="store_true",
                        help="write OUTPUT.md again from OUTPUT.json, running nothing")


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
    labels = figure5_labels(args.mixup_max)
    rows = [(f"{cell.split('/')[0]}: {labels[cell.split('/')[1]]}", run_dir(cell, args.seed)) for cell in cells]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    plot_grid(rows, f"{args.output}.png", snapshots,
              title=f"Figure 5: real (blue) and generated (orange) points, latent dim 2, seed {args.seed}")
    payload = {cell: outcome.results[cell][args.seed] for cell in cells}
    write_results(args.output, None, {"runs": payload, "settings": config, "seed": args.seed, "seconds": outcome.seconds,
                                      "plot": f"{args.output}.png"}, argv=argv, script=__file__, render=render_figure5)
    return payload


def figure5_labels(mixup_max: float) -> dict[str, str]:
    return {"plain": "plain GAN", "mixup": f"mixup GAN (m = {mixup_max:g})"}


def render_figure5(record: dict) -> str:
    """results/gan_figure5.md from what its .json records: modes covered over training, and the paper's Figure 5
    finding checked on the runs."""
    settings, runs = record["settings"], record["runs"]
    snapshots = sorted({s for s in SNAPSHOTS if s <= settings["iterations"]} | {settings["iterations"]})
    labels = figure5_labels(settings["mixup_max"])
    lines = [
        "# Figure 5: plain vs mixup GAN on the toy data",
        "",
        f"`{record['command']}`",
        "",
        f"![Figure 5]({Path(record['plot']).name})",
        "",
        f"Generator MLP and discriminator MLP (3 x 512 ReLU), latent dim 2, Adam, batches of 128 real + 128 generated "
        f"points, 5 discriminator steps per generator iteration, seed {record['seed']}. Modes covered (of 8 for ring, 25 "
        f"for grid) and the share of high-quality samples (within 3 std of a mode) among {settings['eval_samples']} "
        "generated points, at each iteration:",
        "",
        "| data | method | " + " | ".join(f"iteration {s}" for s in snapshots) + " |",
        "|---|---|" + "---|" * len(snapshots),
    ]
    for cell, result in runs.items():
        data, method = cell.split("/")
        by_iteration = {entry["iteration"]: entry for entry in result["snapshots"]}
        shown = [by_iteration.get(s) for s in snapshots]
        lines.append(f"| {data} | {labels[method]} | " + " | ".join(
            f"{e['modes_covered']}/{e['num_modes']}, {100 * e['high_quality']:.0f}% HQ" if e else "-" for e in shown) + " |")
    machines = sorted({result["machine"] for result in runs.values()})
    lines += ["", f"Runs: {record['seconds'] / 60:.0f} min in all on {'; '.join(machines)}.", "",
              f"The paper's Figure 5, another experiment: {paper.FIGURE5['setting']}. It draws the samples, with no "
              f"figures to quote; in its words: \"{paper.FIGURE5['words']}\".", ""]
    ends = {data: tuple(runs[f"{data}/{method}"]["final"]["modes_covered"] for method in ("plain", "mixup"))
            for data in dict.fromkeys(cell.split("/")[0] for cell in runs) if {f"{data}/plain", f"{data}/mixup"} <= set(runs)}
    if ends:
        lines += paper.findings_section(paper.against_words(paper.gan_checks(ends)), "the paper by its words, ours at the last iteration")
    return "\n".join(lines)


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
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    plot_sweep(per_m, per_latent, over_training, args, f"{args.output}.png")
    payload = {"per_m": {d: {f"{m:g}": v for m, v in per_m[d].items()} for d in args.data},
               "per_latent_dim": {d: {str(z): {f"{m:g}": v for m, v in per_latent[d][z].items()} for z in args.latent_dims}
                                  for d in args.data},
               "over_training": {d: {f"{m:g}": {str(i): v for i, v in over_training[d][m].items()} for m in args.mixup_max}
                                 for d in args.data},
               "fell_back": {d: {f"{m:g}": v for m, v in fell_back[d].items()} for d in args.data},
               "runs": {f"{cell}/seed{seed}": final for (cell, seed), final in finals.items()},
               "settings": {**config, "latent_dims": args.latent_dims, "mixup_max": args.mixup_max, "seeds": args.seeds},
               "machines": machines, "iterations_per_second_median": speed, "seconds": outcome.seconds,
               "plot": f"{args.output}.png"}
    write_results(args.output, None, payload, argv=argv, script=__file__, render=render_sweep)
    return payload


def render_sweep(record: dict) -> str:
    """results/gan_sweep.md from what its .json records, with the paper's robustness finding checked on the runs."""
    settings = record["settings"]
    latent_dims, ms, seeds = settings["latent_dims"], settings["mixup_max"], settings["seeds"]
    per_m, per_latent, over_training, fell_back = (record[k] for k in ("per_m", "per_latent_dim", "over_training", "fell_back"))
    data_sets = list(per_m)

    def m_name(m: float) -> str:
        return "0 (plain GAN)" if m == 0 else f"{m:g}"

    lines = [
        "# How steady is a mixup GAN? A sweep over the released code's grid",
        "",
        f"`{record['command']}`",
        "",
        f"![modes covered per m]({Path(record['plot']).name})",
        "",
        f"{len(data_sets) * len(latent_dims) * len(ms) * len(seeds)} runs: data {', '.join(data_sets)} x latent dim "
        f"{', '.join(map(str, latent_dims))} x m {', '.join(f'{m:g}' for m in ms)} (lam ~ Uniform(0, m) "
        f"per example in the discriminator's batches; m = 0 is a plain GAN) x seeds {', '.join(map(str, seeds))}, "
        f"each {settings['iterations']} generator iterations (the paper: 20,000), scored on {settings['eval_samples']} "
        "generated points.",
        "",
        "Per m, over latent dims and seeds: mean modes covered, mean share of high-quality samples, and the share of runs "
        "that cover every mode.",
        "",
        "| m | " + " | ".join(f"{d}: modes covered | {d}: high quality | {d}: runs covering all" for d in data_sets) + " |",
        "|---|" + "---|---|---|" * len(data_sets),
    ]
    for m in ms:
        cells_text = []
        for data in data_sets:
            s = per_m[data][f"{m:g}"]
            cells_text += [f"{s['modes_covered']:.1f} / {s['num_modes']}", f"{100 * s['high_quality']:.1f}%",
                           f"{100 * s['covers_all']:.0f}% of {s['runs']}"]
        lines.append(f"| {m_name(m)} | " + " | ".join(cells_text) + " |")
    lines += ["", "Over training, per m (over latent dims and seeds): mean modes covered at each scored iteration, and "
              "how far runs fell back, the modes covered at a run's best snapshot but not at its end (mean, and the "
              "share of runs that lost any).", ""]
    for data in data_sets:
        shared = list(over_training[data][f"{ms[0]:g}"])
        lines += [f"**{data}**", "", "| m | " + " | ".join(f"iteration {i}" for i in shared) +
                  " | modes lost from best | runs that lost modes |", "|---|" + "---|" * (len(shared) + 2)]
        for m in ms:
            back = fell_back[data][f"{m:g}"]
            lines.append(f"| {m_name(m)} | " + " | ".join(
                f"{over_training[data][f'{m:g}'][i]:.1f}" for i in shared) + f" | {back['modes_lost']:.1f} | "
                f"{100 * back['runs_that_lost_modes']:.0f}% |")
        lines.append("")
    lines += ["Mean modes covered at the end per latent dim (rows) and m (columns):", ""]
    for data in data_sets:
        lines += [f"**{data}**", "", "| latent dim | " + " | ".join(f"m = {m:g}" for m in ms) + " |",
                  "|---|" + "---|" * len(ms)]
        for z in latent_dims:
            lines.append(f"| {z} | " + " | ".join(
                f"{per_latent[data][str(z)][f'{m:g}']['modes_covered']:.1f} "
                f"({100 * per_latent[data][str(z)][f'{m:g}']['high_quality']:.0f}% HQ)" for m in ms) + " |")
        lines.append("")
    lines += [f"Median speed {record['iterations_per_second_median']:.1f} generator iterations/s per run; "
              f"{record['seconds'] / 3600:.2f} h of run time in all (summed over the runs, however many ran at once) on "
              f"{'; '.join(record['machines'])}.", ""]
    if 0.0 in ms and len(ms) > 1:
        ends = {data: {z: {m: per_latent[data][str(z)][f"{m:g}"]["modes_covered"] for m in ms} for z in latent_dims}
                for data in data_sets}
        lines += [f"The paper's GANs, another experiment: {paper.FIGURE5['setting']}; no sweep, but in its words: "
                  "\"The training of mixup GANs seems promisingly robust to hyper-parameter and architectural choices\".", "",
                  *paper.findings_section(paper.against_words(paper.gan_sweep_checks(ends)),
                                          "the paper by its words, ours on the mean over seeds at the end")]
    return "\n".join(lines)


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
    if args.render_only:
        render_results(args.output, render_figure5 if args.command == "figure5" else render_sweep)
        return json.loads(Path(f"{args.output}.json").read_text())
    return figure5(args, argv) if args.command == "figure5" else sweep(args, argv)


if __name__ == "__main__":
    main()
