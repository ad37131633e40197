"""`MixupArguments`: `transformers.TrainingArguments` plus the mixing settings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .mixing import ALL_PARTNERS as PARTNERS
from .mixing import MIXING_FIELDS, MIXUP_MODES, MIXUP_TARGETS, is_number, check_mixing_settings
from .neighbours import KNN_SCOPES
from .sites import MASK_MODES

LAYER_NAMES = ("embeddings", "pooled")


@dataclass
class MixupArguments(TrainingArguments):
    r"""
    [`~transformers.TrainingArguments`] for [`MixupTrainer`], with the mixing settings (named as timm
    names them where timm has the setting).

    Parameters:
        mixup_alpha (`float`, defaults to `1.0`):
            lam ~ Beta(mixup_alpha, mixup_alpha). `0` turns mixup off: with `cutmix_alpha=0` too, the
            trainer is plain ERM (empirical risk minimisation).
        cutmix_alpha (`float`, defaults to `0.0`):
            CutMix lam ~ Beta(cutmix_alpha, cutmix_alpha); `0` turns CutMix off.
        cutmix_minmax (`list[float]`, *optional*):
            `min max` ratios of the CutMix box sides; when set, boxes are drawn from this range and CutMix
            is on even with `cutmix_alpha=0`.
        mixup_prob (`float`, defaults to `1.0`):
            Probability of mixing a batch (mode `batch`) or an example (modes `pair`, `elem`).
        mixup_switch_prob (`float`, defaults to `0.5`):
            When mixup and CutMix are both on, the probability of using CutMix.
        mixup_mode (`str`, defaults to `"batch"`):
            `batch`: one lam per batch; `pair`: one lam per pair of partners; `elem`: one lam per example.
        mixup_off_epoch (`float`, defaults to `0`):
            Stop mixing from this epoch on (`0`: never stop).
        mixup_warmup_epochs (`float`, defaults to `0`):
            Train plain ERM for this many epochs before mixing starts (the paper does 5 for speech).
        mixup_layer (`int` or `str`, defaults to `0`):
            Where to mix (`hf_mixup.sites`): `0` the inputs (for token ids: their embeddings); `"embeddings"` the
            output of `get_input_embeddings()`; `k >= 1` the hidden states entering block `k` of the model's stack of
            `config.num_hidden_layers` blocks (for timm ResNets and the CIFAR models: residual stage `k`, and the number
            of stages + 1 the features before the final pooling: the paper's ablation "Layer 1-5"); `"pooled"` the
            features entering the classifier's output layer.
        mixup_mask (`str`, defaults to `"union"`):
            At a block `k`, the attention mask of a mixed sequence in blocks `k` and after: `union` (where either
            sequence attends) or `first` (its own, as TMix does). At `"embeddings"` it is always the union.
        mixup_partner (`str`, defaults to `"random"`):
            `random`: the partner is another example of the batch; `same_class`: another example of the
            same class in the batch (an example alone in its class in the batch stays unmixed); the paper's
            "RP" and "SC" ablations; `knn`: one of the example's `mixup_knn_k` nearest training examples, fetched
            from the dataset (the paper's "KNN"). Single-label classification, modes `batch` and `elem`.
        mixup_knn_k (`int`, defaults to `200`):
            With `mixup_partner="knn"`: the partner is drawn uniformly from this many nearest training examples
            (L2 distance on the flattened model inputs, computed once before training and cached).
        mixup_knn_scope (`str`, defaults to `"all"`):
            With `mixup_partner="knn"`: neighbours from `all` classes (the paper's "AC") or from the example's
            own class only (`same_class`, the paper's "SC", SMOTE-like).
        mixup_targets (`str`, defaults to `"mixed"`):
            `mixed`: lam y_i + (1 - lam) y_j; `input_only`: the target of the example with the larger weight
            (the paper's "mix inputs only").
        input_noise_std (`float`, defaults to `0.0`):
            Standard deviation of Gaussian noise added to the training inputs (after mixing, if any), in the
            inputs' own units: the paper's "ERM + Gaussian noise" baseline. Evaluation inputs stay clean.

    Label smoothing reuses `label_smoothing_factor`: targets are smoothed, then mixed. The mixing draws
    come from a generator seeded with `seed` and the process rank.
    """

    mixup_alpha: float = field(
        default=1.0,
        metadata={"help": "mixup lam ~ Beta(alpha, alpha); 0 turns mixup off (0 here and for cutmix_alpha: plain ERM)."},
    )
    cutmix_alpha: float = field(
        default=0.0, metadata={"help": "CutMix lam ~ Beta(alpha, alpha); 0 turns CutMix off."}
    )
    cutmix_minmax: list[float] | None = field(
        default=None,
        metadata={
            "help": "Min and max ratio of the CutMix box sides (two numbers in (0, 1]); when set, boxes are drawn from "
            "this range instead of from lam, and CutMix is on even with cutmix_alpha 0."
        },
    )
    mixup_prob: float = field(
        default=1.0,
        metadata={"help": "Probability of mixing a batch (mode batch) or an example (modes pair, elem), in [0, 1]."},
    )
    mixup_switch_prob: float = field(
        default=0.5,
        metadata={"help": "With mixup and CutMix both on, the probability of CutMix for a batch or example, in [0, 1]."},
    )
    mixup_mode: str = field(
        default="batch",
        metadata={
            "help": "How lam is drawn: batch (one per batch), pair (one per pair of partners), elem (one per example).",
            "choices": list(MIXUP_MODES),
        },
    )
    mixup_off_epoch: float = field(
        default=0, metadata={"help": "Stop mixing from this epoch on and train ERM (0: mix until the end)."}
    )
    mixup_warmup_epochs: float = field(
        default=0, metadata={"help": "Train plain ERM for this many epochs before mixing starts (0: mix from the start)."}
    )
    # Typed str so that the command line takes "embeddings" and "pooled"; digits become an int in __post_init__.
    mixup_layer: str = field(
        default=0,
        metadata={
            "help": "Where to mix: 0 the inputs (token ids: their embeddings); embeddings (the token embeddings); k >= 1 "
            "the hidden states entering block k (timm ResNets and the hf_mixup CIFAR models: residual stage k, and "
            "stages + 1 the features before the final pooling); pooled (the features entering the classifier)."
        },
    )
    mixup_mask: str = field(
        default="union",
        metadata={"help": "At block k: the attention mask of a mixed sequence from block k on, union (where either "
                          "attends) or first (its own, as TMix)."},
    )

    mixup_partner: str = field(
        default="random",
        metadata={
            "help": "Who an example is mixed with: random (another example of the batch), same_class (another "
            "example of its class in the batch) or knn (one of its mixup_knn_k nearest training examples).",
            "choices": list(PARTNERS),
        },
    )
    mixup_knn_k: int = field(
        default=200, metadata={"help": "With mixup_partner knn: draw the partner from this many nearest training examples."}
    )
    mixup_knn_scope: str = field(
        default="all",
        metadata={"help": "With mixup_partner knn: neighbours from all classes, or from the same_class.", "choices": list(KNN_SCOPES)},
    )
    mixup_targets: str = field(
        default="mixed",
        metadata={
            "help": "mixed: mix the targets as the inputs; input_only: keep the target of the example with the larger "
            "weight.",
            "choices": list(MIXUP_TARGETS),
        },
    )
    input_noise_std: float = field(
        default=0.0,
        metadata={"help": "Gaussian noise (this standard deviation, in the inputs' units) on training inputs; 0: none."},
    )

    lr_milestones: list[float] | None = field(
        default=None,
        metadata={
            "help": "Epochs at which the learning rate is multiplied by lr_gamma (a step schedule, as in the paper: "
            "100 150 for CIFAR, 30 60 80 for ImageNet); replaces lr_scheduler_type when set."
        },
    )
    lr_gamma: float = field(default=0.1, metadata={"help": "Factor applied to the learning rate at each lr_milestones epoch."})
    warmup_start_factor: float = field(
        default=0.0,
        metadata={
            "help": "With lr_milestones: the learning rate at the first warm-up step, as a fraction of learning_rate "
            "(0.25 warms up 0.1 -> 0.4 for the ImageNet recipe)."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "hf-mixup train: start over in an output_dir that holds a run (its checkpoints, weights, card and "
            "results are removed) instead of resuming it; without it a used output_dir is resumed only when the "
            "settings that shape the weights match."
        },
    )

    def __post_init__(self):
        self._validate_mixup_fields()
        super().__post_init__()

    def _validate_mixup_fields(self) -> None:
        if isinstance(self.mixup_layer, str) and self.mixup_layer.strip().isdigit():
            self.mixup_layer = int(self.mixup_layer)
        if not (self.mixup_layer in LAYER_NAMES or (isinstance(self.mixup_layer, int)
                                                    and not isinstance(self.mixup_layer, bool) and self.mixup_layer >= 0)):
            raise ValueError(
                f'mixup_layer must be 0 (the inputs), "embeddings", a block k >= 1 or "pooled"; got {self.mixup_layer!r}'
            )
        if self.mixup_mask not in MASK_MODES:
            raise ValueError(f"mixup_mask must be one of {', '.join(MASK_MODES)}; got {self.mixup_mask!r}")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1 (examples per device and step), got {value!r}")
        if not (is_number(self.num_train_epochs) and self.num_train_epochs > 0) and not (
            is_number(self.max_steps) and self.max_steps > 0
        ):
            raise ValueError(
                f"nothing to train: num_train_epochs={self.num_train_epochs!r} and max_steps={self.max_steps!r}; set "
                "num_train_epochs > 0 (or max_steps > 0, which takes precedence)"
            )
        minmax = check_mixing_settings(**{name: getattr(self, name) for name in MIXING_FIELDS})
        self.cutmix_minmax = None if minmax is None else list(minmax)
        for name in ("mixup_off_epoch", "mixup_warmup_epochs"):
            value = getattr(self, name)
            if not is_number(value) or math.isnan(value) or value < 0:
                raise ValueError(f"{name} must be a number of epochs >= 0, got {value!r}")
        if not isinstance(self.mixup_knn_k, int) or isinstance(self.mixup_knn_k, bool) or self.mixup_knn_k < 1:
            raise ValueError(f"mixup_knn_k must be an int >= 1 (the paper uses 200), got {self.mixup_knn_k!r}")
        if self.mixup_knn_scope not in KNN_SCOPES:
            raise ValueError(f"mixup_knn_scope must be one of {', '.join(KNN_SCOPES)}; got {self.mixup_knn_scope!r}")
        if self.mixup_partner == "knn":
            if self.mixup_layer:
                raise ValueError("mixup_partner='knn' mixes inputs with partners from the dataset: it needs mixup_layer=0")
            if self.cutmix_alpha > 0 or self.cutmix_minmax is not None:
                raise ValueError("mixup_partner='knn' is for mixup: set cutmix_alpha=0 and cutmix_minmax=None")
            if getattr(self, "dataloader_persistent_workers", False):
                raise ValueError(
                    "mixup_partner='knn' draws new partners each epoch, which persistent DataLoader workers would not "
                    "see: set dataloader_persistent_workers=False"
                )
        if not is_number(self.input_noise_std) or math.isnan(self.input_noise_std) or math.isinf(self.input_noise_std) \
                or self.input_noise_std < 0:
            raise ValueError(f"input_noise_std must be a finite number >= 0 (0: no noise), got {self.input_noise_std!r}")
        if self.mixup_layer and (self.cutmix_alpha > 0 or self.cutmix_minmax is not None):
            raise ValueError("CutMix mixes inputs only: set cutmix_alpha=0 and cutmix_minmax=None with mixup_layer other than 0")
        if self.mixup_layer and getattr(self, "gradient_checkpointing", False):
            raise ValueError("mixup_layer other than 0 does not work with gradient_checkpointing (recomputed features would not be mixed)")
        if self.lr_milestones is not None:
            milestones = list(self.lr_milestones)
            if not milestones or any(not is_number(m) or m <= 0 for m in milestones) or milestones != sorted(milestones):
                raise ValueError(f"lr_milestones must be increasing epochs > 0, got {self.lr_milestones!r}")
            self.lr_milestones = [float(m) for m in milestones]
        if not is_number(self.lr_gamma) or not 0 < self.lr_gamma <= 1:
            raise ValueError(f"lr_gamma must be in (0, 1], got {self.lr_gamma!r}")
        if not is_number(self.warmup_start_factor) or not 0 <= self.warmup_start_factor <= 1:
            raise ValueError(f"warmup_start_factor must be in [0, 1], got {self.warmup_start_factor!r}")
        if self.mixup_off_epoch and self.mixup_off_epoch <= self.mixup_warmup_epochs:
            raise ValueError(
                f"mixup_off_epoch ({self.mixup_off_epoch}) must be after mixup_warmup_epochs ({self.mixup_warmup_epochs}), "
                "or 0 to mix until the end; as set, no epoch would be mixed"
            )

    @property
    def mixing_enabled(self) -> bool:
        """False for plain ERM (both alphas 0 and no `cutmix_minmax`, or `mixup_prob` 0)."""
        return (self.mixup_alpha > 0 or self.cutmix_alpha > 0 or self.cutmix_minmax is not None) and self.mixup_prob > 0

    def mixing_active_at(self, epoch: float | None) -> bool:
        """Whether batches of (0-based, fractional) ``epoch`` are mixed, given warm-up and off epochs."""
        if not self.mixing_enabled:
            return False
        epoch = 0.0 if epoch is None else float(epoch)
        if epoch < self.mixup_warmup_epochs:
            return False
        return not (self.mixup_off_epoch and epoch >= self.mixup_off_epoch)
