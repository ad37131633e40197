"""`pipeline("tabular-classification")` and `pipeline("tabular-regression")` for table runs.

`import hf_mixup` registers both tasks with transformers' ``PIPELINE_REGISTRY``; the registration imports
nothing beyond transformers (pandas is imported when a pipeline is first called). A table run's folder
(``hf-mixup train --dataset_name wine --output_dir runs/wine``) then predicts on raw rows::

    import hf_mixup
    from transformers import pipeline

    classify = pipeline("tabular-classification", model="runs/wine")
    classify({"alcohol": 13.2, "malic_acid": 1.8, ...})            # [{"label": "class_0", "score": 0.97}]
    classify([row_a, row_b], top_k=2)                              # [[{...}, {...}], [{...}, {...}]]
    classify(frame)                                                # a pandas DataFrame: one list per row

The rows go through the run's own fitted preprocessing (``config.preprocessing``, the same as the run's
``preprocessor_config.json``: column names, training means and deviations, category vocabularies), so
nothing is downloaded or refitted. Outputs follow ``text-classification`` called with ``top_k``: for each
row a list of ``{"label", "score"}`` sorted by score, the top ``top_k`` (default 1; ``None`` for every
class) of the softmax; multi-label runs give every label with its sigmoid score (``top_k`` defaults to
``None``). ``tabular-regression`` gives ``[{"label": <target column>, "score": <value>}]`` per row, the value
in the target's own units (``text-classification`` also names the output in ``label`` and puts the raw
value in ``score`` for a regression model). One dict in gives one row's list; a list of dicts, a DataFrame
or a datasets ``Dataset`` gives one list per row.

Each row must hold exactly the run's feature columns: a missing column or one the run does not know is a
``ValueError`` naming both and the expected columns. The run's label columns may be present and are
ignored, so a DataFrame of the test split can be passed as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transformers import AutoModel
from transformers.pipelines import PIPELINE_REGISTRY, Pipeline

CLASSIFICATION_TASK = "tabular-classification"
REGRESSION_TASK = "tabular-regression"
_FUNCTIONS = ("softmax", "sigmoid", "none")
_REGRESSION = "regression"  # TabularMLPConfig.problem_type values (hf_mixup.data.tabular, not imported here)
_MULTI_LABEL = "multi_label_classification"


def _pandas():
    try:
        import pandas as pd
    except ImportError as error:  # pragma: no cover - pandas comes with the `tabular` extra
        raise ImportError("the table pipelines need pandas: pip install 'hf_mixup[tabular]'") from error
    return pd


class _TabularPipeline(Pipeline):
    """Rows (dicts, a list of dicts, a pandas DataFrame or a datasets Dataset) through a table run's
    preprocessing and `TabularMLPForPrediction`. The whole input is encoded and run as one batch."""

    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False  # the preprocessing travels in config.preprocessing
    _load_tokenizer = False

    _task_name = ""
    _regression = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not getattr(self.model.config, "preprocessing", None) or not hasattr(self.model, "preprocessor"):
            raise ValueError(
                f"{self._task_name!r} needs a table model trained by hf_mixup (TabularMLPForPrediction, whose config "
                f"carries the fitted preprocessing); got {type(self.model).__name__}"
            )
        regression = self.model.config.problem_type == _REGRESSION
        if regression != self._regression:
            kind = "regression" if regression else "classification"
            raise ValueError(f"this run is a {kind} model ({self.model.config.problem_type}); "
                             f"use pipeline({REGRESSION_TASK if regression else CLASSIFICATION_TASK!r}, model=...)")

    @property
    def preprocessor(self):
        """The run's fitted `TabularPreprocessor` (a `feature_extractor=` given to `pipeline()` wins)."""
        extractor = self.feature_extractor
        if extractor is not None and hasattr(extractor, "encode") and hasattr(extractor, "numeric_features"):
            return extractor
        return self.model.preprocessor

    # ------------------------------------------------------------------ inputs
    def _rows(self, inputs: Any):
        """(DataFrame of the rows, whether one row was given on its own), after checking their columns."""
        pd = _pandas()
        single = False
        if isinstance(inputs, pd.Series):
            inputs, single = inputs.to_dict(), True
        if isinstance(inputs, pd.DataFrame):
            frame = inputs.rename(columns=str)
            self._check_columns(list(frame.columns), where="the DataFrame")
        elif hasattr(inputs, "to_pandas") and hasattr(inputs, "column_names"):  # a datasets Dataset
            frame = inputs.to_pandas().rename(columns=str)
            self._check_columns(list(frame.columns), where="the Dataset")
        elif isinstance(inputs, Mapping):
            self._check_row(inputs, None)
            frame, single = pd.DataFrame([{str(k): v for k, v in inputs.items()}]), True
        elif isinstance(inputs, Sequence) and not isinstance(inputs, (str, bytes)):
            for i, row in enumerate(inputs):
                self._check_row(row, i)
            frame = pd.DataFrame([{str(k): v for k, v in row.items()} for row in inputs])
        else:
            raise ValueError(f"{self._task_name} takes one row as a dict of column -> value, a list of such dicts, "
                             f"a pandas DataFrame or a datasets Dataset; got {type(inputs).__name__}")
        return frame, single

    def _check_row(self, row: Any, index: int | None) -> None:
        where = "the row" if index is None else f"row {index}"
        if not isinstance(row, Mapping):
            raise ValueError(f"{where} is a {type(row).__name__}; give each row as a dict of column -> value")
        pd = _pandas()
        nested = [str(k) for k, v in row.items() if not pd.api.types.is_scalar(v)]
        if nested:
            raise ValueError(f"{where} holds several values in the columns {nested}: give one row as a dict of "
                             "column -> value, several rows as a list of such dicts or a DataFrame")
        self._check_columns([str(k) for k in row], where=where)

    def _check_columns(self, columns: list[str], where: str) -> None:
        p = self.preprocessor
        expected = p.numeric_features + p.categorical_features
        missing = [c for c in expected if c not in columns]
        unknown = [c for c in columns if c not in expected and c not in p.label_columns]
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"lacks the columns {missing}")
            if unknown:
                problems.append(f"has columns the run was not trained on {unknown}")
            raise ValueError(
                f"{where} {' and '.join(problems)}; this run expects exactly the feature columns {expected} "
                f"(the label columns {p.label_columns} may be present and are ignored)"
            )

    # ------------------------------------------------------------------ the Pipeline protocol
    def __call__(self, inputs: Any, **kwargs: Any) -> list:
        frame, single = self._rows(inputs)
        if len(frame) == 0:
            return []
        outputs = super().__call__(frame, **kwargs)
        return outputs[0] if single else outputs

    def preprocess(self, frame, **preprocess_parameters) -> dict:
        return {"input_values": self.preprocessor(frame, return_tensors="pt")["input_values"]}

    def _forward(self, model_inputs: dict, **forward_parameters) -> dict:
        was_training = self.model.training
        self.model.eval()  # a model handed over in training mode keeps its dropout off here
        try:
            logits = self.model(input_values=model_inputs["input_values"].to(self.model.dtype)).logits
        finally:
            self.model.train(was_training)
        return {"logits": logits}

    def _label(self, i: int) -> str:
        id2label = self.model.config.id2label
        return id2label[i] if i in id2label else id2label[str(i)]


