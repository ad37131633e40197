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
