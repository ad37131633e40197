"""Checks of the training and evaluation data, made once before training starts.

A label the model cannot take (a class id out of range, a float label of the wrong width, strings) would
otherwise fail deep inside the loss at the first step, or, worse, train on something else than meant.
Each check raises a `ValueError` that names the column, the bad values and what to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .losses import MULTI_LABEL, REGRESSION, SINGLE_LABEL

IGNORE_INDEX = -100
_SHOWN = 5


def _shown(values) -> str:
    try:
        values = sorted(set(np.asarray(values).tolist()), key=lambda v: (isinstance(v, str), v))  # numbers, strings
    except TypeError:  # None, dicts, other objects: shown as written
        values = sorted({repr(v) for v in np.asarray(values, dtype=object).ravel().tolist()})
    more = f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else ""
    return ", ".join(str(v) for v in values[:_SHOWN]) + more


def check_class_ids(ids, num_labels: int, *, column: str, split: str, allow_ignored: bool) -> None:
    """Class ids must lie in ``0..num_labels-1``; ``-100`` (ignored by the loss) only where ``allow_ignored``.

    Raises:
        ValueError: naming ``column`` of ``split``, the bad ids, how many examples carry them, and what to change.
    """
    ids = torch.as_tensor(np.asarray(ids)).long().reshape(-1)
    bad = (ids >= num_labels) | ((ids < 0) & ~((ids == IGNORE_INDEX) if allow_ignored else torch.zeros_like(ids, dtype=torch.bool)))
    if not bool(bad.any()):
        return
    values = ids[bad]
    ignored = " (or -100 for an example the loss ignores)" if allow_ignored else ""
    hint = (
        "; -100 (no label) cannot be mixed: drop those examples from the training set, or train ERM (mixup_alpha=0)"
        if bool((values == IGNORE_INDEX).any()) else ""
    )
    raise ValueError(
        f"the {split} labels in {column!r} must be class ids in 0..{num_labels - 1}{ignored}; found {_shown(values)} "
        f"in {int(bad.sum())} example(s){hint}: give a model with num_labels covering every class "
        f"(config.num_labels={num_labels} now), or map the labels to 0..{num_labels - 1} "
        "(dataset.class_encode_column, or a ClassLabel feature)"
    )


def check_float_labels(values: np.ndarray, num_labels: int, problem_type: str, *, column: str, split: str) -> None:
    """Float labels: a width of ``num_labels`` (or a scalar for a one-output regression); multi-label
    targets in [0, 1]."""
    width = 1 if values.ndim == 1 else int(np.prod(values.shape[1:]))
    if problem_type == REGRESSION:
        if width != num_labels:
            raise ValueError(
                f"the {split} targets in {column!r} have {width} value(s) per example, but the model predicts "
                f"{num_labels}: give a model with num_labels={width}, or targets of width {num_labels}"
            )
        return
    if values.ndim == 1:
        raise ValueError(
            f"the {split} labels in {column!r} are floats ({_shown(values[:50])}, ...), not class ids: give integer "
            f"class ids in 0..{num_labels - 1} (cast the column to int, or class_encode_column), or soft labels "
            f"of width {num_labels}"
        )
    if width != num_labels:
        raise ValueError(
            f"the {split} labels in {column!r} have width {width}, but the model has num_labels={num_labels}: give "
            f"{'multi-hot' if problem_type == MULTI_LABEL else 'soft'} labels of width {num_labels}, or a model "
            f"with num_labels={width}"
        )
    outside = (values < 0) | (values > 1)
    if outside.any():
        raise ValueError(
            f"the {split} labels in {column!r} must lie in [0, 1] ({'multi-hot' if problem_type == MULTI_LABEL else 'soft'}"
            f" targets); found {_shown(values[outside])}: rescale them to [0, 1]"
        )


def label_values(dataset, label_keys, *, read_examples: bool = True) -> tuple[str, Any, np.ndarray] | None:
    """``(column, feature, values)`` of the first of ``label_keys`` in a dataset whose labels can be read without
    loading its inputs: a `datasets.Dataset` (from the Arrow table, without running its transform or decoding any
    image) and, with ``read_examples`` (the collator passes labels through unchanged), a list or tuple of example
    dicts or hf_mixup's `TensorTable` / `InMemoryImages` (one label tensor). None for any other kind (a map-style
    dataset that loads each example when asked): those are checked batch by batch in the loss."""
    if isinstance(dataset, (list, tuple)):
        return _sequence_label_values(dataset, label_keys) if read_examples else None
    labels = getattr(dataset, "labels", None)
    if _holds_label_tensor(dataset, labels):
        return ("labels", None, _numpy(labels)) if read_examples and "labels" in label_keys else None
    if not (hasattr(dataset, "features") and hasattr(dataset, "with_format") and hasattr(dataset, "column_names")):
        return None
    column = next((key for key in label_keys if key in dataset.column_names), None)
    if column is None or len(dataset) == 0:
        return None
    raw = dataset.with_format("numpy", columns=[column])[:][column]
    return _stacked(column, dataset.features[column], raw)


def passes_labels_through(collator) -> bool:
    """Whether ``collator`` (or the base collator of a `DataCollatorForMixup`) hands the examples' labels to the
    batch as they are: transformers' default collators, padding collators and hf_mixup's `collate_batches`. A
    collator of your own may encode them (strings to ids, lists of ids to multi-hot rows), so the examples' raw
    labels say nothing before it runs."""
    from transformers import DataCollatorWithPadding, DefaultDataCollator, default_data_collator

    from .collator import DataCollatorForMixup
    from .data.in_memory import collate_batches

    if isinstance(collator, DataCollatorForMixup):
        collator = collator.base_collator
    return collator is default_data_collator or collator is collate_batches or isinstance(
        collator, (DefaultDataCollator, DataCollatorWithPadding))


def _holds_label_tensor(dataset, labels) -> bool:
    """hf_mixup's in-memory datasets (``labels_in_one_tensor``): one label per example in one tensor."""
    return (getattr(type(dataset), "labels_in_one_tensor", False) and isinstance(labels, torch.Tensor)
            and labels.ndim >= 1 and len(labels) == len(dataset))


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point() and tensor.dtype not in (torch.float16, torch.float32, torch.float64):
        tensor = tensor.float()  # bfloat16 and the float8 types have no numpy dtype
    return tensor.numpy()


