"""Corrupted labels (Section 3.4, Table 2): memorisation of random labels with and without mixup.

- `corrupt_labels`: re-draw each training label, with probability ``fraction``, uniformly from all the
  classes, as the code the paper adapted does (Zhang et al., 2017, "Understanding deep learning requires
  rethinking generalization"); the true label is kept in a ``clean_label`` column.
- `training_errors` / `memorisation_errors`: Table 2's training errors, "Real" (on the examples whose
  label was kept, against that label) and "Corrupted" (on the examples whose label changed, against the
  new, wrong label), from unmixed predictions on the training images.
- `MemorisationCallback`: those errors at the end of training (and after every epoch when asked), for a
  `Trainer` / `MixupTrainer`.
- `best_and_last_test_error`: Table 2's "Best" and "Last" test errors from a trainer's log history.

Every error here is a fraction in [0, 1] (Table 2 prints percentages).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from transformers import TrainerCallback

CLEAN_LABEL_COLUMN = "clean_label"


def corrupt_labels(dataset, fraction: float, *, seed: int = 0, label_column: str = "label", num_classes: int | None = None):
    """A copy of ``dataset`` in which each example, independently with probability ``fraction``, gets a
    label drawn uniformly from all ``num_classes`` classes (the true one included, so with 10 classes
    about 0.9 x ``fraction`` of the labels end up wrong).

    Args:
        dataset: a `datasets.Dataset` with a column of class ids ``label_column`` (N rows).
        fraction: probability in [0, 1] that an example's label is re-drawn; 0 keeps every label, 1
            re-draws them all.
        seed: seed of the `numpy.random.Generator` that draws which labels change and their new values
            (the global random state is neither used nor changed): the same seed gives the same labels.
        label_column: the column to corrupt.
        num_classes: the number of classes; taken from the column when it is a `ClassLabel` (and must
            then agree with it), required for a plain integer column.

    Returns:
        A `datasets.Dataset` with the same rows, columns and format, the corrupted labels in
        ``label_column`` and the original ones in a new last column ``clean_label``, both of the original
        feature type. Examples whose label changed are those with ``label != clean_label``. Fast: N
        random draws and one new column (a dataset with an indices mapping, such as a `select`, is
        flattened by `add_column` first).

    Raises:
        ValueError: ``fraction`` outside [0, 1]; ``label_column`` missing or not class ids; labels
            outside ``0..num_classes - 1``; a ``clean_label`` column already there.
    """
    fraction = _check_fraction(fraction)
    if label_column not in dataset.column_names:
        raise ValueError(f"label_column={label_column!r} is not a column of the dataset; its columns are {dataset.column_names}")
    if CLEAN_LABEL_COLUMN in dataset.column_names:
        raise ValueError(
            f"the dataset already has a {CLEAN_LABEL_COLUMN!r} column (are its labels corrupted already?): corrupt the "
            f"original dataset, or remove that column first"
        )
    feature = dataset.features[label_column]
    num_classes = _num_classes_of(feature, label_column, num_classes)
    labels = np.asarray(dataset.with_format("numpy", columns=[label_column])[:][label_column])
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"label_column={label_column!r} must hold one class id per example, got values of dtype {labels.dtype} "
            f"and shape {labels.shape}; cast it with dataset.class_encode_column({label_column!r})"
        )
    outside = (labels < 0) | (labels >= num_classes)
    if outside.any():
        raise ValueError(
            f"label_column={label_column!r} holds {int(outside.sum())} labels outside 0..{num_classes - 1} (e.g. "
            f"{labels[outside][:5].tolist()}); drop those rows or give the right num_classes"
        )

    rng = np.random.default_rng(seed)
    redraw = rng.random(len(labels)) < fraction
    noisy = labels.astype(np.int64, copy=True)
    noisy[redraw] = rng.integers(0, num_classes, size=int(redraw.sum()))

    out = dataset.rename_column(label_column, CLEAN_LABEL_COLUMN)
    out = out.add_column(label_column, noisy, feature=feature)
    out = out.select_columns(dataset.column_names + [CLEAN_LABEL_COLUMN])  # the input's column order
    return _with_format_of(dataset, out, label_column)


def _with_format_of(source, out, label_column: str):
    """``out`` formatted as ``source`` is (`add_column` returns an unformatted dataset), the clean labels
    shown wherever the labels are."""
    fmt = source.format
    columns = list(fmt["columns"])
    if columns == list(source.column_names):  # every column
        if fmt["type"] is None:
            return out
        columns = None
    elif label_column in columns:
        columns.append(CLEAN_LABEL_COLUMN)
    return out.with_format(fmt["type"], columns=columns, output_all_columns=fmt["output_all_columns"], **fmt["format_kwargs"])


def _check_fraction(fraction: float) -> float:
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise ValueError(f"fraction must be a number in [0, 1] (the share of labels re-drawn), got {fraction!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(
            f"fraction must be in [0, 1] (the probability that a label is re-drawn; 0.5 for half of them), got {fraction!r}"
        )
    return value


def _num_classes_of(feature, label_column: str, num_classes: int | None) -> int:
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        if num_classes is not None and int(num_classes) != feature.num_classes:
            raise ValueError(
                f"num_classes={num_classes} but the ClassLabel column {label_column!r} has {feature.num_classes} "
                "classes; leave num_classes out"
            )
        return int(feature.num_classes)
    if num_classes is None:
        raise ValueError(
            f"label_column={label_column!r} is {feature!r}, not a ClassLabel: give num_classes=..., or cast it to "
            f"class ids with dataset.class_encode_column({label_column!r})"
        )
    if not (isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint"))):
        raise ValueError(
            f"label_column={label_column!r} is {feature!r}, not class ids; cast it with "
            f"dataset.class_encode_column({label_column!r})"
        )
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    return int(num_classes)


def training_errors(predicted, labels, clean_labels) -> dict[str, float]:
    """Table 2's training errors from class predictions.

    Args:
        predicted: predicted class ids, shape [N].
        labels: the (corrupted) training labels, shape [N].
        clean_labels: the original labels, shape [N]; example i is corrupted when ``labels[i] != clean_labels[i]``.

    Returns:
        ``train_error_real``: share of the uncorrupted examples whose prediction differs from their label;
        ``train_error_corrupted``: share of the corrupted examples whose prediction differs from their
        (wrong) label; ``train_corrupted_fraction``: share of the N examples that are corrupted. Fractions
        in [0, 1]; an error over no examples is NaN.
    """
    predicted, labels, clean = (np.asarray(a).reshape(-1) for a in (predicted, labels, clean_labels))
    if not len(predicted) == len(labels) == len(clean):
        raise ValueError(
            f"predicted, labels and clean_labels need one entry per example, got {len(predicted)}, {len(labels)} and {len(clean)}"
        )
    wrong = predicted != labels
    corrupted = labels != clean

    def share(mask: np.ndarray) -> float:
        return float(wrong[mask].mean()) if mask.any() else math.nan

    return {
        "train_error_real": share(~corrupted),
        "train_error_corrupted": share(corrupted),
        "train_corrupted_fraction": float(corrupted.mean()) if len(corrupted) else math.nan,
    }


def _label_arrays(dataset, label_column: str, clean_label_column: str) -> tuple[np.ndarray, np.ndarray]:
    """The raw label and clean-label columns of ``dataset`` (whatever transform it carries), shape [N] each."""
    missing = [c for c in (label_column, clean_label_column) if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"the dataset has no column {missing} (its columns are {dataset.column_names}): pass the output of "
            "corrupt_labels, with label_column / clean_label_column naming its label columns"
        )
    raw = dataset.with_format("numpy", columns=[label_column, clean_label_column])[:]
    return np.asarray(raw[label_column]).reshape(-1), np.asarray(raw[clean_label_column]).reshape(-1)


def memorisation_errors(
    trainer, dataset, *, label_column: str = "label", clean_label_column: str = CLEAN_LABEL_COLUMN
) -> dict[str, float]:
    """Table 2's training errors of ``trainer``'s model, as it is now, on ``dataset``.

    Args:
        trainer: a `Trainer` (a `MixupTrainer` never mixes in prediction); its model is run in eval mode
            through `trainer.predict`, so dropout is off and the batches are the trainer's unmixed ones.
        dataset: the training set as `corrupt_labels` returns it (N rows), formatted (for example with
            `set_transform`) to give the model's inputs with the evaluation preprocessing, no augmentation.
            Its raw ``label_column`` and ``clean_label_column`` are read directly, in row order.
        label_column, clean_label_column: the raw columns of the corrupted and of the original labels.

    Returns:
        ``{"train_error_real", "train_error_corrupted", "train_corrupted_fraction"}`` as in `training_errors`.
    """
    labels, clean = _label_arrays(dataset, label_column, clean_label_column)
    output = trainer.predict(dataset, metric_key_prefix="memorisation")
    logits = output.predictions[0] if isinstance(output.predictions, (tuple, list)) else output.predictions
    logits = np.asarray(logits)
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(
            f"memorisation errors need class scores [N={len(labels)}, num_classes] from the model, got predictions "
            f"of shape {logits.shape}: use a single-label classifier"
        )
    return training_errors(logits.argmax(-1), labels, clean)


class MemorisationCallback(TrainerCallback):
    """Table 2's training errors on real and on corrupted labels, for a run on `corrupt_labels` output.

    At the end of training the errors go to ``self.final`` (and to the trainer's log), next to the
    ``test_error`` (last) and ``best_test_error`` of the evaluations in the log history, if any; with
    ``every_epoch=True`` they are also computed and logged (``train_error_real``,
    ``train_error_corrupted``, ``train_corrupted_fraction``) at the end of every epoch, and kept in
    ``self.history`` as ``{"epoch", "step", ...}`` rows. Each computation is one `trainer.predict` pass
    over ``dataset`` (see `memorisation_errors`).

        callback = MemorisationCallback(trainer, train_with_eval_transform, every_epoch=True)
        trainer.add_callback(callback)
        trainer.train()
        callback.final  # {"train_error_real": ..., "train_error_corrupted": ..., ...}

    Args:
        trainer: the trainer to evaluate with (callbacks are not handed the trainer, so it is held here).
        dataset: the corrupted training set with the evaluation preprocessing (see `memorisation_errors`).
        every_epoch: also compute and log the errors after every epoch.
        label_column, clean_label_column: raw label columns of ``dataset``.
    """

    def __init__(
        self,
        trainer,
        dataset,
        *,
        every_epoch: bool = False,
        label_column: str = "label",
        clean_label_column: str = CLEAN_LABEL_COLUMN,
    ):
        _label_arrays(dataset, label_column, clean_label_column)  # fail now, not after training
        self.trainer = trainer
        self.dataset = dataset
        self.every_epoch = bool(every_epoch)
        self.label_column = label_column
        self.clean_label_column = clean_label_column
        self.final: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self._last: tuple[int, dict[str, float]] | None = None

    def compute(self) -> dict[str, float]:
        """The errors of the trainer's model now (see `memorisation_errors`)."""
        return memorisation_errors(
            self.trainer, self.dataset, label_column=self.label_column, clean_label_column=self.clean_label_column
        )

    def on_epoch_end(self, args, state, control, **kwargs):
        if not self.every_epoch:
            return
        errors = self.compute()
        self._last = (state.global_step, errors)
        self.history.append({"epoch": state.epoch, "step": state.global_step, **errors})
        self.trainer.log(dict(errors))

    def on_train_end(self, args, state, control, **kwargs):
        # The last epoch's figures still hold unless the best checkpoint was loaded since.
        if self._last is not None and self._last[0] == state.global_step and not args.load_best_model_at_end:
            errors = self._last[1]
        else:
            errors = self.compute()
            self.trainer.log(dict(errors))
        self.final = {**errors, **best_and_last_test_error(state.log_history)}


def best_and_last_test_error(log_history: list[dict[str, Any]], prefixes: tuple[str, ...] = ("eval", "test")) -> dict[str, float]:
    """Table 2's "Best" and "Last" test errors from a trainer's ``state.log_history``.

    Every entry with ``<prefix>_accuracy`` (the per-epoch ``eval_accuracy``, the final ``test_accuracy``)
    is one evaluation, with error ``1 - accuracy``. Returns ``{"test_error": last, "best_test_error":
    lowest}`` (fractions in [0, 1]), or ``{}`` when there was no evaluation.
    """
    errors = []
    for entry in log_history:
        for prefix in prefixes:
            key = f"{prefix}_accuracy"
            if key in entry:
                errors.append(1.0 - float(entry[key]))
    if not errors:
        return {}
    return {"test_error": errors[-1], "best_test_error": min(errors)}
