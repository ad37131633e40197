"""Tables: the preprocessing that turns raw rows into the model's ``input_values``, kept with the checkpoint.

`TabularPreprocessor` is fitted on the training split (feature names, numeric means and standard
deviations, categorical vocabularies, label names or the regression target's scale) and saved as
``preprocessor_config.json`` (it is a transformers ``FeatureExtractionMixin``, so
``AutoFeatureExtractor.from_pretrained(checkpoint)`` finds it); `TabularMLPConfig` carries a copy, so a
model loaded with ``from_pretrained`` predicts on raw rows (a dict, a list of dicts, a pandas DataFrame
or a datasets ``Dataset``) with nothing else.

Numeric columns are standardised with the training mean and standard deviation; categorical columns
(strings, booleans, ``ClassLabel``) are one-hot encoded with one extra slot for values not seen in
training (and for missing ones). Missing numeric values are refused with a message naming the column,
or replaced by the training mean with ``missing="mean"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature
from transformers.feature_extraction_utils import FeatureExtractionMixin

from .._extras import require

CLASSIFICATION = "single_label_classification"
REGRESSION = "regression"
MULTI_LABEL = "multi_label_classification"
TASKS = ("auto", CLASSIFICATION, REGRESSION, MULTI_LABEL)
MISSING = ("error", "mean")


def to_frame(rows: Any):
    """A pandas DataFrame from a DataFrame, a datasets ``Dataset``, one row as a dict of scalars, a dict
    of columns, or a list of row dicts."""
    pd = require("pandas", "tabular", "hf_mixup's table preprocessing")

    if isinstance(rows, pd.DataFrame):
        frame = rows
    elif hasattr(rows, "to_pandas") and hasattr(rows, "column_names"):
        frame = rows.to_pandas()
    elif isinstance(rows, Mapping):
        frame = pd.DataFrame([dict(rows)]) if all(np.ndim(v) == 0 for v in rows.values()) else pd.DataFrame(dict(rows))
    elif isinstance(rows, Sequence) and rows and all(isinstance(r, Mapping) for r in rows):
        frame = pd.DataFrame(list(rows))
    else:
        frame = None
    if frame is not None:
        if any(not isinstance(c, str) for c in frame.columns):  # names are JSON keys in the saved config
            frame = frame.rename(columns=str)
        return frame
    raise ValueError(
        "rows must be a pandas DataFrame, a datasets Dataset, a dict (one row, or one list per column) "
        f"or a list of row dicts; got {type(rows).__name__}"
    )


def _is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _label_order(column: str):
    """Sort key of class values: numbers or strings, not both (a column holding both is a mistake in the data:
    `1` and `"1"` would be two classes)."""
    kinds: set[str] = set()

    def key(value):
        kind = "text" if isinstance(value, str) else "number"
        kinds.add(kind)
        if len(kinds) > 1:
            raise ValueError(
                f"label column {column!r} mixes numbers and strings (e.g. {value!r}): give every label as a number or "
                "every label as a string (the class names), in every file and split"
            )
        return value

    return key


def _check_one_label_per_row(series, column: str) -> None:
    """A table's label column holds one class or target per row: lists or arrays (soft labels, several labels in
    one cell) are refused with the column, an example and what to give instead."""
    nested = series[series.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray)))]
    if len(nested):
        example = repr(nested.iloc[0] if not isinstance(nested.iloc[0], np.ndarray) else nested.iloc[0].tolist())
        example = example if len(example) <= 40 else example[:37] + "..."
        raise ValueError(
            f"label column {column!r} holds several values per row (e.g. {example} in {len(nested)} row(s)): a table "
            "takes one class or target per row in each label column; for several labels give one 0/1 column per "
            "label (--label_column a b ...)"
        )


def _category(value: Any) -> str | None:
    """A value as the text that names its category or class: the same text whether the column holds
    ints, or floats because a gap made pandas upcast it (1 and 1.0 are both "1")."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


