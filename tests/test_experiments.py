"""`run_grid`: every finished cell on disk, skipped on restart, re-run when its settings change, and the
same records when cells run several at a time."""

from __future__ import annotations

import json
import threading
import time

import pytest

from hf_mixup.experiments import run_grid


def recorder(calls, fail_on=None, pause=0.0):
    def run_cell(method, seed):
        if (method, seed) == fail_on:
            raise RuntimeError(f"{method} {seed} broke")
        time.sleep(pause)
        calls.append((method, seed))
        return {"value": f"{method}-{seed}"}

    return run_cell


def test_cells_are_recorded_and_skipped_on_restart(tmp_path):
    state = tmp_path / "grid.json"
    calls = []
    first = run_grid(recorder(calls), ["erm", "mixup"], [1, 2], state_file=str(state), config={"epochs": 3})
    assert sorted(calls) == [("erm", 1), ("erm", 2), ("mixup", 1), ("mixup", 2)]
    assert first.results == {"erm": {1: {"value": "erm-1"}, 2: {"value": "erm-2"}},
                             "mixup": {1: {"value": "mixup-1"}, 2: {"value": "mixup-2"}}}
    assert set(json.loads(state.read_text())["cells"]) == {"erm/seed1", "erm/seed2", "mixup/seed1", "mixup/seed2"}

    calls.clear()
    again = run_grid(recorder(calls), ["erm", "mixup"], [1, 2, 3], state_file=str(state), config={"epochs": 3})
    assert sorted(calls) == [("erm", 3), ("mixup", 3)]  # only the new seed runs
    assert again.reused == 4 and again.results["mixup"][2] == {"value": "mixup-2"}

    calls.clear()
    run_grid(recorder(calls), ["erm"], [1], state_file=str(state), config={"epochs": 4})
    assert calls == [("erm", 1)]  # another config: the recorded cell does not count


def test_cells_no_longer_done_or_recorded_under_another_config_run_again(tmp_path):
    state = tmp_path / "grid.json"
    calls = []
    run_grid(recorder(calls), ["erm", "mixup"], [1], state_file=str(state), config={"epochs": 3})
    assert sorted(calls) == [("erm", 1), ("mixup", 1)]

    # still_done says no for one recorded cell (e.g. its run folder is gone): that cell alone runs again
    calls.clear()
    outcome = run_grid(recorder(calls), ["erm", "mixup"], [1], state_file=str(state), config={"epochs": 3},
                       still_done=lambda method, seed: method != "mixup")
    assert calls == [("mixup", 1)] and outcome.reused == 1

    # a recorded config against none (config=None is {}): every cell runs again, and is recorded without it
    calls.clear()
    outcome = run_grid(recorder(calls), ["erm", "mixup"], [1], state_file=str(state))
    assert sorted(calls) == [("erm", 1), ("mixup", 1)] and outcome.reused == 0
    assert all(cell["config"] == {} for cell in json.loads(state.read_text())["cells"].values())

    # and back: cells recorded under no config do not count for a grid with one
    calls.clear()
    run_grid(recorder(calls), ["erm"], [1], state_file=str(state), config={"epochs": 3})
    assert calls == [("erm", 1)]
    calls.clear()
    run_grid(recorder(calls), ["erm"], [1], state_file=str(state), config={"epochs": 3})
    assert calls == []  # the same config and still done: reused


def test_a_failing_cell_keeps_the_cells_finished_before_it(tmp_path):
    state = tmp_path / "grid.json"
    calls = []
    with pytest.raises(RuntimeError, match="mixup 1 broke"):
        run_grid(recorder(calls, fail_on=("mixup", 1)), ["erm", "mixup"], [1], state_file=str(state))
    assert list(json.loads(state.read_text())["cells"]) == ["erm/seed1"]
    calls.clear()
    run_grid(recorder(calls), ["erm", "mixup"], [1], state_file=str(state))
    assert calls == [("mixup", 1)]


def test_parallel_cells_run_at_once_and_are_all_recorded(tmp_path):
    state = tmp_path / "grid.json"
    calls, running, peak = [], [0], [0]
    lock = threading.Lock()

    def run_cell(method, seed):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        calls.append((method, seed))
        return {"value": f"{method}-{seed}"}

    methods = ["a", "b", "c"]
    outcome = run_grid(run_cell, methods, [1, 2], state_file=str(state), jobs=3)
    assert peak[0] == 3
    assert len(calls) == 6
    assert outcome.results == {m: {s: {"value": f"{m}-{s}"} for s in (1, 2)} for m in methods}
    assert len(json.loads(state.read_text())["cells"]) == 6
    calls.clear()
    assert run_grid(run_cell, methods, [1, 2], state_file=str(state), jobs=3).reused == 6 and calls == []


def test_parallel_failure_keeps_finished_cells(tmp_path):
    state = tmp_path / "grid.json"
    calls = []
    with pytest.raises(RuntimeError, match="b 1 broke"):
        run_grid(recorder(calls, fail_on=("b", 1), pause=0.01), ["a", "b"], [1], state_file=str(state), jobs=2)
    assert "a/seed1" in json.loads(state.read_text())["cells"]


def test_bad_jobs_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="jobs"):
        run_grid(recorder([]), ["a"], [1], state_file=str(tmp_path / "g.json"), jobs=0)


def test_parallel_progress_counts_each_cell_as_it_finishes(tmp_path):
    """With jobs > 1 the bar moves when a run ends, not only when the last one does: the slow cell waits to
    see the bar count the fast one."""
    from tqdm.auto import tqdm

    seen = []

    def run_cell(method, seed):
        if method == "slow":
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                counts = [bar.n for bar in list(tqdm._instances) if bar.desc.startswith("progress-test")]
                if counts and counts[0] >= 1:
                    break
                time.sleep(0.01)
            seen.extend(counts)
        return {"value": method}

    run_grid(run_cell, ["fast", "slow"], [1], state_file=str(tmp_path / "g.json"), jobs=2, desc="progress-test")
    assert seen == [1]


def test_a_page_rendered_from_its_json_is_written_again_from_the_json_alone(tmp_path):
    from hf_mixup.experiments import render_results, write_results

    def render(record):
        return f"# {record['name']}\n\n`{record['command']}`: {record['value']:.1f}\n"

    output = str(tmp_path / "page")
    record = write_results(output, None, {"name": "table", "value": 1.25}, argv=["--x", "1"], script="s.py",
                           echo=False, render=render)
    page = (tmp_path / "page.md").read_text()
    assert page == render(record) == "# table\n\n`python s.py --x 1`: 1.2\n"
    (tmp_path / "page.md").write_text("edited by hand")
    assert render_results(output, render) == page == (tmp_path / "page.md").read_text()
    with pytest.raises(ValueError, match="text or a render"):
        write_results(output, None, {}, echo=False)
