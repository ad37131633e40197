"""hf_mixup.analysis (the paper's Figure 2: miss rate and input-gradient norm in between training pairs),
held against hand computations, and scripts/analyze.py and scripts/toy_decision.py (Figure 1b) as users
run them."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, load_digits_arrays, tiny_preact
from torch import nn

from hf_mixup.analysis import DEFAULT_LAMBDAS, between_examples, draw_pairs

REFERENCE = ROOT / "model_cards" / "reference"


def logits_of(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    return output.logits if hasattr(output, "logits") else output[0]


def by_hand(model, inputs, labels, first, second, lam):
    """(miss rate, mean gradient norm) at ``lam``, one pair at a time with torch.autograd."""
    misses, norms = 0, []
    for i, j in zip(first, second):
        x = (lam * inputs[i] + (1 - lam) * inputs[j]).unsqueeze(0).requires_grad_(True)
        logits = logits_of(model(x))
        y_i, y_j = labels[i:i + 1], labels[j:j + 1]
        loss = lam * F.cross_entropy(logits, y_i) + (1 - lam) * F.cross_entropy(logits, y_j)
        (gradient,) = torch.autograd.grad(loss, x)
        misses += int(logits.argmax(-1).item() not in (int(y_i), int(y_j)))
        norms.append(float(gradient.double().norm()))
    return misses / len(first), sum(norms) / len(norms)


@pytest.fixture(scope="module")
def digits():
    """300 real digits [300, 3, 8, 8] in [-1, 1] and their labels."""
    pixels, labels = load_digits_arrays()
    return pixels[:300], labels[:300]


def linear_classifier(in_features: int, classes: int, seed: int = 0, dtype=torch.float32) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, classes)).to(dtype)


# --------------------------------------------------------------------------------------------- the curves


def test_miss_rate_at_the_ends_counts_the_errors_on_the_pairs_ends(digits):
    pixels, labels = digits
    model = linear_classifier(3 * 8 * 8, 10)
    result = between_examples(model, pixels, labels, lambdas=[0.0, 0.5, 1.0], num_pairs=400, seed=3, batch_size=64)
    first, second = torch.tensor(result.first), torch.tensor(result.second)
    with torch.no_grad():
        predicted = model(pixels).argmax(-1)
    y_i, y_j = labels[first], labels[second]

    def outside(prediction):
        return int(((prediction != y_i) & (prediction != y_j)).sum()) / len(first)

    at_i, at_j = outside(predicted[first]), outside(predicted[second])
    assert at_i != at_j  # the two ends tell lam's direction apart
    assert result.miss_rate[0] == at_j  # lam = 0: x = x_j
    assert result.miss_rate[2] == at_i  # lam = 1: x = x_i
    assert result.miss_rate[1] == pytest.approx(by_hand(model, pixels, labels, first, second, 0.5)[0], abs=0)
    assert result.lambdas == [0.0, 0.5, 1.0] and result.num_pairs == 400


def test_gradient_norm_is_that_of_the_mixed_target_loss():
    torch.manual_seed(1)
    model = nn.Linear(4, 3).double()
    inputs = torch.randn(2, 4, dtype=torch.float64)
    labels = torch.tensor([2, 0])
    lam = 0.3
    result = between_examples(model, inputs, labels, lambdas=[lam], num_pairs=1, seed=0)
    (i,), (j,) = result.first, result.second
    assert {i, j} == {0, 1}
    x = (lam * inputs[i] + (1 - lam) * inputs[j]).requires_grad_(True)
    logits = model(x)
    loss = lam * F.cross_entropy(logits, labels[i]) + (1 - lam) * F.cross_entropy(logits, labels[j])
    (gradient,) = torch.autograd.grad(loss, x)
    assert result.grad_norm[0] == pytest.approx(float(gradient.norm()), rel=1e-12)
    # For a linear model: W^T (softmax(z) - (lam e_i + (1 - lam) e_j)).
    target = lam * F.one_hot(labels[i], 3).double() + (1 - lam) * F.one_hot(labels[j], 3).double()
    closed_form = model.weight.detach().T @ (torch.softmax(logits.detach(), -1) - target)
    assert result.grad_norm[0] == pytest.approx(float(closed_form.norm()), rel=1e-12)
    # Not the loss of one end only.
    (one_end,) = torch.autograd.grad(F.cross_entropy(model(x), labels[i]), x)
    assert float(one_end.norm()) != pytest.approx(result.grad_norm[0], rel=1e-3)


def test_curves_are_the_mean_over_pairs_whatever_the_batch(digits):
    pixels, labels = digits
    model = linear_classifier(3 * 8 * 8, 10, seed=2)
    lambdas = [0.0, 0.25, 0.7, 1.0]
    whole = between_examples(model, pixels, labels, lambdas=lambdas, num_pairs=50, seed=5, batch_size=50)
    batched = between_examples(model, pixels, labels, lambdas=lambdas, num_pairs=50, seed=5, batch_size=7)
    assert batched.miss_rate == whole.miss_rate
    assert batched.grad_norm == pytest.approx(whole.grad_norm, rel=1e-5)
    for k, lam in enumerate(lambdas):
        miss, norm = by_hand(model, pixels, labels, whole.first, whole.second, lam)
        assert whole.miss_rate[k] == miss
        assert whole.grad_norm[k] == pytest.approx(norm, rel=1e-5)
    assert between_examples(model, pixels, labels, num_pairs=3).lambdas == list(DEFAULT_LAMBDAS)


def test_the_default_lam_grid_is_zero_to_one_in_tenths(digits):
    """Figure 2's grid (scripts/analyze.py's --lambdas), as a literal: the default of between_examples."""
    pixels, labels = digits
    grid = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert list(DEFAULT_LAMBDAS) == pytest.approx(grid, abs=1e-12) and len(DEFAULT_LAMBDAS) == 11
    result = between_examples(linear_classifier(3 * 8 * 8, 10), pixels, labels, num_pairs=3)
    assert result.lambdas == pytest.approx(grid, abs=1e-12) and len(result.lambdas) == 11
    assert len(result.miss_rate) == len(result.grad_norm) == 11


# --------------------------------------------------------------------------------------------- pairs


def test_pairs_join_different_classes_and_follow_the_seed():
    labels = torch.tensor([0, 0, 1, 2])
    first, second = draw_pairs(labels, 2000, seed=7)
    assert bool((labels[first] != labels[second]).all())
    every = {(i, j) for i in range(4) for j in range(4) if labels[i] != labels[j]}
    assert set(zip(first.tolist(), second.tolist())) == every  # each pair of different classes can be drawn
    again = draw_pairs(labels, 2000, seed=7)
    assert torch.equal(again[0], first) and torch.equal(again[1], second)
    other = draw_pairs(labels, 2000, seed=8)
    assert not torch.equal(other[0], first)


def test_between_examples_draws_its_pairs_with_the_seed(digits):
    pixels, labels = digits
    model = linear_classifier(3 * 8 * 8, 10)
    a = between_examples(model, pixels, labels, lambdas=[0.5], num_pairs=64, seed=11)
    b = between_examples(model, pixels, labels, lambdas=[0.5], num_pairs=64, seed=11)
    first, second = draw_pairs(labels, 64, seed=11)
    assert a.first == b.first == first.tolist() and a.second == b.second == second.tolist()
    assert a == b
    assert all(labels[i] != labels[j] for i, j in zip(a.first, a.second))
    given = between_examples(model, pixels, labels, lambdas=[0.5], num_pairs=None, pairs=(first, second))
    assert given == a


# --------------------------------------------------------------------------------------------- the model


def test_the_models_modes_and_gradients_are_left_as_they_were(digits):
    pixels, labels = digits
    pixels, labels = pixels[:40], labels[:40]
    model = tiny_preact()  # batch norm: in train mode a pair's result would depend on its batch
    F.cross_entropy(model(pixels[:8]).logits, labels[:8]).backward()
    model.train()
    parameters = list(model.parameters())
    parameters[0].requires_grad_(False)
    some_module = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    some_module.eval()
    modes = {name: m.training for name, m in model.named_modules()}
    grads = [(p.grad, None if p.grad is None else p.grad.clone(), p.requires_grad) for p in parameters]
    state = {k: v.clone() for k, v in model.state_dict().items()}

    big = between_examples(model, pixels, labels, lambdas=[0.0, 0.5], num_pairs=24, seed=0, batch_size=24)
    small = between_examples(model, pixels, labels, lambdas=[0.0, 0.5], num_pairs=24, seed=0, batch_size=5)

    assert {name: m.training for name, m in model.named_modules()} == modes
    for p, (grad, value, requires_grad) in zip(parameters, grads):
        assert p.requires_grad == requires_grad and p.grad is grad
        assert (value is None and p.grad is None) or torch.equal(p.grad, value)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # running stats untouched
    assert small.miss_rate == big.miss_rate
    assert small.grad_norm == pytest.approx(big.grad_norm, rel=1e-4)
    model.eval()
    for k, lam in enumerate(big.lambdas):
        miss, norm = by_hand(model, pixels, labels, big.first, big.second, lam)
        assert big.miss_rate[k] == miss and big.grad_norm[k] == pytest.approx(norm, rel=1e-4)
    model.train()
    with torch.no_grad():
        assert between_examples(model, pixels, labels, lambdas=[0.0, 0.5], num_pairs=24, seed=0) == big
    with torch.inference_mode():
        frozen = pixels.clone()
    assert between_examples(model, frozen, labels, lambdas=[0.0, 0.5], num_pairs=24, seed=0) == big


class TupleOutput(nn.Module):
    """A plain module returning ``(logits, features)``."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 4)

    def forward(self, x):
        return self.linear(x), x


