"""The paper's own figures, as data, and its findings as checks that run on its tables and on ours.

Zhang, Cisse, Dauphin and Lopez-Paz, "mixup: Beyond Empirical Risk Minimization" (ICLR 2018). The
reproduction scripts render these tables beside their runs, each with the paper's setting named (``SETTING``
of each table), since the paper's runs are larger than ours: the two columns are never the same experiment.

Each finding the paper states in words is a check, a function of a table in the shape of the paper's, that
says per item (a noise level, a weight decay, a data set) whether the finding holds. `compare` runs the same
check on the paper's table and on ours, and `Finding.line` says in one line whether our runs point the same
way. The checks read the tables only, so the lines stay true when a table is re-rendered.

Numbers are quoted as the paper prints them. Where its table and its text disagree, the comment beside the
table says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "CITATION",
    "FAMILIES",
    "FIGURE2",
    "FIGURE3A",
    "FIGURE3A_SETTING",
    "FIGURE4",
    "FIGURE4_MODELS",
    "FIGURE4_SETTING",
    "FIGURE5",
    "TABLE2",
    "TABLE2_SETTING",
    "TABLE3",
    "TABLE3_SETTING",
    "TABLE4",
    "TABLE4_SETTING",
    "TABLE5",
    "TABLE5_SETTING",
    "TABLE5_WEIGHT_DECAYS",
    "ablation_checks",
    "adversarial_checks",
    "against_words",
    "between_examples_checks",
    "compare",
    "corrupted_label_checks",
    "CorruptedLabelsRow",
    "Finding",
    "findings_section",
    "gan_checks",
    "gan_sweep_checks",
    "site_checks",
    "speech_checks",
    "table5_sites",
    "table2_by_family",
    "uci_checks",
]

CITATION = 'Zhang, Cisse, Dauphin and Lopez-Paz, "mixup: Beyond Empirical Risk Minimization", ICLR 2018'

# --------------------------------------------------------------------------------------------- Figure 3a

FIGURE3A_SETTING = (
    "CIFAR-10 and CIFAR-100 (50,000 training images), 200 epochs of SGD with batches of 128 (lr 0.1, divided by "
    "10 at epochs 100 and 150; WideResNet at 60, 120 and 180), weight decay 1e-4, standard crop and flip, "
    "mixup alpha 1; on a Tesla P100"
)
# (dataset, model) -> (ERM, mixup) test error in %, Figure 3a as printed.
FIGURE3A: dict[tuple[str, str], tuple[float, float]] = {
    ("CIFAR-10", "PreAct ResNet-18"): (5.6, 4.2),
    ("CIFAR-10", "WideResNet-28-10"): (3.8, 2.7),
    ("CIFAR-10", "DenseNet-BC-190"): (3.7, 2.7),
    ("CIFAR-100", "PreAct ResNet-18"): (25.6, 21.1),
    ("CIFAR-100", "WideResNet-28-10"): (19.4, 17.5),
    ("CIFAR-100", "DenseNet-BC-190"): (19.0, 16.8),
}

# --------------------------------------------------------------------------------------------- Table 2

TABLE2_SETTING = (
    "CIFAR-10 (50,000 training images), full-width PreAct ResNet-18, 200 epochs of SGD (lr 0.1, divided by 10 "
    "at epochs 100 and 150), the best setting of each method family"
)


@dataclass(frozen=True)
class CorruptedLabelsRow:
    """A row of Table 2: test error (best during training, last) and training error at the last epoch on the
    examples whose label is real and on those whose label was corrupted, in %."""

    noise: float
    family: str  # "erm", "erm_dropout", "mixup", "mixup_dropout"
    method: str
    best: float
    last: float
    real: float
    corrupted: float


# Table 2 as printed. The 20% mixup + dropout row reads p = 0.1, outside the grid p in {0.3, 0.5, 0.7} that the
# paper's text gives for mixup + dropout; it is quoted as printed.
TABLE2: tuple[CorruptedLabelsRow, ...] = (
    CorruptedLabelsRow(0.2, "erm", "ERM", 12.7, 16.6, 0.05, 0.28),
    CorruptedLabelsRow(0.2, "erm_dropout", "ERM + dropout (p = 0.7)", 8.8, 10.4, 5.26, 83.55),
    CorruptedLabelsRow(0.2, "mixup", "mixup (alpha = 8)", 5.9, 6.4, 2.27, 86.32),
    CorruptedLabelsRow(0.2, "mixup_dropout", "mixup + dropout (alpha = 4, p = 0.1)", 6.2, 6.2, 1.92, 85.02),
    CorruptedLabelsRow(0.5, "erm", "ERM", 18.8, 44.6, 0.26, 0.64),
    CorruptedLabelsRow(0.5, "erm_dropout", "ERM + dropout (p = 0.8)", 14.1, 15.5, 12.71, 86.98),
    CorruptedLabelsRow(0.5, "mixup", "mixup (alpha = 32)", 11.3, 12.7, 5.84, 85.71),
    CorruptedLabelsRow(0.5, "mixup_dropout", "mixup + dropout (alpha = 8, p = 0.3)", 10.9, 10.9, 7.56, 87.90),
    CorruptedLabelsRow(0.8, "erm", "ERM", 36.5, 73.9, 0.62, 0.83),
    CorruptedLabelsRow(0.8, "erm_dropout", "ERM + dropout (p = 0.8)", 30.9, 35.1, 29.84, 86.37),
    CorruptedLabelsRow(0.8, "mixup", "mixup (alpha = 32)", 25.3, 30.9, 18.92, 85.44),
    CorruptedLabelsRow(0.8, "mixup_dropout", "mixup + dropout (alpha = 8, p = 0.3)", 24.0, 24.8, 19.70, 87.67),
)
FAMILIES = ("erm", "erm_dropout", "mixup", "mixup_dropout")


def table2_by_family() -> dict[float, dict[str, dict[str, float]]]:
    """Table 2 as ``{noise: {family: {"best", "last", "real", "corrupted"}}}``, the shape `corrupted_label_checks`
    reads."""
    table: dict[float, dict[str, dict[str, float]]] = {}
    for row in TABLE2:
        table.setdefault(row.noise, {})[row.family] = {
            "best": row.best, "last": row.last, "real": row.real, "corrupted": row.corrupted}
    return table


def _noise_label(noise: float) -> str:
    return f"{round(noise * 100)}%"


def corrupted_label_checks(table: Mapping[float, Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, bool]]:
    """Section 3.4's findings on a table shaped as `table2_by_family`, per noise level."""

    def per_noise(test: Callable[[Mapping[str, Mapping[str, float]]], bool]) -> dict[str, bool]:
        return {_noise_label(noise): test(rows) for noise, rows in table.items()}

    def rise(row: Mapping[str, float]) -> float:
        return row["last"] - row["best"]

    return {
        "ERM memorises the corrupted labels (training error on them under 10%)":
            per_noise(lambda r: r["erm"]["corrupted"] < 10),
        "ERM overfits most: its test error rises from best to last by more than any other method's":
            per_noise(lambda r: rise(r["erm"]) > max(rise(r[f]) for f in FAMILIES[1:])),
        "dropout curbs it: ERM + dropout's last test error is below ERM's":
            per_noise(lambda r: r["erm_dropout"]["last"] < r["erm"]["last"]),
        "mixup beats ERM + dropout on both the best and the last test error":
            per_noise(lambda r: all(r["mixup"][k] < r["erm_dropout"][k] for k in ("best", "last"))),
        "mixup fits the real labels better than ERM + dropout (lower training error on them)":
            per_noise(lambda r: r["mixup"]["real"] < r["erm_dropout"]["real"]),
        "mixup resists the corrupted labels (training error on them over 50%)":
            per_noise(lambda r: r["mixup"]["corrupted"] > 50),
        "mixup + dropout is the best of all on the last test error":
            per_noise(lambda r: r["mixup_dropout"]["last"] == min(r[f]["last"] for f in FAMILIES)),
    }