class TabularPreprocessor(FeatureExtractionMixin):
    """Raw table rows to standardised ``input_values`` ``[batch, num_features]`` (and labels to targets).

    Fit it with :meth:`fit` on the training rows; call it on rows to get a ``BatchFeature``;
    :meth:`encode_labels` gives the training targets; :meth:`decode` turns model outputs into labels
    or values in the table's own units.
    """

    model_input_names = ["input_values"]

    def __init__(
        self,
        numeric_features: list[str] | None = None,
        means: list[float] | None = None,
        stds: list[float] | None = None,
        categorical_features: list[str] | None = None,
        vocabularies: dict[str, list[str]] | None = None,
        label_columns: list[str] | None = None,
        task: str = CLASSIFICATION,
        label_names: list[str] | None = None,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        missing: str = "error",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if task not in TASKS[1:]:
            raise ValueError(f"task must be one of {TASKS[1:]}, got {task!r}")
        if missing not in MISSING:
            raise ValueError(f"missing must be one of {MISSING}, got {missing!r}")
        self.numeric_features = list(numeric_features or [])
        self.means = [float(v) for v in (means or [])]
        self.stds = [float(v) for v in (stds or [])]
        self.categorical_features = list(categorical_features or [])
        self.vocabularies = {k: list(v) for k, v in (vocabularies or {}).items()}
        self.label_columns = list(label_columns or [])
        self.task = task
        self.label_names = list(label_names or [])
        self.target_mean = float(target_mean)
        self.target_std = float(target_std)
        self.missing = missing

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        rows: Any,
        label_columns: str | Sequence[str],
        feature_columns: Sequence[str] | None = None,
        task: str = "auto",
        missing: str = "error",
        label_names: Sequence[str] | None = None,
        categorical_columns: Sequence[str] | None = None,
    ) -> TabularPreprocessor:
        """Learn the preprocessing from the training rows.

        ``label_columns``: one column (classification or regression), or several 0/1 columns (multi-label).
        ``feature_columns``: default, every other column. ``task``: ``auto`` picks multi-label for several
        label columns, regression for a float column with non-integer values, classification otherwise.
        ``label_names``: class names in id order (e.g. from a ``ClassLabel``); default, the sorted values.
        ``categorical_columns``: numeric columns to treat as categories (e.g. integer codes).
        """
        frame = to_frame(rows)
        labels = [label_columns] if isinstance(label_columns, str) else list(label_columns)
        if not labels:
            raise ValueError("give at least one label column")
        missing_columns = [c for c in labels + list(feature_columns or []) if c not in frame.columns]
        if missing_columns:
            raise ValueError(f"columns {missing_columns} are not in the table; its columns are {list(frame.columns)}")
        for column in labels:
            _check_one_label_per_row(frame[column], column)
        features = list(feature_columns) if feature_columns else [c for c in frame.columns if c not in labels]
        overlap = sorted(set(features) & set(labels))
        if overlap:
            raise ValueError(f"columns {overlap} are both features and labels; leave them out of --feature_columns")
        if not features:
            raise ValueError("the table has no feature columns besides the labels")
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if task == "auto":
            task = cls._guess_task(frame, labels)
        forced = set(categorical_columns or [])
        numeric = [c for c in features if _is_numeric(frame[c]) and c not in forced]
        categorical = [c for c in features if c not in numeric]
        means, stds = [], []
        for column in numeric:
            values = frame[column].astype("float64")
            if values.isna().all():
                raise ValueError(f"column {column!r} has no values in the training rows; leave it out of the features")
            if values.isna().any() and missing == "error":
                raise ValueError(
                    f"column {column!r} has {int(values.isna().sum())} missing values in the training rows; "
                    "fill them in, drop the column (--feature_columns), or pass missing='mean' (--missing_values mean) "
                    "to replace them by the training mean"
                )
            means.append(float(values.mean()))
            std = float(values.std(ddof=0))
            stds.append(std if std > 0 else 1.0)
        vocabularies = {}
        for column in categorical:
            seen = {_category(v) for v in frame[column].tolist()} - {None}
            vocabularies[column] = sorted(seen)
        processor = cls(
            numeric_features=numeric, means=means, stds=stds, categorical_features=categorical,
            vocabularies=vocabularies, label_columns=labels, task=task, missing=missing,
        )
        if task == CLASSIFICATION:
            column = frame[labels[0]]
            if column.isna().any():
                raise ValueError(f"label column {labels[0]!r} has {int(column.isna().sum())} missing values; drop those rows")
            if label_names is not None:
                processor.label_names = [str(n) for n in label_names]
            else:
                processor.label_names = [_category(v) for v in sorted(column.unique().tolist(), key=_label_order(labels[0]))]
        elif task == REGRESSION:
            target = frame[labels[0]].astype("float64")
            if target.isna().any():
                raise ValueError(f"target column {labels[0]!r} has {int(target.isna().sum())} missing values; drop those rows")
            processor.target_mean = float(target.mean())
            processor.target_std = float(target.std(ddof=0)) or 1.0
        else:
            processor.label_names = labels
        return processor

    @staticmethod
    def _guess_task(frame, labels: list[str]) -> str:
        import pandas as pd

        if len(labels) > 1:
            return MULTI_LABEL
        column = frame[labels[0]]
        if pd.api.types.is_float_dtype(column):
            values = column.dropna().to_numpy()
            if not np.all(np.equal(np.mod(values, 1), 0)) or len(np.unique(values)) > 50:
                return REGRESSION
        return CLASSIFICATION

    # ------------------------------------------------------------------ encoding
    @property
    def num_features(self) -> int:
        return len(self.numeric_features) + sum(len(v) + 1 for v in self.vocabularies.values())

    @property
    def num_labels(self) -> int:
        return 1 if self.task == REGRESSION else len(self.label_names)

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded features, in order (``column=value`` for one-hot slots)."""
        names = list(self.numeric_features)
        for column in self.categorical_features:
            names += [f"{column}={value}" for value in self.vocabularies[column]] + [f"{column}=<other>"]
        return names

    def encode(self, rows: Any) -> np.ndarray:
        """``[rows, num_features]`` float32 array of the features."""
        frame = to_frame(rows)
        absent = [c for c in self.numeric_features + self.categorical_features if c not in frame.columns]
        if absent:
            raise ValueError(f"rows lack the feature columns {absent} the model was trained with")
        out = np.zeros((len(frame), self.num_features), dtype=np.float32)
        for k, column in enumerate(self.numeric_features):
            try:
                values = frame[column].astype("float64").to_numpy()
            except (TypeError, ValueError) as error:
                raise ValueError(f"column {column!r} must hold numbers: {error}") from None
            gaps = np.isnan(values)
            if gaps.any():
                if self.missing == "error":
                    raise ValueError(
                        f"column {column!r} has {int(gaps.sum())} missing values; fill them in, or fit with "
                        "missing='mean' to replace them by the training mean"
                    )
                values = np.where(gaps, self.means[k], values)
            out[:, k] = (values - self.means[k]) / self.stds[k]
        offset = len(self.numeric_features)
        for column in self.categorical_features:
            vocabulary = self.vocabularies[column]
            slot = {value: i for i, value in enumerate(vocabulary)}
            codes = np.array([slot.get(_category(v), len(vocabulary)) for v in frame[column].tolist()], dtype=np.int64)
            out[np.arange(len(frame)), offset + codes] = 1.0
            offset += len(vocabulary) + 1
        return out

    def __call__(self, rows: Any, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        return BatchFeature({"input_values": self.encode(rows)}, tensor_type=return_tensors)

    def encode_labels(self, rows: Any) -> np.ndarray:
        """Training targets: class ids (int64), standardised values (float32 ``[rows, 1]``) or multi-hot
        (float32 ``[rows, labels]``)."""
        frame = to_frame(rows)
        absent = [c for c in self.label_columns if c not in frame.columns]
        if absent:
            raise ValueError(f"rows lack the label columns {absent}")
        if self.task == CLASSIFICATION:
            index = {name: i for i, name in enumerate(self.label_names)}
            values = [_category(v) for v in frame[self.label_columns[0]].tolist()]
            unknown = sorted(set(values) - set(index))
            if unknown:
                raise ValueError(f"label column {self.label_columns[0]!r} has values {unknown[:5]} not among the "
                                 f"classes {self.label_names[:10]}")
            return np.array([index[v] for v in values], dtype=np.int64)
        if self.task == REGRESSION:
            values = frame[self.label_columns[0]].astype("float64").to_numpy()
            return ((values - self.target_mean) / self.target_std).astype(np.float32)[:, None]
        values = frame[self.label_columns].astype("float64").to_numpy()
        if np.isnan(values).any() or not np.isin(values, (0.0, 1.0)).all():
            raise ValueError(f"multi-label columns {self.label_columns} must hold 0/1 (or booleans) without gaps")
        return values.astype(np.float32)

    def decode(self, logits: torch.Tensor) -> list[Any]:
        """Model outputs to predictions: ``{"label", "score"}`` per row (classification), a value in the
        target's units (regression), or the list of labels whose probability is at least 0.5 (multi-label)."""
        logits = logits.detach().float().cpu()
        if self.task == REGRESSION:
            return (logits[:, 0] * self.target_std + self.target_mean).tolist()
        if self.task == MULTI_LABEL:
            probs = logits.sigmoid()
            return [[self.label_names[j] for j in range(probs.shape[1]) if probs[i, j] >= 0.5] for i in range(len(probs))]
        probs = logits.softmax(-1)
        scores, ids = probs.max(-1)
        return [{"label": self.label_names[i], "score": s} for i, s in zip(ids.tolist(), scores.tolist())]


