"""MixupTrainer across processes: two gloo ranks launched by the real `accelerate launch --multi_gpu
--num_processes 2` (on the CPU), each with half of the batch, take the very same optimizer steps as one
process with the whole batch (the loss is scaled by the number of processes, whose gradients DDP averages)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from _two_rank_step import EXAMPLES, LEARNING_RATE, STEPS, train
from conftest import accelerate_launch, free_port, launch_env, tiny_vit

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent / "_two_rank_step.py"


def test_two_ranks_with_half_batches_take_the_steps_of_one_process(tmp_path):
    out = tmp_path / "two-ranks"
    out.mkdir()
    command = accelerate_launch(
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_port", str(free_port()), str(SCRIPT), str(out), str(EXAMPLES // 2),
    )
    done = subprocess.run(command, env=launch_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2 and len(run["losses"]) == STEPS
    two_ranks = torch.load(out / "weights.pt", weights_only=True)

    one = train(tmp_path / "one-process", EXAMPLES)
    assert one.args.world_size == 1
    one_process = one.model.state_dict()
    initial = tiny_vit().state_dict()
    for name, weight in one_process.items():
        torch.testing.assert_close(two_ranks[name], weight, atol=2e-6, rtol=1e-5, msg=name)
    # The steps are large enough for a wrong scale (half or twice the step) to show.
    moved = max(float((one_process[k] - initial[k]).abs().max()) for k in initial)
    assert moved > 1e-2 * LEARNING_RATE
    losses = [h["loss"] for h in one.state.log_history if "loss" in h]
    assert run["losses"] == pytest.approx(losses, abs=1e-4)


def test_two_ranks_train_with_the_same_nearest_neighbour_partners(tmp_path, monkeypatch):
    """`mixup_partner="knn"` under two gloo ranks: the main rank finds the neighbours and caches them, the
    other reads the cache; every partner either rank trained with is among its example's 3 nearest."""
    from conftest import digits_as_dataset, load_digits_arrays

    out = tmp_path / "knn"
    out.mkdir()
    env = launch_env()
    env["HF_MIXUP_CACHE"] = str(tmp_path / "cache")
    command = accelerate_launch(
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_port", str(free_port()), str(SCRIPT), str(out), "8", "knn",
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks) and ranks[0]["neighbours"] == ranks[1]["neighbours"]
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    pixels = digits_as_dataset(*load_digits_arrays(), n=64)[:]["pixel_values"].flatten(1)
    distances = torch.cdist(pixels.double(), pixels.double())
    distances.fill_diagonal_(float("inf"))
    nearest = distances.topk(3, largest=False).indices.tolist()
    assert ranks[0]["neighbours"] == nearest
    seen = [pair for r in ranks for pair in r["seen"]]
    assert len(seen) == 2 * 64  # two epochs of the 64 examples, split between the ranks
    for row, partner in seen:
        matches = torch.nonzero((pixels == torch.tensor(row)).all(1)).view(-1).tolist()
        assert matches and any(partner in nearest[i] for i in matches)