# --------------------------------------------------------------------------------------------- Table 3

TABLE3_SETTING = (
    "ImageNet-2012, three ResNet-101s (ERM #1 crafts the black-box examples; ERM #2 and mixup are attacked), "
    "epsilon = 4 out of 255, I-FGSM in 10 equal steps"
)
# Table 3 as printed: error (%) of ERM and mixup, keyed (setting, metric, attack). In white box, "ERM" is the
# attacked ERM model itself; in black box, ERM #2.
TABLE3: dict[tuple[str, str, str], tuple[float, float]] = {
    ("white box", "top1", "fgsm"): (90.7, 75.2),
    ("white box", "top1", "ifgsm"): (99.9, 99.6),
    ("white box", "top5", "fgsm"): (63.1, 49.1),
    ("white box", "top5", "ifgsm"): (93.4, 95.8),
    ("black box", "top1", "fgsm"): (57.0, 46.0),
    ("black box", "top1", "ifgsm"): (57.3, 40.9),
    ("black box", "top5", "fgsm"): (24.8, 17.4),
    ("black box", "top5", "ifgsm"): (18.1, 11.8),
}


def adversarial_checks(table: Mapping[tuple[str, str, str], tuple[float, float]]) -> dict[str, dict[str, bool]]:
    """Section 3.5's findings on a table shaped as `TABLE3`, per top-1 / top-5."""

    def more_robust(setting: str, attack: str) -> dict[str, bool]:
        return {f"top-{metric[-1]}": table[(setting, metric, attack)][1] < table[(setting, metric, attack)][0]
                for metric in ("top1", "top5")}

    return {
        "mixup is more robust than ERM to white-box FGSM (lower error)": more_robust("white box", "fgsm"),
        "mixup is more robust than ERM to black-box FGSM": more_robust("black box", "fgsm"),
        "mixup is more robust than ERM to black-box I-FGSM": more_robust("black box", "ifgsm"),
        "neither model withstands white-box I-FGSM (top-1 error over 90% for both)":
            {"": min(table[("white box", "top1", "ifgsm")]) > 90},
    }