class TensorTable(torch.utils.data.Dataset):
    """Encoded rows held as tensors. Tables are small, so this beats an Arrow-backed ``Dataset`` whose per-row
    formatting costs more than a step of a small MLP.

    ``table[i]`` is one row ``{"input_values": [F] float32, "labels": ...}``; ``table.__getitems__(indices)``
    (what a `DataLoader` calls when a dataset has it) is the whole batch ``{"input_values": [B, F],
    "labels": [B, ...]}`` in one gather, equal to stacking the rows. A batch is a dict, not a list of rows:
    train with `hf_mixup.data.in_memory.collate_batches` as the collator (`MixupTrainer` takes it in place
    of the Trainer's default collator; a plain `DataLoader` needs ``collate_fn=collate_batches``).
    """

    labels_in_one_tensor = True  # `checks.label_values` reads ``self.labels`` before training

    def __init__(self, input_values: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor | None = None):
        self.input_values = torch.as_tensor(input_values)
        self.labels = None if labels is None else torch.as_tensor(labels)
        if self.labels is not None and len(self.labels) != len(self.input_values):
            raise ValueError(f"{len(self.input_values)} rows of features but {len(self.labels)} labels")

    @classmethod
    def from_rows(cls, preprocessor: TabularPreprocessor, rows: Any, with_labels: bool = True) -> TensorTable:
        frame = to_frame(rows)
        return cls(preprocessor.encode(frame), preprocessor.encode_labels(frame) if with_labels else None)

    def __len__(self) -> int:
        return len(self.input_values)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = {"input_values": self.input_values[i]}
        if self.labels is not None:
            row["labels"] = self.labels[i]
        return row

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        batch = {"input_values": self.input_values.index_select(0, index)}
        if self.labels is not None:
            batch["labels"] = self.labels.index_select(0, index)
        return batch