def test_tabular_mlp_speech_cnn_and_tuple_outputs():
    from hf_mixup.models import (
        SpeechCNNConfig,
        SpeechCNNForAudioClassification,
        TabularMLPConfig,
        TabularMLPForPrediction,
    )

    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    cases = [
        (TabularMLPForPrediction(TabularMLPConfig(num_features=6, hidden_sizes=[16], num_labels=4)), (6,)),
        (SpeechCNNForAudioClassification(SpeechCNNConfig(architecture="lenet", input_size=(20, 16), num_labels=4)),
         (1, 20, 16)),
        (TupleOutput(), (6,)),
    ]
    labels = torch.arange(30) % 4
    for model, shape in cases:
        inputs = torch.randn(30, *shape, generator=generator)
        result = between_examples(model.eval(), inputs, labels, lambdas=[0.0, 0.4, 1.0], num_pairs=12, seed=1,
                                  batch_size=5)
        for k, lam in enumerate(result.lambdas):
            miss, norm = by_hand(model, inputs, labels, result.first, result.second, lam)
            assert result.miss_rate[k] == miss
            assert result.grad_norm[k] == pytest.approx(norm, rel=1e-4)
        assert all(g > 0 for g in result.grad_norm)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(labels=torch.zeros(10, dtype=torch.long)), "at least two classes"),
        (dict(num_pairs=0), "num_pairs must be a whole number >= 1"),
        (dict(lambdas=[0.5, 1.5]), r"in \[0, 1\]"),
        (dict(lambdas=[-0.1]), r"in \[0, 1\]"),
        (dict(lambdas=[float("nan")]), r"in \[0, 1\]"),
        (dict(lambdas=[]), "lambdas is empty"),
        (dict(lambdas=0.5), "sequence of numbers"),
        (dict(labels=torch.arange(10) % 2 * 1.0), "integer class ids"),
        (dict(labels=torch.arange(9) % 2), "one label per example"),
        (dict(labels=torch.arange(10)), "model has 3 classes"),
        (dict(batch_size=0), "batch_size"),
        (dict(pixel_values=torch.arange(10)), "float tensor"),
        (dict(pairs=(torch.tensor([0]), torch.tensor([2])), num_pairs=None), "different classes"),
        (dict(pairs=(torch.tensor([0]), torch.tensor([1])), num_pairs=5), "num_pairs is 5"),
    ],
)
def test_bad_input_is_refused(change, message):
    torch.manual_seed(0)
    kwargs = dict(pixel_values=torch.randn(10, 4), labels=torch.arange(10) % 2, lambdas=[0.0, 1.0], num_pairs=4, seed=0)
    kwargs.update(change)
    model = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=message):
        between_examples(model, kwargs.pop("pixel_values"), kwargs.pop("labels"), **kwargs)