# --------------------------------------------------------------------------------------------- Table 4

TABLE4_SETTING = (
    "six UCI classification sets, an MLP of two hidden layers of 128 ReLU units, Adam with default settings, "
    "10 epochs of batches of 16; the paper gives no split, scaling or alpha"
)
# Table 4 as printed: test error (%) of ERM and mixup. The text says mixup "improves the average test error on
# four out of the six" sets; the table shows it lower on five and equal on HTRU2.
TABLE4: dict[str, tuple[float, float]] = {
    "Abalone": (74.0, 73.6),
    "Arcene": (57.6, 48.0),
    "Arrhythmia": (56.6, 46.3),
    "HTRU2": (2.0, 2.0),
    "Iris": (21.3, 17.3),
    "Phishing": (16.3, 15.2),
}


def uci_checks(table: Mapping[str, tuple[float, float]]) -> dict[str, dict[str, bool]]:
    """Section 3.6's findings on a table shaped as `TABLE4` (``{set: (ERM, mixup)}``)."""
    lower = sum(mixup < erm for erm, mixup in table.values())
    return {
        "mixup never does worse than ERM (mean test error no higher)":
            {name: mixup <= erm for name, (erm, mixup) in table.items()},
        "mixup lowers the mean test error on most of the sets":
            {"": lower > len(table) / 2},
    }


# --------------------------------------------------------------------------------------------- Table 5

