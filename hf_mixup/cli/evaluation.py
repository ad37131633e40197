"""What the scripts that evaluate saved image classifiers share (`scripts/attack.py`, `scripts/analyze.py`):

- `ImageCheckpoint`: an image-classification checkpoint loaded for evaluation (model, eval transform,
  colour mode, the check that it predicts the dataset's classes);
- `load_split`: the split it is evaluated on, with its image and label columns and class names;
- `OneLineParser` and `run_script`: a mistake in what was asked for (a bad flag, a checkpoint that cannot
  be loaded, a split or column that is not there, classes that do not fit) as one line on stderr with
  exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import torch

from .common import end_processes
from .errors import UsageError


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad flag reported in one line (no usage block) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def run_script(prepare: Callable[[list[str] | None], tuple], execute: Callable[..., Any], argv: list[str] | None,
               default_prog: str) -> int:
    """``execute(*prepare(argv), argv=argv)``, with a ValueError of ``prepare`` (a `UsageError`, the dataset
    loader's and column finder's ValueErrors) as one line ``<prog>: error: ...`` on stderr and exit status 2;
    errors of ``execute`` propagate. 0 when it ran."""
    prog = os.path.basename(sys.argv[0]) or default_prog
    try:
        prepared = prepare(argv)
    except ValueError as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        end_processes(finished=False)
        return 2
    execute(*prepared, argv=argv)
    end_processes()
    return 0


class ImageCheckpoint:
    """An image-classification checkpoint (a folder or a Hub id, loaded with `AutoModelForImageClassification`)
    on ``device`` in eval mode, with its eval transform (PIL image -> normalised tensor, the checkpoint's
    own image processor, as evaluation in training) and colour mode ("L" for 1-channel models, else
    "RGB"). ``flag`` is the command-line flag that named it, for the error messages."""

    def __init__(self, name: str, device: torch.device | str, flag: str = "--model"):
        from transformers import AutoModelForImageClassification

        from .. import models  # noqa: F401  (registers hf_mixup's timm architectures for loading)
        from .images import image_transforms

        self.name = name
        self.flag = flag
        try:
            model = AutoModelForImageClassification.from_pretrained(name)
        except (OSError, ValueError) as error:  # not found, not reachable, not a valid Hub id or checkpoint
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UsageError(
                f"could not load the checkpoint {flag} {name!r}: {reason} (give a saved image-classification "
                "checkpoint folder or a Hub id)"
            ) from error
        self.model = model.to(device).eval()
        _, self.transform = image_transforms(self.model, "none")
        cfg = getattr(self.model.config, "pretrained_cfg", None) or {}
        channels = cfg.get("input_size", [getattr(self.model.config, "num_channels", 3)])[0]
        self.mode = "L" if channels == 1 else "RGB"
        self.num_labels = self.model.config.num_labels

    def inputs(self, images) -> torch.Tensor:
        """PIL images -> the model's input batch ``[B, C, H, W]`` (on the CPU)."""
        return torch.stack([self.transform(image.convert(self.mode)) for image in images])

    def check_labels(self, names: list[str]) -> None:
        """A `UsageError` unless the checkpoint predicts the dataset's classes ``names``: as many, and the
        same names in the same order where the checkpoint has names (not transformers' ``LABEL_i``)."""
        if self.num_labels != len(names):
            raise UsageError(
                f"{self.flag} {self.name} predicts {self.num_labels} classes but the dataset has {len(names)}: "
                "give a checkpoint trained on this dataset"
            )
        id2label = self.model.config.id2label or {}
        model_names = [str(id2label.get(i, id2label.get(str(i), ""))) for i in range(len(names))]
        if all(not n.startswith("LABEL_") for n in model_names) and model_names != [str(n) for n in names]:
            raise UsageError(
                f"{self.flag} {self.name}'s classes {model_names[:5]}... are not the dataset's {list(names)[:5]}...: "
                "give a checkpoint trained on this dataset (the same classes in the same order)"
            )


def load_split(args):
    """``(rows, image column, label column, class names)`` of the split ``args.split`` of ``args.dataset_name``
    (an offline name, a path or a Hub id; ``args.dataset_config_name``), its first ``args.max_samples`` rows
    when set; the columns are ``args.image_column_name`` / ``args.label_column_name`` when set, else the
    usual names (image / img, label / labels / fine_label). A `UsageError` for a dataset that cannot be
    loaded, a split it does not have or an empty split; the column finder's and class-name reader's
    ValueErrors (which name the flag to set) propagate."""
    from ..data import class_names, find_column, load_any_dataset

    try:
        data = load_any_dataset(args.dataset_name, args.dataset_config_name)
    except ValueError as error:
        raise UsageError(str(error)) from error
    if args.split not in data:
        raise UsageError(f"--split {args.split!r} is not a split of {args.dataset_name}; its splits are {list(data)}")
    split = data[args.split]
    image_col = find_column(split, args.image_column_name, ("image", "img"), "image")
    label_col = find_column(split, args.label_column_name, ("label", "labels", "fine_label"), "label")
    names = class_names(split, label_col)
    if args.max_samples is not None:
        split = split.select(range(min(args.max_samples, len(split))))
    if len(split) == 0:
        raise UsageError(f"the split {args.split!r} of {args.dataset_name} has no images")
    return split, image_col, label_col, names