def _sequence_label_values(examples, label_keys) -> tuple[str, Any, np.ndarray] | None:
    if not examples or not all(isinstance(example, Mapping) for example in examples):
        return None
    column = next((key for key in label_keys if key in examples[0]), None)
    if column is None:
        return None
    missing = next((i for i, example in enumerate(examples) if column not in example), None)
    if missing is not None:
        raise ValueError(f"example {missing} has no {column!r} but example 0 has: give every example a label")
    raw = [_numpy(value) if isinstance(value, torch.Tensor) else value for value in (e[column] for e in examples)]
    if all(np.ndim(value) == 0 for value in raw):
        kinds = {np.asarray(value).dtype.kind for value in raw}
        if kinds & set("USO") and kinds - set("USO"):  # numbers and strings: keep them apart, as Arrow would not
            return column, None, np.asarray(raw, dtype=object)
        return column, None, np.asarray(raw)
    return _stacked(column, None, raw)


def _stacked(column: str, feature, raw) -> tuple[str, Any, np.ndarray]:
    if isinstance(raw, np.ndarray) and raw.dtype != object:
        return column, feature, raw
    try:
        return column, feature, np.stack([np.asarray(row) for row in raw])
    except ValueError as error:  # rows of different lengths
        raise ValueError(
            f"the labels in {column!r} have rows of different lengths ({error}); give every example a label of the "
            "same shape"
        ) from error


def check_dataset_labels(dataset, label_keys, num_labels: int, problem_type: str, *, split: str,
                         allow_ignored: bool, read_examples: bool = True) -> None:
    """The labels of ``dataset`` against the model (see `check_class_ids`, `check_float_labels`), where
    `label_values` can read them; other datasets are checked batch by batch in the loss."""
    found = label_values(dataset, label_keys, read_examples=read_examples)
    if found is None:
        return
    column, feature, values = found
    kind = values.dtype.kind
    if kind in "USO":
        raise ValueError(
            f"the {split} labels in {column!r} are {'strings' if kind in 'US' else 'not numbers'} ({_shown(values[:50])}, "
            f"...): encode them as class ids with dataset.class_encode_column({column!r}), or cast the column to a "
            "ClassLabel with the class names"
        )
    if kind == "b":
        values = values.astype(np.float32)
        kind = "f"
    if problem_type == SINGLE_LABEL and values.ndim == 1 and (kind in "iu" or np.all(values == np.round(values))):
        check_class_ids(values, num_labels, column=column, split=split, allow_ignored=allow_ignored)
        return
    if problem_type == MULTI_LABEL and values.ndim == 1 and kind in "iu":
        raise ValueError(
            f"the {split} labels in {column!r} are class ids, but the model is multi-label "
            f"(config.problem_type={MULTI_LABEL!r}): give multi-hot rows of width {num_labels}"
        )
    check_float_labels(values.astype(np.float64), num_labels, problem_type, column=column, split=split)