TABLE5_SETTING = (
    "CIFAR-10, full-width PreAct ResNet-18, 200 epochs of SGD (lr 0.1, divided by 10 at epochs 100 and 150), "
    "the median test error of the last 10 epochs"
)
TABLE5_WEIGHT_DECAYS = (1e-4, 5e-4)
# Table 5 as printed, every row: test error (%) at weight decay 1e-4 and 5e-4, keyed by the row names of
# scripts/ablations.py.
TABLE5: dict[str, tuple[float, float]] = {
    "erm": (5.53, 5.18),
    "mixup_ac_rp": (4.24, 4.68),
    "mixup_ac_knn": (4.98, 5.26),
    "layer1": (4.44, 4.51),
    "layer2": (4.56, 4.61),
    "layer3": (5.39, 5.55),
    "layer4": (5.95, 5.43),
    "layer5": (5.39, 5.15),
    "inputs_sc_knn": (5.45, 5.52),
    "inputs_ac_knn": (5.43, 5.48),
    "inputs_sc_rp": (5.23, 5.55),
    "inputs_ac_rp": (5.17, 5.72),
    "smoothing_0.05": (5.25, 5.02),
    "smoothing_0.1": (5.33, 5.17),
    "smoothing_0.2": (5.34, 5.06),
    "inputs_smoothing_0.05": (5.02, 5.40),
    "inputs_smoothing_0.1": (5.08, 5.09),
    "inputs_smoothing_0.2": (4.98, 5.06),
    "inputs_smoothing_0.4": (5.25, 5.39),
    "noise_0.05": (5.53, 5.04),
    "noise_0.1": (6.41, 5.86),
    "noise_0.2": (7.16, 7.24),
}


def ablation_checks(table: Mapping[str, tuple[float, float]]) -> dict[str, dict[str, bool]]:
    """Section 3.8's findings on a table shaped as `TABLE5` (``{row: (error at 1e-4, error at 5e-4)}``)."""

    def gain_from_small(row: str) -> float:  # how much the smaller weight decay helps: regularisation of its own
        return table[row][1] - table[row][0]

    def rows(prefix: str) -> list[str]:
        return [row for row in table if row.startswith(prefix)]

    inputs_only = ["inputs_sc_knn", "inputs_ac_knn", "inputs_sc_rp", "inputs_ac_rp"]
    return {
        "mixup (AC + RP) is the best row at weight decay 1e-4":
            {"": table["mixup_ac_rp"][0] == min(errors[0] for errors in table.values())},
        "mixup beats the runner-up family, mix inputs + label smoothing":
            {f"weight decay {wd:g}": table["mixup_ac_rp"][k] < min(table[r][k] for r in rows("inputs_smoothing_"))
             for k, wd in enumerate(TABLE5_WEIGHT_DECAYS)},
        "ERM prefers the larger weight decay (5e-4)": {"": table["erm"][1] < table["erm"][0]},
        "mixup prefers the smaller weight decay (1e-4)": {"": table["mixup_ac_rp"][0] < table["mixup_ac_rp"][1]},
        "mixing higher layers (4, 5) gains more from the larger weight decay than mixing lower ones (1, 2)":
            {"": gain_from_small("layer4") + gain_from_small("layer5") < gain_from_small("layer1") + gain_from_small("layer2")},
        "among the inputs-only rows, AC + RP regularises most (gains most from the smaller weight decay)":
            {"": max(inputs_only, key=gain_from_small) == "inputs_ac_rp"},
        "label smoothing regularises little: like ERM, it prefers the larger weight decay":
            {f"eps = {row.split('_')[-1]}": table[row][1] < table[row][0] for row in rows("smoothing_")},
        "Gaussian noise regularises little: like ERM, it prefers the larger weight decay":
            {f"sigma = {row.split('_')[-1]}": table[row][1] < table[row][0] for row in rows("noise_")},
        "SMOTE (inputs only, SC + KNN) is no better than ERM at its better weight decay":
            {"": min(table["inputs_sc_knn"]) >= min(table["erm"])},
    }


# --------------------------------------------------------------------------------------------- figures

FIGURE2 = {
    "setting": "CIFAR-10, an ERM and a mixup model of the same architecture trained the same way",
    "words": "The model trained with mixup is more stable in terms of model predictions and gradient norms "
             "in-between training samples",
}


def table5_sites() -> dict:
    """Table 5's mixing sites at weight decay 1e-4 in the shape `site_checks` takes: ERM, then the sites from the
    inputs up (layers 1-5)."""
    sites = [("the inputs", TABLE5["mixup_ac_rp"][0])] + [(f"layer {k}", TABLE5[f"layer{k}"][0]) for k in range(1, 6)]
    return {"erm": TABLE5["erm"][0], "sites": sites}


