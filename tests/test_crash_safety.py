"""Crash safety of a real `hf-mixup train` process: killed with SIGKILL in the middle of writing a checkpoint
(twice), the same command finishes the run with weights bit-identical to an uninterrupted run, and the
half-written folders are removed with one log line. `scripts/kill_sweep.py` sweeps 20 kill moments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from hf_mixup.runs import read_run_settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HF_MIXUP = str(Path(sys.executable).parent / "hf-mixup")
COMMAND = ["train", "--dataset_name", "wine", "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "2",
           "--save_total_limit", "2", "--eval_strategy", "no", "--report_to", "none", "--disable_tqdm", "true"]


def hf_mixup_train(out: Path, kill_at: str | None = None, trace: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "scripts" / "killpoint"), OMP_NUM_THREADS="1")
    env.pop("HF_MIXUP_KILL_AT", None)
    if kill_at:
        env["HF_MIXUP_KILL_AT"] = kill_at
    if trace:
        env["HF_MIXUP_KILL_TRACE"] = str(trace)
    return subprocess.run([HF_MIXUP, *COMMAND, "--output_dir", str(out)], env=env, capture_output=True, text=True,
                          timeout=600)


def test_killed_twice_mid_save_the_same_command_finishes_bit_identically(tmp_path):
    reference = hf_mixup_train(tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]

    out = tmp_path / "killed"
    # 1. Killed in the save of checkpoint-2, after its weights and optimizer, before its RNG states.
    first = hf_mixup_train(out, kill_at="enter Trainer._save_rng_state#1")
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == [".partial-checkpoint-2"]
    # 2. The same command starts again (nothing to resume) and is killed in the save of checkpoint-4.
    second = hf_mixup_train(out, kill_at="enter Trainer._save_rng_state#2")
    assert second.returncode == -signal.SIGKILL, second.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == [".partial-checkpoint-4", "checkpoint-2"]
    # 3. The same command resumes checkpoint-2, clears the partial folder with one log line, and finishes.
    third = hf_mixup_train(out, trace=tmp_path / "moments.txt")
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stderr.count("partial folder(s) that an interrupted save left") == 1
    steps = (tmp_path / "moments.txt").read_text().count("enter Trainer.training_step")
    assert steps == 4, f"{steps} training steps: the run did not resume from checkpoint-2"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert read_run_settings(str(out))["finished"] is True

    expected = load_file(str(tmp_path / "reference" / "model.safetensors"))
    got = load_file(str(out / "model.safetensors"))
    assert expected.keys() == got.keys()
    assert all((expected[k] == got[k]).all() for k in expected), "the resumed run's weights differ"
    for step in (4, 6):
        assert load_file(str(out / f"checkpoint-{step}" / "model.safetensors")).keys() == expected.keys()