def check_spatial_inputs(example: dict[str, Any], label_keys, what: str) -> None:
    """CutMix pastes boxes along two spatial axes: the example's floating-point inputs must be at least
    ``[channels, height, width]``."""
    shapes = {
        key: tuple(torch.as_tensor(value).shape)
        for key, value in example.items()
        if key not in label_keys and torch.is_floating_point(torch.as_tensor(value))
    }
    if shapes and any(len(shape) >= 3 for shape in shapes.values()):
        return
    described = ", ".join(f"{key!r} of shape {list(shape)} per example" for key, shape in shapes.items()) or "no float inputs"
    raise ValueError(
        f"{what} pastes boxes along two spatial axes, but the inputs have none ({described}; CutMix needs "
        "[channels, height, width] per example): set cutmix_alpha=0 and cutmix_minmax=None (mixup still mixes them)"
    )


def check_settings_for_model(args, problem_type: str) -> None:
    """The mixing settings ``args`` against the model and the processes: partners by class need single-label
    classification, and hidden-layer sites one process per GPU (DataParallel splits the batch over replicas)."""
    if args.mixup_partner != "random" and problem_type != SINGLE_LABEL:
        raise ValueError(
            f"mixup_partner={args.mixup_partner!r} pairs examples by class: it needs single-label classification; "
            f"this model is {problem_type}: use mixup_partner='random'"
        )
    if args.mixup_layer and args.n_gpu > 1:
        raise ValueError(
            "mixup_layer > 0 does not work with DataParallel (several GPUs in one process): each replica "
            "sees part of the batch; launch one process per GPU (accelerate launch / torchrun) instead"
        )


def check_batch_class_ids(labels: torch.Tensor, num_labels: int, *, column: str, mixed: bool) -> None:
    """The class ids of one training batch in range (for datasets the trainer cannot read ahead): `check_class_ids`,
    run only when something is out of range, so a good batch costs one reduction on its device."""
    if labels.numel() == 0:
        return
    low, high = torch.aminmax(labels)
    if 0 <= int(low) and int(high) < num_labels:
        return
    ignored = labels == IGNORE_INDEX
    if mixed and bool(ignored.any()):
        raise ValueError(
            f"mixup needs a class id for every training example; found labels of -100 in {int(ignored.sum())} "
            f"example(s) of {column!r}: drop those examples from the training set, or train ERM (mixup_alpha=0)"
        )
    if bool(((labels < 0) & ~ignored).any() | (labels >= num_labels).any()):
        check_class_ids(labels.cpu(), num_labels, column=column, split="training", allow_ignored=not mixed)


def check_trainer_inputs(trainer) -> None:
    """`MixupTrainer.check_inputs`: the labels of the training and evaluation sets against the model (`-100`
    allowed in evaluation, and in training without mixing), and spatial axes in the inputs when CutMix is on
    (on the device or in the trainer's `DataCollatorForMixup`)."""
    keys = list(dict.fromkeys([trainer.label_key, "labels", "label"]))
    evaluation = trainer.eval_dataset
    evaluation = list(evaluation.values()) if isinstance(evaluation, dict) else [evaluation]
    read_examples = passes_labels_through(trainer.data_collator)
    for dataset, split, allow_ignored in (
        (trainer.train_dataset, "training", not trainer.args.mixing_enabled),
        *((data, "evaluation", True) for data in evaluation),
    ):
        if dataset is not None:
            check_dataset_labels(dataset, keys, trainer.num_labels, trainer.problem_type, split=split,
                                 allow_ignored=allow_ignored, read_examples=read_examples)
    collator = trainer._mixup_collator
    cutmix = trainer.mixer.cutmix_enabled or (collator is not None and collator._mixer.cutmix_enabled)
    example = first_example(trainer.train_dataset) if cutmix and trainer.train_dataset is not None else None
    if example is not None:
        from .neighbours import PARTNER_PREFIX

        partner_keys = [key for key in example if key.startswith(PARTNER_PREFIX)]
        check_spatial_inputs(example, keys + partner_keys, "CutMix (cutmix_alpha / cutmix_minmax)")


def first_example(dataset) -> dict[str, Any] | None:
    """The first example of ``dataset`` as it gives it (transforms applied), drawn without moving any global random
    generator, so a checked run trains exactly as an unchecked one; None for an empty or unsized dataset, or an
    example that is not a dict."""
    try:
        if len(dataset) == 0:
            return None
    except TypeError:
        return None
    import random

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            example = dataset[0]
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return example if isinstance(example, dict) else None