def site_checks(table: Mapping) -> dict[str, dict[str, bool]]:
    """Table 5's findings on where to mix, on ``{"erm": error, "sites": [(name, error), ...]}`` with the sites from
    the lowest (the inputs) to the deepest."""
    errors = [error for _, error in table["sites"]]
    return {
        "mixing at some site beats ERM": {"": min(errors) < table["erm"]},
        "the lowest site (the inputs) gives the lowest error": {"": errors.index(min(errors)) == 0},
        "the lowest site beats the deepest": {"": errors[0] < errors[-1]},
    }


def between_examples_checks(lambdas: Sequence[float], erm_miss: Sequence[float], mixup_miss: Sequence[float],
                            erm_grad: Sequence[float], mixup_grad: Sequence[float]) -> dict[str, dict[str, bool]]:
    """Figure 2's findings on curves over ``lambdas``: at every lam strictly between 0 and 1. The paper draws
    the curves without printing figures, so its side is its words (`against_words`)."""
    inside = [k for k, lam in enumerate(lambdas) if 0 < lam < 1]
    return {
        "mixup predicts a class other than y_i and y_j less often in between (every lam in (0, 1))":
            {"": all(mixup_miss[k] < erm_miss[k] for k in inside)},
        "mixup has a smaller input-gradient norm in between (every lam in (0, 1))":
            {"": all(mixup_grad[k] < erm_grad[k] for k in inside)},
    }


FIGURE4_SETTING = (
    "Google Speech Commands v0.01 (by its size: 65,000 one-second utterances of 30 words, a few thousand "
    "speakers), normalised 160 x 101 spectrograms mixed before the network, LeNet and VGG-11, 30 epochs of "
    "batches of 100, Adam at 3e-3 divided by 10 every 10 epochs, mixup after 5 ERM epochs"
)
FIGURE4_MODELS = {"lenet": "LeNet", "vgg11": "VGG-11"}
# Figure 4 (a table) as printed: (validation error, test error) in %, keyed (model, alpha); alpha 0 is ERM. The
# text, which calls it "Table 4", says mixup "outperforms ERM on this task, specially when using VGG-11"; the
# figure shows ERM ahead for LeNet at both alphas.
FIGURE4: dict[tuple[str, float], tuple[float, float]] = {
    ("lenet", 0.0): (9.8, 10.3),
    ("lenet", 0.1): (10.1, 10.8),
    ("lenet", 0.2): (10.2, 11.3),
    ("vgg11", 0.0): (5.0, 4.6),
    ("vgg11", 0.1): (4.0, 3.8),
    ("vgg11", 0.2): (3.9, 3.4),
}


def speech_checks(table: Mapping[tuple[str, float], tuple[float, float]]) -> dict[str, dict[str, bool]]:
    """Section 3.3's findings on a table shaped as `FIGURE4` (``{(model, alpha): (validation error, test error)}``,
    alpha 0 being ERM), per model and alpha; the two models are compared only where the table holds both."""
    mixed = [(model, alpha) for model, alpha in table if alpha > 0 and (model, 0.0) in table]

    def beats_erm(split: int) -> dict[str, bool]:
        return {f"{FIGURE4_MODELS.get(model, model)} alpha {alpha:g}":
                table[(model, alpha)][split] < table[(model, 0.0)][split] for model, alpha in mixed}

    def gain(model: str) -> float:  # how much the better alpha lowers ERM's test error
        return table[(model, 0.0)][1] - min(table[(m, alpha)][1] for m, alpha in mixed if m == model)

    both = {model for model, _ in mixed} >= {"lenet", "vgg11"}
    return {
        "mixup has a lower test error than ERM": beats_erm(1),
        "mixup has a lower validation error than ERM": beats_erm(0),
        "mixup helps most with VGG-11, the larger model: its better alpha lowers ERM's test error by more than LeNet's":
            {"": gain("vgg11") > gain("lenet")} if both else {},
    }