# --------------------------------------------------------------------------------------------- the scripts


def run_script(name: str, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *argv], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def little_fashion(tmp_path_factory):
    """The first 64 Fashion-MNIST images of each split, saved as a dataset folder."""
    from hf_mixup.data import FASHION_MNIST_DIR, load_fashion_mnist, save_dataset

    if not os.path.isdir(FASHION_MNIST_DIR):
        pytest.fail("Fashion-MNIST is not installed: `make test` installs the Debian package dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("fm") / "fashion_mnist"
    return save_dataset(lambda: load_fashion_mnist(FASHION_MNIST_DIR, limit=64), str(out))


@pytest.mark.slow
def test_analyze_script_on_the_reference_pair(tmp_path, little_fashion):
    import hf_mixup.models  # noqa: F401
    from datasets import load_from_disk
    from transformers import AutoModelForImageClassification

    from hf_mixup.cli.images import image_transforms

    erm, mixup = REFERENCE / "preact-resnet18-fashion-mnist-erm", REFERENCE / "preact-resnet18-fashion-mnist-mixup"
    output = tmp_path / "between"
    done = run_script("analyze.py", "--erm", str(erm), "--mixup", str(mixup), "--dataset_name", little_fashion,
                      "--num_pairs", "12", "--lambdas", "1", "0", "0.5", "--batch_size", "5", "--output", str(output))
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(output.with_suffix(".json").read_text())
    assert record["lambdas"] == [0.0, 0.5, 1.0] and record["num_pairs"] == 12 and record["samples"] == 64
    assert record["command"].startswith("python scripts/analyze.py --erm")
    assert output.with_suffix(".png").stat().st_size > 10_000
    train = load_from_disk(little_fashion)["train"]
    first, second = record["pairs"]["first"], record["pairs"]["second"]
    assert (first, second) == tuple(t.tolist() for t in draw_pairs(torch.tensor(train["label"]), 12, seed=0))
    # The mixup curve is between_examples on the same pairs, preprocessed by the checkpoint's own transform.
    model = AutoModelForImageClassification.from_pretrained(str(mixup))
    _, transform = image_transforms(model, "none")
    pixels = torch.stack([transform(image.convert("RGB")) for image in train["image"]])
    expected = between_examples(model, pixels, torch.tensor(train["label"]), lambdas=[0.0, 0.5, 1.0], num_pairs=None,
                                pairs=(torch.tensor(first), torch.tensor(second)))
    assert record["mixup"]["miss_rate"] == expected.miss_rate
    assert record["mixup"]["grad_norm"] == pytest.approx(expected.grad_norm, rel=1e-4)
    assert len(record["erm"]["grad_norm"]) == 3 and record["erm"]["grad_norm"] != record["mixup"]["grad_norm"]
    table = output.with_suffix(".md").read_text()
    row = (f"| 0.5 | {100 * record['erm']['miss_rate'][1]:.1f} | {100 * record['mixup']['miss_rate'][1]:.1f} | "
           f"{record['erm']['grad_norm'][1]:.4f} | {record['mixup']['grad_norm'][1]:.4f} |")
    assert row in table and "python scripts/analyze.py" in table


def test_analyze_script_reports_a_mistake_in_one_line(tmp_path, little_fashion, capsys):
    run = runpy.run_path(str(ROOT / "scripts" / "analyze.py"), run_name="analyze")["run"]
    erm = str(REFERENCE / "preact-resnet18-fashion-mnist-erm")
    with pytest.raises(SystemExit) as exited:
        run(["--erm", erm, "--mixup", erm, "--lambdas", "0", "1.5"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.strip().count("\n") == 0 and "lambda 1.5 is outside [0, 1]" in error
    for argv, message in (
        (["--erm", str(tmp_path / "absent"), "--mixup", erm, "--dataset_name", little_fashion],
         "could not load the checkpoint --erm"),
        (["--erm", erm, "--mixup", erm, "--dataset_name", little_fashion, "--split", "validation"],
         "'validation' is not a split"),
        (["--erm", erm, "--mixup", erm, "--num_pairs", "0"], "--num_pairs 0"),
    ):
        capsys.readouterr()
        assert run(argv) == 2
        error = capsys.readouterr().err
        assert error.strip().count("\n") == 0 and message in error, error


@pytest.mark.slow
def test_toy_decision_script(tmp_path):
    output = tmp_path / "toy"
    argv = ["--num_samples", "40", "--epochs", "3", "--grid", "25", "--output", str(output)]
    done = run_script("toy_decision.py", *argv)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(output.with_suffix(".json").read_text())
    assert record["command"] == "python scripts/toy_decision.py " + " ".join(argv)
    assert record["erm"]["mixup_alpha"] == 0.0 and record["mixup"]["mixup_alpha"] == 1.0
    for method in ("erm", "mixup"):
        assert 0 <= record[method]["train_accuracy"] <= 1 and 0 <= record[method]["uncertain_share"] <= 1
        assert 0.5 <= record[method]["mean_confidence"] <= 1
    assert output.with_suffix(".png").stat().st_size > 10_000
    table = output.with_suffix(".md").read_text()
    erm = record["erm"]
    assert f"| ERM | {100 * erm['train_accuracy']:.1f} | {100 * erm['uncertain_share']:.1f} |" in table
