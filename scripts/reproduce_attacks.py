#!/usr/bin/env python
"""Table 3 of the paper (robustness to adversarial examples) on Fashion-MNIST: FGSM and I-FGSM against
two ERM models and one mixup model trained with the same recipe, for each triple of seeds.

    python scripts/reproduce_attacks.py                       # seeds 1 2 3 4: triples (1, 2, 1) and (3, 4, 3)
    python scripts/reproduce_attacks.py --seeds 1 2 3 4 5 6   # a third triple: only its models are new

The seeds go in pairs (a, b): ERM #1 is the ERM run of seed a, ERM #2 the ERM run of seed b, and the mixup
model the mixup run of seed a. Each model is `scripts/train.py <recipe> --mixup_alpha <0|alpha> --seed <k>
--output_dir runs/<recipe name>-<erm|mixup>-seed<k>`, recorded in runs/<recipe name>_grid.json (default
recipe: recipes/fashion_mnist_10k_cpu.yaml, PreAct ResNet-18 at a quarter width on 10,000 training
images). With --recipe recipes/fashion_mnist_cpu.yaml the runs and their record are those of
scripts/reproduce_fashion_mnist.py (runs/fashion_mnist-*, runs/fashion_mnist_grid.json), so a model
trained by one is reused by the other. Then, per triple, `scripts/attack.py` attacks each model itself (white box) and carries the
examples crafted on ERM #1 to ERM #2 and to mixup (black box), with FGSM and I-FGSM (10 steps) at epsilon
in {1, 2, 4, 8, 16}/255 on the first --max_samples test images; each triple's tables stay in
runs/attack-triple<a>-<b>.{md,json,png}. Every finished model and the attacks of a set of triples are
recorded and skipped when the command is run again (a new set of triples attacks every triple again).

The summary, mean ± std over the triples, goes to results/attack_fashion_mnist.{md,json} (top-1 and top-5
error at epsilon = 4/255, beside the paper's ImageNet table and its findings) and the top-1 error over epsilon to
results/attack_fashion_mnist.png; `--render_only` writes the .md again from the .json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from hf_mixup import paper
from hf_mixup.experiments import describe_machine, file_digest, render_results, run_grid, write_results

ROOT = Path(__file__).resolve().parents[1]
EPSILONS = ["1/255", "2/255", "4/255", "8/255", "16/255"]
ATTACKS = {"fgsm": "FGSM", "ifgsm": "I-FGSM"}
# Our table's columns, keyed as hf_mixup.paper.TABLE3's settings with ERM's role in each.
COLUMNS = (("white box", "erm"), ("white box", "mixup"), ("black box", "erm2"), ("black box", "mixup"))

def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4], help="pairs (ERM #1 and mixup, ERM #2)")
    parser.add_argument("--recipe", default="recipes/fashion_mnist_10k_cpu.yaml")
    parser.add_argument("--alpha", type=float, default=None, help="mixup's alpha (default: the recipe's)")
    parser.add_argument("--data", default="data/fashion_mnist", help="the recipe's dataset, prepared if missing")
    parser.add_argument("--max_samples", type=int, default=1000, help="test images attacked")
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--output", default="results/attack_fashion_mnist")
    parser.add_argument("--launch", default=os.environ.get("LAUNCH") or f"{sys.executable} {ROOT / 'scripts' / 'train.py'}",
                        help="the command that runs scripts/train.py (default: this Python)")
    parser.add_argument("--render_only", action="store_true",
                        help="write <output>.md again from <output>.json, running nothing")
    args = parser.parse_args(argv)
    if args.render_only:
        os.chdir(ROOT)
        render_results(args.output, render)
        return json.loads(Path(f"{args.output}.json").read_text())
    if len(args.seeds) % 2 or len(args.seeds) < 2 or len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds {args.seeds}: give distinct seeds in pairs (ERM #1 / mixup seed, ERM #2 seed)")
    os.chdir(ROOT)
    from hf_mixup.data import prepared_fashion_mnist

    prepared_fashion_mnist(args.data)
    import yaml

    with open(args.recipe) as f:
        alpha = args.alpha if args.alpha is not None else float(yaml.safe_load(f).get("mixup_alpha", 1.0))
    triples = [(args.seeds[i], args.seeds[i + 1]) for i in range(0, len(args.seeds), 2)]
    erm_seeds = [s for pair in triples for s in pair]
    mixup_seeds = [a for a, _ in triples]

    shared = os.path.normpath(args.recipe) == os.path.normpath("recipes/fashion_mnist_cpu.yaml")
    prefix = "fashion_mnist" if shared else Path(args.recipe).stem

    def run_dir(method: str, seed: int) -> str:
        return os.path.join(args.runs_dir, f"{prefix}-{method}-seed{seed}")

    def train(method: str, seed: int) -> dict:
        # A folder left by a run of other settings would be resumed by train.py: start it afresh instead.
        folder, marker = run_dir(method, seed), os.path.join(run_dir(method, seed), "grid_config.json")
        if os.path.isdir(folder):
            recorded = json.load(open(marker)) if os.path.isfile(marker) else None
            if recorded != train_config:
                shutil.rmtree(folder)
        os.makedirs(folder, exist_ok=True)
        with open(marker, "w") as f:
            json.dump(train_config, f)
        command = [*shlex.split(args.launch), args.recipe, "--dataset_name", args.data,
                   "--mixup_alpha", f"{alpha if method == 'mixup' else 0.0:g}", "--seed", str(seed),
                   "--output_dir", run_dir(method, seed), "--disable_tqdm", "true"]
        with open(f"{run_dir(method, seed)}.log", "w") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
        with open(os.path.join(run_dir(method, seed), "all_results.json")) as f:
            return json.load(f)

    os.makedirs(args.runs_dir, exist_ok=True)
    # With the full recipe, the same record and config as scripts/reproduce_fashion_mnist.py: shared runs.
    train_config = {"recipe": args.recipe, "recipe_sha1": file_digest(args.recipe), "data": args.data}
    if alpha != 1.0:
        train_config["alpha"] = alpha
    still_done = lambda method, seed: os.path.isfile(os.path.join(run_dir(method, seed), "trainer_state.json"))  # noqa: E731
    state = os.path.join(args.runs_dir, f"{prefix}_grid.json")
    run_grid(train, ["erm"], erm_seeds, state_file=state, config=train_config, still_done=still_done, desc="ERM models")
    run_grid(train, ["mixup"], mixup_seeds, state_file=state, config=train_config, still_done=still_done, desc="mixup models")

    def attack(_: str, index: int) -> dict:
        a, b = triples[index]
        output = os.path.join(args.runs_dir, f"attack-triple{a}-{b}")
        command = [sys.executable, str(ROOT / "scripts" / "attack.py"),
                   "--model", run_dir("erm", a), "--model", run_dir("erm", b), "--model", run_dir("mixup", a),
                   "--source", run_dir("erm", a), "--dataset_name", args.data, "--max_samples", str(args.max_samples),
                   "--epsilon", "4/255", "--epsilons", *EPSILONS, "--output", output, "--disable_tqdm"]
        with open(f"{output}.log", "w") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
        with open(f"{output}.json") as f:
            return {"triple": [a, b], "results": json.load(f)["results"]}

    attack_config = {**train_config, "alpha": alpha, "max_samples": args.max_samples, "epsilons": EPSILONS, "triples": None}
    outcome = run_grid(attack, ["attack"], list(range(len(triples))), state_file=os.path.join(args.runs_dir, "attack_grid.json"),
                       config={**attack_config, "triples": [list(t) for t in triples]}, desc="attacks")
    per_triple = [outcome.results["attack"][i] for i in range(len(triples))]
    payload = summarise(per_triple, run_dir)
    plot(payload, args.output + ".png")
    payload["plot"] = args.output + ".png"
    payload.update(recipe=args.recipe, max_samples=args.max_samples, triples=[list(t) for t in triples])
    write_results(args.output, None, payload, argv=argv, script=__file__, render=render)
    return payload


def role_errors(per_triple: list[dict], run_dir) -> dict:
    """{(setting, attack, role): {epsilon: [top1 per triple], ...}} with role erm / mixup (white box: ERM #1
    and ERM #2 both count as ERM) or erm2 / mixup (black box from ERM #1); attack "clean" at epsilon 0."""
    table: dict = {}
    for triple in per_triple:
        a, b = triple["triple"]
        roles = {run_dir("erm", a): "erm", run_dir("erm", b): "erm", run_dir("mixup", a): "mixup"}
        for r in triple["results"]:
            role = roles[r["target"]]
            if r["setting"] == "black box":
                role = "erm2" if role == "erm" else role
            epsilon = 0.0 if r["attack"] == "clean" else round(r["epsilon"] * 255)
            cell = table.setdefault((r["setting"], r["attack"], role), {}).setdefault(epsilon, {"top1": [], "top5": []})
            cell["top1"].append(100 * r["top1_error"])
            cell["top5"].append(100 * r["top5_error"])
    return table


def recipe_model(recipe: str) -> str:
    import yaml

    with open(recipe) as f:
        settings = yaml.safe_load(f)
    kwargs = settings.get("model_kwargs")
    return f"`{settings.get('model_name')}`" + (f" with {json.dumps(kwargs)}" if kwargs else "")


def stat(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.1f} ± {sd:.1f}"


def summarise(per_triple: list[dict], run_dir) -> dict:
    """The per-triple errors at epsilon = 4/255 (``epsilon_4``) and the top-1 error over epsilon (``curves``)."""
    table = role_errors(per_triple, run_dir)
    payload: dict = {"epsilon_4": {}, "curves": {}}
    for metric in ("top1", "top5"):
        for attack in ("fgsm", "ifgsm"):
            cells = [table[(setting, attack, role)][4][metric] for setting, role in COLUMNS]
            payload["epsilon_4"][f"{metric}/{attack}"] = dict(zip(
                ["white_erm", "white_mixup", "black_erm2", "black_mixup"], [{"mean": statistics.fmean(c), "values": c} for c in cells]))
    for setting, roles in (("white box", ("erm", "mixup")), ("black box", ("erm2", "mixup"))):
        for attack in ("fgsm", "ifgsm"):
            for role in roles:
                base = table[(setting, "clean", role)][0]["top1"]
                curve = [table[(setting, attack, role)][round(Fraction_255(e))]["top1"] for e in EPSILONS]
                payload["curves"][f"{setting}/{attack}/{role}"] = {
                    "epsilons": [0] + [round(Fraction_255(e)) for e in EPSILONS],
                    "mean": [statistics.fmean(v) for v in [base, *curve]],
                    "std": [statistics.stdev(v) if len(v) > 1 else 0.0 for v in [base, *curve]],
                }
    return payload


def render(record: dict) -> str:
    """results/attack_fashion_mnist.md from what its .json records: our tables, the paper's Table 3 in full in the
    same layout, and the paper's findings checked on both."""
    def stat_of(curve: dict, k: int) -> str:
        return f"{curve['mean'][k]:.1f} ± {curve['std'][k]:.1f}"

    triples = record["triples"]
    described = ", ".join(f"({a}, {b}, {a})" for a, b in triples)
    lines = [
        "# Adversarial examples (Table 3) on Fashion-MNIST",
        "",
        f"`{record['command']}` ({describe_machine(record['machine'])}).",
        "",
        f"Models: `{record['recipe']}` ({recipe_model(record['recipe'])}); per triple of seeds (ERM #1, ERM #2, "
        f"mixup) = {described}. Attacks on the first {record['max_samples']} test images, epsilon in raw [0, 1] pixel "
        "units; I-FGSM: 10 steps of epsilon / 10. White box: each model attacked itself (ERM: both ERM models). Black "
        "box: crafted on ERM #1, evaluated on ERM #2 and on mixup. Error in %, mean ± std over "
        f"{len(triples)} triples (white-box ERM: over {2 * len(triples)} models).",
        "",
        "Top-1 / top-5 error at epsilon = 4/255:",
        "",
        "| attack | white box, ERM | white box, mixup | black box, ERM #2 | black box, mixup |",
        "|---|---|---|---|---|",
    ]
    ours = {}
    for metric in ("top1", "top5"):
        for attack in ("fgsm", "ifgsm"):
            cells = list(record["epsilon_4"][f"{metric}/{attack}"].values())
            for (setting, role), cell in zip(COLUMNS, cells):
                ours.setdefault((setting, metric, attack), {})[role != "mixup"] = cell["mean"]
            lines.append(f"| {ATTACKS[attack]} {metric.replace('top', 'top-')} | " + " | ".join(stat(c["values"]) for c in cells) + " |")
    curves = record["curves"]
    lines += ["", f"Clean top-1 error: ERM {stat_of(curves['white box/fgsm/erm'], 0)}, mixup "
              f"{stat_of(curves['white box/fgsm/mixup'], 0)}.", "",
              "Top-1 error over epsilon (out of 255):", "",
              "| setting | attack | model | clean | " + " | ".join(e.split("/")[0] for e in EPSILONS) + " |",
              "|" + "---|" * (4 + len(EPSILONS))]
    for key, curve in curves.items():
        setting, attack, role = key.split("/")
        name = {"erm": "ERM", "erm2": "ERM #2", "mixup": "mixup"}[role]
        lines.append(f"| {setting} | {ATTACKS[attack]} | {name} | "
                     + " | ".join(stat_of(curve, k) for k in range(len(curve["mean"]))) + " |")
    lines += ["", f"The paper's Table 3, another experiment: {paper.TABLE3_SETTING}; error in %:", "",
              "| attack | white box, ERM | white box, mixup | black box, ERM #2 | black box, mixup |", "|---|---|---|---|---|"]
    for metric in ("top1", "top5"):
        for attack in ("fgsm", "ifgsm"):
            cells = [f"{value}" for setting in ("white box", "black box") for value in paper.TABLE3[(setting, metric, attack)]]
            lines.append(f"| {ATTACKS[attack]} {metric.replace('top', 'top-')} | " + " | ".join(cells) + " |")
    lines.append("")
    ours_table = {key: (errors[True], errors[False]) for key, errors in ours.items()}
    lines += paper.findings_section(paper.compare(paper.adversarial_checks, paper.TABLE3, ours_table),
                                    "its Table 3 and ours at epsilon = 4/255, ours on the mean over triples")
    return "\n".join(lines)


def Fraction_255(text: str) -> float:
    numerator, denominator = text.split("/")
    return float(numerator) * 255 / float(denominator)


def plot(payload: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    styles = {"erm": ("ERM", "tab:blue"), "erm2": ("ERM #2", "tab:blue"), "mixup": ("mixup", "tab:orange")}
    for ax, setting in zip(axes, ("white box", "black box")):
        for key, curve in payload["curves"].items():
            where, attack, role = key.split("/")
            if where != setting:
                continue
            name, colour = styles[role]
            ax.errorbar(curve["epsilons"], curve["mean"], yerr=curve["std"], marker="o", capsize=3, color=colour,
                        linestyle="-" if attack == "ifgsm" else "--", label=f"{name}, {ATTACKS[attack]}")
        ax.set_title(f"{setting}" + (" (crafted on ERM #1)" if setting == "black box" else ""))
        ax.set_xlabel("epsilon (out of 255)")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xticks(payload["curves"][next(iter(payload["curves"]))]["epsilons"])
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[0].set_ylabel("top-1 test error (%)")
    fig.suptitle("Fashion-MNIST: ERM vs mixup under FGSM / I-FGSM (mean ± std over seed triples)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