FIGURE5 = {
    "setting": "toy data (8 Gaussians on a ring, 25 on a grid), generator and discriminator MLPs of 3 x 512 ReLU "
               "units, 2-D latent noise, Adam, 20,000 generator iterations of batches of 128, 5 discriminator "
               "steps per generator step",
    "words": "Figure 5 illustrates the stabilizing effect of mixup the training of GAN [...] The training of "
             "mixup GANs seems promisingly robust to hyper-parameter and architectural choices",
}


def gan_checks(modes_covered: Mapping[str, tuple[int, int]]) -> dict[str, dict[str, bool]]:
    """Figure 5's finding on ``{data: (plain GAN's modes covered, mixup GAN's)}`` at the last iteration."""
    return {"mixup stabilises GAN training: the mixup GAN ends covering more modes than the plain GAN":
            {data: mixup > plain for data, (plain, mixup) in modes_covered.items()}}


def gan_sweep_checks(per_latent_dim: Mapping[str, Mapping[int, Mapping[float, float]]]) -> dict[str, dict[str, bool]]:
    """Section 3.7's robustness finding on ``{data: {latent dim: {m: mean modes covered at the end}}}`` (m = 0:
    the plain GAN)."""
    return {"mixup GANs are robust to their settings: every m > 0 ends covering more modes than the plain GAN "
            "of the same latent dim":
            {data: all(covered > by_m[0.0] for by_m in dims.values() for m, covered in by_m.items() if m > 0)
             for data, dims in per_latent_dim.items()}}


# --------------------------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Finding:
    """One finding of the paper, with whether it holds at each item (noise level, weight decay, data set; ``""``
    for a finding about the table as a whole) in the paper's figures and in ours."""

    claim: str
    paper: Mapping[str, bool]
    ours: Mapping[str, bool]

    @property
    def items(self) -> list[str]:
        return [item for item in self.paper if item in self.ours]

    @property
    def agrees(self) -> bool:
        return all(self.paper[item] == self.ours[item] for item in self.items)

    def line(self) -> str:
        """``- <claim>: agrees``, ``differs`` or ``agrees at <items>, differs at <items>``; where the paper's own
        table falls short of the finding, where it fails on each side."""
        items = self.items
        if not items:
            return f"- {self.claim}: no item in common to compare"
        differ = [item for item in items if self.paper[item] != self.ours[item]]
        if items == [""]:
            verdict = "agrees" if not differ else "differs"
            sides = {(True, True): "", (False, False): " (it holds in neither)",
                     (True, False): " (it holds in the paper, not in ours)", (False, True): " (it holds in ours, not in the paper)"}
            return f"- {self.claim}: {verdict}{sides[(self.paper[''], self.ours[''])]}"
        agree = [item for item in items if item not in differ]
        verdict = ("agrees" if not differ else "differs" if not agree
                   else f"agrees at {', '.join(agree)}, differs at {', '.join(differ)}")
        notes = []
        if not all(self.paper[item] for item in items):  # else "differs" can only mean ours fails there
            notes = [f"{side}: not at {', '.join(failed)}" for side, table in (("the paper", self.paper), ("ours", self.ours))
                     if (failed := [item for item in items if not table[item]])]
        return f"- {self.claim}: {verdict}" + (f" ({'; '.join(notes)})" if notes else "")


def compare(checks: Callable[..., dict[str, dict[str, bool]]], paper_table, our_table) -> list[Finding]:
    """Run ``checks`` on the paper's table and on ours (same shape): one `Finding` per claim."""
    paper, ours = checks(paper_table), checks(our_table)
    return [Finding(claim, paper[claim], ours[claim]) for claim in paper]


def against_words(ours: dict[str, dict[str, bool]]) -> list[Finding]:
    """For a figure the paper draws without printing its figures: each finding holds in the paper, by its words,
    at every item; ours as the checks found it."""
    return [Finding(claim, dict.fromkeys(items, True), items) for claim, items in ours.items()]


def findings_section(findings: Sequence[Finding], basis: str) -> list[str]:
    """The lines below a table: one per finding, ``agrees`` / ``differs`` computed from the tables; ``basis`` says
    what each side was checked on."""
    return [f"Where our runs agree with the paper's findings ({basis}):", "", *(finding.line() for finding in findings), ""]
