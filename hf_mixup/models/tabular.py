"""A fully connected network for tables (the paper's Section 3.6: two hidden layers of 128 ReLU units).

`TabularMLPConfig` / `TabularMLPForPrediction` are registered with `AutoConfig`, `AutoModel` and
`AutoFeatureExtractor` (the `TabularPreprocessor`) when `hf_mixup` is imported. The config carries the
fitted preprocessing, so a loaded checkpoint predicts on raw rows::

    import hf_mixup
    from transformers import AutoModel
    model = AutoModel.from_pretrained("runs/iris-mixup")
    model.predict({"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, ...})   # [{"label": ..., "score": ...}]

Classification (softmax over ``num_labels``), regression (``num_labels == 1``, ``problem_type
"regression"``; outputs in standardised target units, :meth:`predict` converts back) and multi-label
(``problem_type "multi_label_classification"``, independent sigmoids).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from ..data.tabular import CLASSIFICATION, MULTI_LABEL, REGRESSION, TabularPreprocessor

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class TabularMLPConfig(PretrainedConfig):
    model_type = "hf_mixup_tabular_mlp"

    def __init__(
        self,
        num_features: int = 4,
        hidden_sizes: list[int] | tuple[int, ...] = (128, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        preprocessing: dict[str, Any] | None = None,
        **kwargs,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if num_features < 1 or any(int(h) < 1 for h in hidden_sizes):
            raise ValueError(f"num_features and hidden_sizes must be positive, got {num_features} and {list(hidden_sizes)}")
        self.num_features = int(num_features)
        self.hidden_sizes = [int(h) for h in hidden_sizes]
        self.activation = activation
        self.dropout = float(dropout)
        self.preprocessing = preprocessing
        super().__init__(**kwargs)

    @classmethod
    def from_preprocessor(cls, preprocessor: TabularPreprocessor, **kwargs) -> TabularMLPConfig:
        """A config sized for ``preprocessor``'s features and labels, carrying it along."""
        names = preprocessor.label_names if preprocessor.task != REGRESSION else [preprocessor.label_columns[0]]
        id2label = dict(enumerate(names))
        return cls(
            num_features=preprocessor.num_features,
            num_labels=preprocessor.num_labels,
            id2label=id2label,
            label2id={name: i for i, name in id2label.items()},
            problem_type=preprocessor.task,
            preprocessing=preprocessor.to_dict(),
            **kwargs,
        )


class TabularMLPForPrediction(PreTrainedModel):
    config_class = TabularMLPConfig
    base_model_prefix = "mlp"
    main_input_name = "input_values"

    def __init__(self, config: TabularMLPConfig):
        super().__init__(config)
        layers: list[nn.Module] = []
        width = config.num_features
        for hidden in config.hidden_sizes:
            layers += [nn.Linear(width, hidden), ACTIVATIONS[config.activation]()]
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            width = hidden
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's default Linear init (Kaiming uniform), as the paper's plain PyTorch MLP had.
        if isinstance(module, nn.Linear):
            module.reset_parameters()

    def forward(self, input_values: torch.Tensor, labels: torch.Tensor | None = None, **kwargs) -> SequenceClassifierOutput:
        logits = self.classifier(self.body(input_values))
        loss = None
        if labels is not None:
            problem = self.config.problem_type or (REGRESSION if self.config.num_labels == 1 else CLASSIFICATION)
            if problem == REGRESSION:
                loss = F.mse_loss(logits, labels.float().view_as(logits))
            elif problem == MULTI_LABEL:
                loss = F.binary_cross_entropy_with_logits(logits, labels.float())
            else:
                loss = F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    @property
    def preprocessor(self) -> TabularPreprocessor:
        if not self.config.preprocessing:
            raise ValueError("this model's config has no preprocessing; build it with TabularMLPConfig.from_preprocessor")
        cached = getattr(self, "_preprocessor", None)
        if cached is None:
            cached = TabularPreprocessor.from_dict(self.config.preprocessing)
            self._preprocessor = cached
        return cached

    @torch.no_grad()
    def predict(self, rows: Any) -> list[Any]:
        """Predictions for raw rows (a dict, a list of dicts, a pandas DataFrame or a datasets Dataset):
        ``{"label", "score"}`` per row, regression values in the target's units, or multi-label lists."""
        inputs = self.preprocessor(rows)["input_values"].to(self.device, self.dtype)
        was_training = self.training
        self.eval()
        try:
            logits = self(input_values=inputs).logits
        finally:
            self.train(was_training)
        return self.preprocessor.decode(logits)
