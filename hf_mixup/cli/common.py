"""What every modality of the training command shares: the dataset arguments, loading, and the choice
of the evaluation split and of the label column."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data import OFFLINE_DATASETS, load_any_dataset
from .errors import UsageError

EVAL_SPLITS = ("test", "validation")


@dataclass
class DataArguments:
    dataset_name: str = field(
        default="digits",
        metadata={
            "help": f"Hub id (uoft-cs/cifar10), local path (saved dataset, image or audio folder, csv/parquet/json "
            f"file) or offline name ({', '.join(sorted(OFFLINE_DATASETS))})."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of the Hub dataset."})
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str | None = field(
        default=None, metadata={"help": "Split to evaluate on (default: test, else validation, else held out of train)."}
    )
    validation_split_percentage: float = field(
        default=10.0,
        metadata={"help": "Held-out share of the train split, in percent, when the dataset has no eval split (stratified "
                          "by class)."},
    )
    image_column_name: str | None = field(
        default=None, metadata={"help": "Image or audio column (default: image, img or audio)."}
    )
    label_column_name: list[str] | None = field(
        default=None,
        metadata={
            "help": "Label column (default: label, labels, fine_label or target); for a multi-label table, "
            "several 0/1 columns.",
            "aliases": ["--label_column"],
        },
    )
    split_seed: int = field(
        default=0,
        metadata={"help": "Seed of the held-out split for datasets without one (fixed apart from --seed, so "
                          "every training seed is scored on the same rows)."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many evaluation examples."})
    label_noise: float | None = field(
        default=None,
        metadata={
            "help": "Images only (Table 2): re-draw each training label with this probability (0..1), uniformly from "
            "all classes (so about 0.9 x this share end up wrong with 10 classes); after --max_train_samples, the "
            "evaluation split stays intact. The results then add train_error_real, train_error_corrupted (on the "
            "training images, evaluation transform, no mixing), test_error (last) and best_test_error."
        },
    )
    label_noise_seed: int = field(default=0, metadata={"help": "Seed of the --label_noise draws (fixed apart from --seed)."})
    memorisation_every_epoch: bool = field(
        default=False,
        metadata={"help": "With --label_noise: also compute and log train_error_real / train_error_corrupted after "
                          "every epoch (one extra pass over the training images each)."},
    )


def load_raw(data_args):
    """The `DatasetDict` of `--dataset_name`, checked to hold `--train_split`."""
    raw = load_any_dataset(data_args.dataset_name, data_args.dataset_config_name)
    if data_args.train_split not in raw:
        raise UsageError(f"--train_split {data_args.train_split!r} is not a split of the dataset; its splits are {list(raw)}")
    return raw


def eval_split_of(data_args, splits) -> str | None:
    """`--eval_split` (checked), else `test`, else `validation`; None: hold rows out of the train split."""
    if data_args.eval_split is not None:
        if data_args.eval_split not in splits:
            raise UsageError(f"--eval_split {data_args.eval_split!r} is not a split of the dataset; its splits are {list(splits)}")
        return data_args.eval_split
    return next((s for s in EVAL_SPLITS if s in splits), None)


def held_out_name(data_args, stratified: bool) -> str:
    """How a held-out evaluation split is named in results and model cards."""
    name = f"{data_args.validation_split_percentage:g}% held out of {data_args.train_split}"
    return name + " (stratified)" if stratified else name


def label_columns_of(data_args, columns: list[str], candidates: tuple[str, ...]) -> list[str]:
    """The label columns: those of `--label_column` (checked), else the first of ``candidates`` present."""
    given = list(data_args.label_column_name or [])
    if given:
        absent = [c for c in given if c not in columns]
        if absent:
            raise UsageError(f"--label_column {absent} is not among the dataset's columns {columns}")
        return given
    found = next((c for c in candidates if c in columns), None)
    if found is None:
        raise UsageError(f"could not find the label column among {columns}; name it with --label_column")
    return [found]


def load_splits(data_args, seed: int, raw):
    """Images and audio: (train, eval, eval split name, input column, label column, class names).
    ``seed`` orders the `--max_train_samples` subset; a held-out eval split is fixed by `--split_seed`."""
    from ..data import class_names, find_column

    train = raw[data_args.train_split]
    input_col = find_column(train, data_args.image_column_name, ("image", "img", "audio"), "image")
    if len(data_args.label_column_name or []) > 1:
        raise UsageError("several --label_column values make a multi-label table; images and audio take one label column")
    (label_col,) = label_columns_of(data_args, train.column_names, ("label", "labels", "fine_label"))
    train, evaluation, eval_split = split_and_subset(data_args, seed, raw, label_col)
    return train, evaluation, eval_split, input_col, label_col, class_names(train, label_col)


def split_and_subset(data_args, seed: int, raw, label_col: str):
    """(train, eval, eval split name): `--eval_split` (or test / validation, or a share of train held out,
    stratified by a ClassLabel ``label_col``, by `--split_seed`), then `--max_train_samples` (drawn with
    ``seed``) and `--max_eval_samples` (the first ones)."""
    import datasets

    train = raw[data_args.train_split]
    eval_split = eval_split_of(data_args, raw)
    if eval_split is not None:
        evaluation = raw[eval_split]
    else:
        stratified = isinstance(train.features[label_col], datasets.ClassLabel)
        parts = train.train_test_split(
            test_size=data_args.validation_split_percentage / 100.0, seed=data_args.split_seed,
            stratify_by_column=label_col if stratified else None,
        )
        train, evaluation = parts["train"], parts["test"]
        eval_split = held_out_name(data_args, stratified)
    if data_args.max_train_samples is not None:
        train = train.shuffle(seed=seed).select(range(min(data_args.max_train_samples, len(train))))
    if data_args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(data_args.max_eval_samples, len(evaluation))))
    return train, evaluation, eval_split


def end_processes(finished: bool = True) -> None:
    """Leave the process group before the interpreter exits. A gloo group left to the interpreter's
    teardown can abort a rank after its work is done ('terminate called without an active exception',
    SIGABRT, and `accelerate launch` fails the whole run). ``finished``: every rank got here (wait for
    the others first); on an error path the group is destroyed without waiting."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