def split_table(frame, label_column: str | None, test_fraction: float, seed: int, stratify: bool = True):
    """(train, test) row frames: a split fixed by ``seed``, stratified by ``label_column`` when asked
    (classification), with every class on both sides where the class has at least two rows."""
    require("sklearn", "tabular", "split_table")
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"the held-out share must be between 0 and 1, got {test_fraction}")
    index = np.arange(len(frame))
    labels = frame[label_column].astype(str).to_numpy() if (stratify and label_column is not None) else None
    if labels is not None:
        values, counts = np.unique(labels, return_counts=True)
        if counts.min() < 2:
            raise ValueError(
                f"cannot stratify on {label_column!r}: class {values[counts.argmin()]!r} has a single row; "
                "drop it or give the dataset a test split"
            )
    try:
        train_idx, test_idx = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=labels)
    except ValueError as error:  # e.g. a held-out share with fewer rows than there are classes
        raise ValueError(f"cannot hold out {test_fraction:.0%} of {len(frame)} rows stratified by {label_column!r}: "
                         f"{error}; raise --validation_split_percentage or give the dataset a test split") from None
    return frame.iloc[np.sort(train_idx)].reset_index(drop=True), frame.iloc[np.sort(test_idx)].reset_index(drop=True)


def regression_metrics_in_units(preprocessor: TabularPreprocessor):
    """`compute_metrics` for a regression table: MSE, RMSE and MAE in the target's own units (the model
    is trained on standardised targets), R2 unchanged."""
    from ..metrics import regression_metrics

    scale, shift = preprocessor.target_std, preprocessor.target_mean

    def compute(eval_pred):
        from transformers import EvalPrediction

        predictions = eval_pred.predictions
        if isinstance(predictions, (tuple, list)):
            predictions = predictions[0]
        predictions = np.asarray(predictions, dtype=np.float64) * scale + shift
        labels = np.asarray(eval_pred.label_ids, dtype=np.float64) * scale + shift
        return regression_metrics(EvalPrediction(predictions=predictions, label_ids=labels))

    return compute
