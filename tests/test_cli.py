"""The command line: `hf-mixup train`, `python -m hf_mixup train` and `scripts/train.py` share one parser,
and a mistake in what was asked for ends with one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hf_mixup.cli import train
from hf_mixup.cli.main import main as hf_mixup_main

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def one_line_error(capsys, code: int) -> str:
    """The stderr of a command that failed on a user mistake: one line, no traceback, status 2."""
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and "examples/s" not in line]
    assert len(lines) == 1, lines
    return lines[0]


def test_an_unknown_timm_architecture_names_close_matches(tmp_path, capsys):
    code = train.run(["--model_name", "resnet19", "--output_dir", str(tmp_path)], prog="hf-mixup train")
    line = one_line_error(capsys, code)
    assert line.startswith("hf-mixup train: error: --model_name 'resnet19' is not a timm architecture")
    assert "resnet18" in line


def test_the_close_matches_come_from_timms_registry(tmp_path, capsys):
    # A name of this package's own registered CIFAR family is suggested too.
    code = train.run(["--model_name", "preact_resnet19", "--output_dir", str(tmp_path)])
    assert "preact_resnet18" in one_line_error(capsys, code)


def test_an_empty_or_header_only_csv_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    line = one_line_error(capsys, train.run(["--dataset_name", str(empty), "--output_dir", str(tmp_path / "a")]))
    assert f"could not read the table {empty}" in line
    header = tmp_path / "header.csv"
    header.write_text("height,label\n")
    line = one_line_error(capsys, train.run(["--dataset_name", str(header), "--output_dir", str(tmp_path / "b")]))
    assert line.endswith(f"the table {header} has no rows")


def test_a_dataset_that_is_nowhere_is_one_line(tmp_path, capsys, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    code = train.run(["--dataset_name", "nobody-here/no-such-dataset", "--output_dir", str(tmp_path)])
    line = one_line_error(capsys, code)
    assert "could not load the dataset 'nobody-here/no-such-dataset'" in line and "no local path" in line


def test_bad_flags_and_values_are_one_line(tmp_path, capsys):
    assert "unknown arguments ['--no_such_flag', '1']" in one_line_error(
        capsys, train.run(["--no_such_flag", "1", "--output_dir", str(tmp_path)])
    )
    assert "mixup_prob must be a probability in [0, 1]" in one_line_error(
        capsys, train.run(["--mixup_prob", "2", "--output_dir", str(tmp_path)])
    )
    assert "--eval_split 'dev' is not a split of the dataset" in one_line_error(
        capsys, train.run(["--eval_split", "dev", "--output_dir", str(tmp_path)])
    )


def test_nothing_is_written_when_the_command_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    train.run(["--model_name", "resnet19", "--output_dir", str(out)])
    assert not out.exists()


def test_hf_mixup_lists_its_commands(capsys):
    assert hf_mixup_main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert hf_mixup_main([]) == 2
    with pytest.raises(SystemExit) as exit_info:
        hf_mixup_main(["fit"])
    assert exit_info.value.code == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "hf-mixup"), "train"],
        [sys.executable, "-m", "hf_mixup", "train"],
        [sys.executable, str(ROOT / "scripts" / "train.py")],
    ],
    ids=["console-script", "python-m", "scripts-train"],
)
def test_every_entry_point_runs_the_same_command(command, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    helped = subprocess.run(command + ["--help"], capture_output=True, text=True, env=env, timeout=300)
    assert helped.returncode == 0, helped.stderr
    assert "--mixup_alpha" in helped.stdout and "--keyword_classes" in helped.stdout and "--missing_values" in helped.stdout
    refused = subprocess.run(command + ["--model_name", "resnt50", "--output_dir", str(tmp_path)],
                             capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "error: --model_name 'resnt50' is not a timm architecture" in refused.stderr
    assert "resnet50" in refused.stderr
