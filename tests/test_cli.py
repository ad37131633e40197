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
    progress = ("examples/s", "files/s")  # datasets' progress bars while a folder or table loads
    lines = [line for line in err.splitlines() if line.strip() and not any(p in line for p in progress)]
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


def image_folder(root: Path, per_class: int = 4) -> Path:
    """train/{cat,dog}/*.png: a small image folder with one subfolder per class."""
    import numpy as np
    from PIL import Image

    for cls in ("cat", "dog"):
        (root / "train" / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(root / "train" / cls / f"{i}.png")
    return root


def test_an_unreadable_image_names_the_file_before_training(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    folder = image_folder(tmp_path / "images")
    truncated = folder / "train" / "dog" / "truncated.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:6000])  # cut inside the pixel data: the header still opens
    with Image.open(truncated) as opened:
        assert opened.size == (64, 64)
    out = tmp_path / "run"
    line = one_line_error(capsys, train.run(["--dataset_name", str(folder), "--output_dir", str(out)]))
    assert f"cannot read the image {truncated} in the folder {folder}" in line and "remove or replace" in line
    assert not out.exists()
    truncated.unlink()
    not_an_image = folder / "train" / "cat" / "notes.png"
    not_an_image.write_text("not an image, whatever the extension says")
    line = one_line_error(capsys, train.run(["--dataset_name", str(folder), "--output_dir", str(out)]))
    assert f"cannot read the image {not_an_image}" in line and "cannot identify image file" in line
    assert not out.exists()


def test_an_empty_folder_says_what_it_must_hold(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line_error(capsys, train.run(["--dataset_name", str(empty), "--output_dir", str(tmp_path / "a")]))
    assert f"the folder {empty} holds no image or sound files" in line and "one subfolder per class" in line
    for cls in ("cat", "dog"):  # class folders with nothing in them
        (empty / "train" / cls).mkdir(parents=True)
    line = one_line_error(capsys, train.run(["--dataset_name", str(empty), "--output_dir", str(tmp_path / "b")]))
    assert f"the folder {empty} holds no image or sound files" in line


def test_a_missing_recipe_path_or_name_lists_the_recipes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the checkout: recipes/uci_mlp.yaml is no file here
    line = one_line_error(capsys, train.run(["recipes/uci_mlp.yaml", "--output_dir", "out"], prog="hf-mixup train"))
    assert line.startswith("hf-mixup train: error: no config file 'recipes/uci_mlp.yaml' (no such file)")
    assert "hf-mixup train uci_mlp" in line and "cifar10_preact_resnet18" in line
    line = one_line_error(capsys, train.run(["uci_mpl", "--output_dir", "out"]))
    assert "no recipe 'uci_mpl'" in line and "uci_mlp" in line and "`hf-mixup recipes`" in line
    assert hf_mixup_main(["train", "no_such.json"]) == 2
    assert "no config file 'no_such.json'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_recipe_by_name_from_any_folder(tmp_path, monkeypatch):
    by_path = train.parse_args([str(ROOT / "recipes" / "uci_mlp.yaml"), "--output_dir", str(tmp_path / "o")])
    monkeypatch.chdir(tmp_path)
    for name in ("uci_mlp", "uci_mlp.yaml"):
        model_args, data_args, args = train.parse_args([name, "--output_dir", str(tmp_path / "o"), "--seed", "3"])
        assert (model_args, data_args) == by_path[:2] and args.seed == 3
        assert data_args.dataset_name == "iris" and model_args.model_name == "mlp" and args.per_device_train_batch_size == 16
    # An existing file wins over a shipped recipe of the same name.
    (tmp_path / "uci_mlp.yaml").write_text("dataset_name: wine\n")
    assert train.parse_args(["uci_mlp.yaml", "--output_dir", "o"])[1].dataset_name == "wine"


def test_hf_mixup_recipes_lists_every_recipe_with_its_description(capsys):
    files = sorted((ROOT / "recipes").glob("*.yaml"))
    assert hf_mixup_main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(files)
    for path, line in zip(files, lines):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# ") and len(first) <= 110, f"{path.name}: begin with a one-line `# ...` description"
        assert line.split()[0] == path.stem and line.endswith(first[2:])
    assert hf_mixup_main(["recipes", "uci_mlp"]) == 0
    assert capsys.readouterr().out == (ROOT / "recipes" / "uci_mlp.yaml").read_text()
    assert hf_mixup_main(["recipes", "nope"]) == 2
    assert "no recipe 'nope'" in capsys.readouterr().err


def test_hf_mixup_lists_its_commands(capsys):
    assert hf_mixup_main(["--help"]) == 0
    helped = capsys.readouterr().out
    assert "train" in helped and "recipes" in helped
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