class TabularClassificationPipeline(_TabularPipeline):
    """``[{"label", "score"}]`` per row: the top ``top_k`` classes of the softmax (default 1; ``None``: all),
    or every label's sigmoid for a multi-label run; ``function_to_apply`` (``softmax``, ``sigmoid``, ``none``)
    as in ``text-classification``."""

    _task_name = CLASSIFICATION_TASK

    def _sanitize_parameters(self, top_k: Any = "unset", function_to_apply: str | None = None, **kwargs):
        kwargs.pop("local_files_only", None)  # pipeline() hands its loading flag on to the pipeline class
        if kwargs:
            raise TypeError(f"{self._task_name} got unexpected arguments {sorted(kwargs)}")
        postprocess = {}
        if top_k != "unset":
            if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
                raise ValueError(f"top_k must be a positive integer or None (every label), got {top_k!r}")
            postprocess["top_k"] = top_k
        if function_to_apply is not None:
            function_to_apply = str(getattr(function_to_apply, "value", function_to_apply)).lower()
            if function_to_apply not in _FUNCTIONS:
                raise ValueError(f"function_to_apply must be one of {_FUNCTIONS}, got {function_to_apply!r}")
            postprocess["function_to_apply"] = function_to_apply
        return {}, {}, postprocess

    def postprocess(self, model_outputs: dict, top_k: Any = "unset", function_to_apply: str | None = None) -> list:
        multi_label = self.model.config.problem_type == _MULTI_LABEL
        if function_to_apply is None:
            function_to_apply = "sigmoid" if multi_label else "softmax"
        if top_k == "unset":
            top_k = None if multi_label else 1
        logits = model_outputs["logits"].float()
        scores = {"softmax": lambda x: x.softmax(-1), "sigmoid": lambda x: x.sigmoid(), "none": lambda x: x}
        scores = scores[function_to_apply](logits)
        rows = []
        for row in scores.tolist():
            ranked = sorted(({"label": self._label(i), "score": s} for i, s in enumerate(row)),
                            key=lambda d: d["score"], reverse=True)
            rows.append(ranked if top_k is None else ranked[:top_k])
        return rows


class TabularRegressionPipeline(_TabularPipeline):
    """``[{"label": <target column>, "score": <prediction in the target's units>}]`` per row."""

    _task_name = REGRESSION_TASK
    _regression = True

    def _sanitize_parameters(self, **kwargs):
        kwargs.pop("local_files_only", None)
        if kwargs:
            raise TypeError(f"{self._task_name} takes no arguments besides the rows; got {sorted(kwargs)}")
        return {}, {}, {}

    def postprocess(self, model_outputs: dict) -> list:
        p = self.preprocessor
        values = model_outputs["logits"].float()[:, 0] * p.target_std + p.target_mean
        return [[{"label": self._label(0), "score": v}] for v in values.tolist()]


def register() -> None:
    """Register both tasks with transformers' ``PIPELINE_REGISTRY`` (done on ``import hf_mixup``; repeat
    calls change nothing). The model loads through ``AutoModel``, with which ``hf_mixup`` registers
    `TabularMLPForPrediction`."""
    for task, pipeline_class in ((CLASSIFICATION_TASK, TabularClassificationPipeline),
                                 (REGRESSION_TASK, TabularRegressionPipeline)):
        if PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl") is not pipeline_class:
            PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=AutoModel)


register()
