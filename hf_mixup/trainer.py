"""`MixupTrainer`: a `transformers.Trainer` that trains on mixed batches and evaluates on clean ones."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from transformers.utils import is_sagemaker_mp_enabled, logging

from . import losses
from .arguments import MixupArguments
from .checkpoints import (
    has_full_weights,
    load_checkpoint_weights,
    publish_checkpoint,
    remove_partial_checkpoints,
    rotate_checkpoints,
    staging_parent,
)
from .collator import MIXUP_DRAW_KEY, MIXUP_LAMBDA_KEY, DataCollatorForMixup
from .hidden import mixing_at, mixing_points
from .sites import Site, site_for
from .metrics import classification_metrics, multi_label_metrics, regression_metrics
from .mixing import Mixer, derive_seed, dominant_targets, mix_inputs, mix_targets, select_input_keys, spatial_size_of
from .neighbours import PARTNER_PREFIX, PartnerDataset, knn_partner_dataset
from .schedules import step_schedule, steps_per_epoch

logger = logging.get_logger(__name__)

MIXUP_STATE_NAME = "mixup_state.pth"
SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"
REGRESSION = "regression"
PROBLEM_TYPES = (SINGLE_LABEL, MULTI_LABEL, REGRESSION)


def problem_type_of(config) -> str:
    """The problem a model config describes, by the transformers convention (regression when
    ``num_labels == 1`` and no ``problem_type`` is set)."""
    problem_type = getattr(config, "problem_type", None)
    if problem_type is not None:
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"config.problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
        return problem_type
    return REGRESSION if getattr(config, "num_labels", 2) == 1 else SINGLE_LABEL


class _EpochCallback(TrainerCallback):
    """Tells a `DataCollatorForMixup` whether the coming epoch is mixed (warm-up and off epochs)."""

    def __init__(self, trainer: MixupTrainer):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        partners = self.trainer.train_dataset
        # New nearest-neighbour partners each epoch: accelerate's loader passes the epoch to the dataset on
        # one process only (on several, to its batch sampler alone).
        if isinstance(partners, PartnerDataset):
            partners.set_epoch(math.floor((state.epoch or 0.0) + 1e-9))
        collator = self.trainer._mixup_collator
        if collator is not None:
            collator.set_epoch(state.epoch or 0.0, args.mixing_active_at(state.epoch))


class MixupTrainer(Trainer):
    r"""
    A [`~transformers.Trainer`] that trains on mixup / CutMix batches.

    By default the batch is mixed on the device, after the Trainer has moved it there; batches already
    mixed by a [`DataCollatorForMixup`] (soft `labels` `[batch, num_labels]`) are taken as they are.
    The trainer computes the loss itself and never hands labels to the model, so float labels cannot
    switch `config.problem_type` to multi-label: the saved checkpoint stays single-label and its
    `pipeline()` gives softmax scores.

    - single-label classification: pair-form cross-entropy `lam * CE(y_a) + (1 - lam) * CE(y_b)` for
      class ids, soft-target cross-entropy for soft labels; `label_smoothing_factor` smooths, then mixes;
    - multi-label classification (`config.problem_type = "multi_label_classification"`): BCE on mixed
      multi-hot targets; regression (`num_labels == 1` or `problem_type = "regression"`): MSE on mixed
      targets.

    Evaluation is never mixed. Without a `compute_metrics`, evaluation reports `accuracy`,
    `top5_accuracy` (more than 5 classes), `nll` and `ece` (regression: `mse`, `rmse`, `mae`, `r2`;
    multi-label: `bce`, `exact_match`, `label_accuracy`, `micro_f1`). Training logs `mixup_lambda`, the
    mean weight of each example in its mix.

    Checkpoints hold the mixing generators' state (`mixup_state.pth`, one per rank) next to the
    Trainer's RNG state, so `train(resume_from_checkpoint=...)` continues with the same mixing draws;
    the model weights are loaded with the weight-name conversion of `from_pretrained` (see
    [`~hf_mixup.checkpoints.load_checkpoint_weights`]), for resuming and for `load_best_model_at_end`
    alike, and a checkpoint whose keys do not match the model raises a `ValueError`.

    Args:
        mixer: a [`~hf_mixup.mixing.Mixer`] to draw from instead of the one built from `args`.
        skip_gc_at_train_start: on the CPU only, let this trainer's `accelerator.free_memory()` (called
            at the start of every `train()`) drop its references without the full `gc.collect()`, whose
            cost grows with everything the process holds: worth it for many short `train()` calls on a
            small model (results/bench_tabular.md: 500 -> 611 steps/s on 10 epochs of the UCI MLP). Off by
            default; ignored on other devices and with DeepSpeed.
        Every other argument is the [`~transformers.Trainer`]'s.
    """

    # `compute_loss` divides by `num_items_in_batch` (the examples of the whole accumulated batch) in
    # training, so `training_step` must not divide by the accumulation steps again.
    loss_is_scaled_for_ga = True
    # Takes a DataCollatorForMixup's soft labels itself (see DataCollatorForMixup._check_caller).
    _mixes_itself = True

    def __init__(
        self,
        model=None,
        args: MixupArguments | None = None,
        *trainer_args,
        mixer: Mixer | None = None,
        skip_gc_at_train_start: bool = False,
        **kwargs,
    ):
        if args is None:
            args = MixupArguments(output_dir="trainer_output")
        if not isinstance(args, MixupArguments):
            raise ValueError(
                f"MixupTrainer needs MixupArguments (a TrainingArguments subclass with the mixup settings), got "
                f"{type(args).__name__}; build them with MixupArguments(output_dir=..., mixup_alpha=...)"
            )
        super().__init__(model, args, *trainer_args, **kwargs)
        config = getattr(self.model, "config", None)
        if config is None or not hasattr(config, "num_labels"):
            raise ValueError("MixupTrainer needs a model with a config carrying num_labels (a classification model)")
        self.problem_type = problem_type_of(config)
        self.num_labels = int(config.num_labels)
        if not self.label_names:
            # A forward without `labels`: the labels are ours to take out of the batch before the model.
            self.label_names = ["labels"]
        self.label_key = self.label_names[0]
        if self.compute_loss_func is not None:
            raise ValueError(
                "MixupTrainer computes the loss itself (mixed targets, gradient accumulation); it does not call "
                "compute_loss_func: leave it unset, or subclass MixupTrainer and override _per_example_loss"
            )

        collator = self.data_collator
        self._mixup_collator = collator if isinstance(collator, DataCollatorForMixup) else None
        if self._mixup_collator is not None:
            if self._mixup_collator.num_labels is None:
                self._mixup_collator.num_labels = self.num_labels
            if self._mixup_collator.seed is None:
                self._mixup_collator.seed = args.seed
            if self._mixup_collator.rank is None:
                self._mixup_collator.rank = args.process_index
            if self._mixup_collator.label_smoothing == 0 and args.label_smoothing_factor and self.problem_type == SINGLE_LABEL:
                self._mixup_collator.label_smoothing = args.label_smoothing_factor
            if self.problem_type != SINGLE_LABEL and self._mixup_collator.label_smoothing:
                raise ValueError("label smoothing applies to single-label classification only; set it to 0 for this model")
            if self._mixup_collator.label_key == "labels":
                self._mixup_collator.label_key = self.label_key
            # The arguments' partner and target settings reach a collator left at the defaults.
            for name, default in (("mixup_partner", "random"), ("mixup_targets", "mixed")):
                if getattr(self._mixup_collator, name) == default and getattr(args, name) != default:
                    setattr(self._mixup_collator, name, getattr(args, name))
                    if name == "mixup_partner":  # a mixer with the new partners (and their checks)
                        self._mixup_collator._mixer = Mixer.from_settings(self._mixup_collator)
            for name in ("mixup_warmup_epochs", "mixup_off_epoch"):
                value = getattr(args, name)
                if value != int(value):
                    raise ValueError(
                        f"{name}={value}: DataCollatorForMixup switches mixing at epoch starts only; use a whole "
                        "number of epochs, or mix on the device (no DataCollatorForMixup) for fractional epochs"
                    )
            if args.dataloader_persistent_workers and (args.mixup_warmup_epochs or args.mixup_off_epoch):
                logger.warning(
                    "mixup_warmup_epochs / mixup_off_epoch with DataCollatorForMixup and persistent workers: the "
                    "workers keep the collator they started with, so the switch cannot reach them"
                )

        self.mixer = mixer if mixer is not None else Mixer.from_settings(args, seed=self.mixer_seed)
        if args.mixup_partner != "random" and self.problem_type != SINGLE_LABEL:
            raise ValueError(
                f"mixup_partner={args.mixup_partner!r} pairs examples by class: it needs single-label classification; "
                f"this model is {self.problem_type}: use mixup_partner='random'"
            )
        if args.mixup_partner == "knn":
            if self._mixup_collator is not None:
                raise ValueError(
                    "mixup_partner='knn' mixes on the device with partners from the dataset; it cannot use "
                    "DataCollatorForMixup: leave the data collator as the plain one"
                )
            if self.train_dataset is not None:
                self.train_dataset = knn_partner_dataset(self, self.train_dataset)
        if args.mixup_layer:
            if args.n_gpu > 1:
                raise ValueError(
                    "mixup_layer > 0 does not work with DataParallel (several GPUs in one process): each replica "
                    "sees part of the batch; launch one process per GPU (accelerate launch / torchrun) instead"
                )
            if self._mixup_collator is not None:
                raise ValueError(
                    f"mixup_layer={args.mixup_layer!r} mixes hidden features on the device; it cannot use "
                    "DataCollatorForMixup: leave the data collator as the plain one"
                )
            self._site_of(self.accelerator.unwrap_model(self.model))  # a model without that site fails here
        if self.compute_metrics is None:
            self.compute_metrics = default_metrics_for(self.problem_type)
        self.add_callback(_EpochCallback(self))
        self._lam_sum = 0.0
        self._lam_count = 0
        self._collator_next_draw: int | None = None
        self._mix_workspaces: dict[str, torch.Tensor] = {}
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(["hf_mixup", "mixup" if args.mixing_enabled else "erm"])
        self.skip_gc_at_train_start = bool(skip_gc_at_train_start)
        if self.skip_gc_at_train_start and self.args.device.type == "cpu" and not self.is_deepspeed_enabled:
            _skip_gc_in_free_memory(self.accelerator)

    @property
    def mixer_seed(self) -> int:
        """The seed of this process's mixing generator: from `args.seed` and the process rank."""
        return derive_seed(self.args.seed, self.args.process_index)

    # -- data ---------------------------------------------------------------------------------------
    def get_eval_dataloader(self, eval_dataset=None):
        """The Trainer's evaluation loader; with a `DataCollatorForMixup`, batches come from its `unmixed`
        collation (class-id labels, clean inputs): evaluation is never mixed."""
        return self._unmixed_loader(super().get_eval_dataloader, eval_dataset)

    def get_test_dataloader(self, test_dataset):
        """The Trainer's prediction loader, unmixed as in `get_eval_dataloader`."""
        return self._unmixed_loader(super().get_test_dataloader, test_dataset)

    def _unmixed_loader(self, build, dataset):
        if self._mixup_collator is None:
            return build(dataset)
        collator = self.data_collator
        self.data_collator = self._mixup_collator.unmixed
        try:
            return build(dataset)
        finally:
            self.data_collator = collator

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        # Keep the label column even for models whose forward takes no `labels`.
        for key in ("label", "labels", self.label_key):
            if key not in self._signature_columns:
                self._signature_columns.append(key)
        if self.args.mixup_partner == "knn":  # and the partners' copies of every kept column, once
            kept = [key for key in self._signature_columns if not key.startswith(PARTNER_PREFIX)]
            for key in [PARTNER_PREFIX + key for key in kept] + [PARTNER_PREFIX + "index"]:
                if key not in self._signature_columns:
                    self._signature_columns.append(key)

    # -- nearest-neighbour partners -----------------------------------------------------------------
    def get_train_dataloader(self):
        """The Trainer's training loader; with `mixup_partner="knn"`, over the training set with its
        nearest-neighbour partners (wrapped here if it was set after the trainer was built)."""
        if (self.args.mixup_partner == "knn" and self.train_dataset is not None
                and not isinstance(self.train_dataset, PartnerDataset)):
            self.train_dataset = knn_partner_dataset(self, self.train_dataset)
        return super().get_train_dataloader()

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | None:
        """Examples in the accumulated batch: one per row of `labels`, whether class ids `[B]` or
        soft / multi-label targets `[B, C]` (the Trainer's own count would give B * C)."""
        if not batch_samples or any(batch.get(self.label_key) is None for batch in batch_samples):
            return None
        count = 0
        for batch in batch_samples:
            labels = batch[self.label_key]
            if self.problem_type == SINGLE_LABEL and not torch.is_floating_point(labels):
                count += int(labels.ne(-100).sum())
            else:
                count += int(labels.shape[0])
        num_items = torch.tensor(count, device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            num_items = self.accelerator.gather(num_items).sum()
        return num_items

    # -- loss ---------------------------------------------------------------------------------------
    def mixing_active(self) -> bool:
        """Whether the current training batch is mixed (warm-up and off epochs included)."""
        return self.args.mixing_active_at(self.state.epoch)

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        inputs = dict(inputs)
        labels = inputs.pop(self.label_key, None)
        partner = {key[len(PARTNER_PREFIX):]: inputs.pop(key) for key in list(inputs) if key.startswith(PARTNER_PREFIX)}
        premixed_lam = inputs.pop(MIXUP_LAMBDA_KEY, None)
        draw_number = inputs.pop(MIXUP_DRAW_KEY, None)
        if draw_number is not None and model.training:
            self._collator_next_draw = int(draw_number) + 1
        if labels is None:
            raise ValueError(
                f"MixupTrainer computes the loss from {self.label_key!r}, which is missing from the batch "
                f"(keys {sorted(inputs)}); the dataset needs a label column"
            )
        training = model.training
        smoothing = float(self.args.label_smoothing_factor)
        draw = None
        if premixed_lam is not None:
            if training:
                self._record_lambda(premixed_lam)
        elif training and partner and self.mixer.enabled and self.mixing_active():
            return self._knn_mixup_loss(model, inputs, labels, partner, return_outputs, num_items_in_batch, smoothing)
        elif training and self.mixer.enabled and self.mixing_active():
            batch_size = labels.shape[0]
            # Class ids for partners within a class; a mixer that needs none is called as before.
            by_class = {"labels": labels} if getattr(self.mixer, "partner", "random") == "same_class" else {}
            if self.args.mixup_layer or self._mixes_token_embeddings(inputs, batch_size):
                draw = self.mixer.draw(batch_size, **by_class)
            else:
                keys = select_input_keys(inputs, batch_size, label_key=self.label_key)
                spatial = spatial_size_of(inputs[keys[0]]) if self.mixer.cutmix_enabled else None
                draw = self.mixer.draw(batch_size, spatial, **by_class)
                for key in keys:
                    inputs[key] = mix_inputs(inputs[key], draw, out=self._workspace(key, inputs[key]))
            self._record_lambda(draw.lam)
        if training and self.args.input_noise_std > 0:
            self._add_input_noise(inputs, labels.shape[0])

        site = self._site_of(self.accelerator.unwrap_model(model)) if draw is not None else None
        if site is not None:
            inputs = site.prepare(inputs, draw)
            with site.mixing(draw):
                outputs = model(**inputs)
        elif draw is not None and self.args.mixup_layer:
            with mixing_at(self.accelerator.unwrap_model(model), self.args.mixup_layer, draw):
                outputs = model(**inputs)
        else:
            outputs = model(**inputs)
        logits = outputs["logits"] if isinstance(outputs, dict) else losses.logits_of(outputs)
        per_example = self._per_example_loss(logits, labels, draw, smoothing)
        if training:
            loss = losses.reduce_loss(per_example, num_items_in_batch)
            if num_items_in_batch is not None and self.args.average_tokens_across_devices and self.args.world_size > 1:
                # num_items_in_batch counts every rank's examples and DDP averages the gradients over ranks.
                loss = loss * self.accelerator.num_processes
        else:
            valid = labels.ne(-100) if (self.problem_type == SINGLE_LABEL and not torch.is_floating_point(labels)) else None
            loss = per_example[valid].mean() if valid is not None else per_example.mean()
        if not return_outputs:
            return loss
        if not isinstance(outputs, dict):
            # prediction_step takes outputs[1:] as the logits of a tuple output, expecting the loss first.
            outputs = (loss, *outputs)
        return loss, outputs

    def _site_of(self, model: nn.Module) -> Site | None:
        """Where this model is mixed (`hf_mixup.sites`), built once per model; None for the inputs and for the
        residual stages of timm ResNets and the CIFAR models (`hidden.mixing_at`, the paper's layer numbering)."""
        layer = self.args.mixup_layer
        if layer == 0 and not getattr(self, "_token_ids", False):
            return None
        cached = getattr(self, "_site", None)
        if cached is not None and cached[0] is model:
            return cached[1]
        if layer == 0:
            site = site_for(model, "embeddings")
        elif isinstance(layer, int):
            try:
                points = mixing_points(model)
            except ValueError:  # no residual stages: a stack of blocks
                site = site_for(model, layer, mask=self.args.mixup_mask)
            else:
                if layer > len(points):
                    raise ValueError(
                        f"mixup_layer={layer} but this model has {len(points) - 1} stages: "
                        f"use 1..{len(points) - 1} (entering a stage) or {len(points)} (before the final pooling)"
                    )
                site = None
        else:
            site = site_for(model, layer, mask=self.args.mixup_mask)
        self._site = (model, site)
        return site

    def _mixes_token_embeddings(self, inputs: dict[str, Any], batch_size: int) -> bool:
        """``mixup_layer=0`` on token ids (no floating-point input, ``input_ids`` present): mix their embeddings
        instead (`mixup_layer="embeddings"`), logged once."""
        if getattr(self, "_token_ids", False):
            return True
        has_float = any(
            isinstance(value, torch.Tensor) and torch.is_floating_point(value) and value.ndim > 0 and value.shape[0] == batch_size
            for key, value in inputs.items() if key != self.label_key
        )
        if has_float or "input_ids" not in inputs:
            return False
        logger.warning(
            "mixup_layer=0 on token ids, which cannot be averaged: mixing their embeddings instead "
            '(mixup_layer="embeddings": the output of get_input_embeddings(), attention masks joined)'
        )
        self._token_ids = True
        return True

    def _knn_mixup_loss(self, model, inputs, labels, partner, return_outputs, num_items_in_batch, smoothing):
        """mixup with partners fetched from the dataset (`mixup_partner="knn"`): x = lam x + (1 - lam) x_p,
        loss lam CE(y) + (1 - lam) CE(y_p) (or CE on the dominant label with `mixup_targets="input_only"`)."""
        partner_labels = partner.get(self.label_key, partner.get("label"))
        self._check_batch_class_ids(labels, mixed=True)
        batch_size = labels.shape[0]
        draw = self.mixer.draw(batch_size)  # its weights; the partners are the dataset's
        lam = draw.lam
        for key in select_input_keys(inputs, batch_size, label_key=self.label_key):
            weight = lam.to(inputs[key].device, inputs[key].dtype).view(-1, *([1] * (inputs[key].ndim - 1)))
            inputs[key] = partner[key].to(inputs[key].dtype).lerp(inputs[key], weight)
        self._record_lambda(lam)
        if self.args.input_noise_std > 0:
            self._add_input_noise(inputs, batch_size)
        outputs = model(**inputs)
        logits = outputs["logits"] if isinstance(outputs, dict) else losses.logits_of(outputs)
        partner_labels = partner_labels.to(labels.device)
        if self.args.mixup_targets == "input_only":
            dominant = torch.where(lam.to(labels.device) >= 0.5, labels, partner_labels)
            per_example = losses.cross_entropy(logits, dominant, smoothing)
        else:
            per_example = losses.mixup_cross_entropy(logits, labels, partner_labels, lam, smoothing)
        loss = losses.reduce_loss(per_example, num_items_in_batch)
        if num_items_in_batch is not None and self.args.average_tokens_across_devices and self.args.world_size > 1:
            loss = loss * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss

    def _add_input_noise(self, inputs: dict[str, Any], batch_size: int) -> None:
        """`input_noise_std`: Gaussian noise on every floating-point input of a training batch, from the
        global torch generator (seeded by the Trainer and restored on resume)."""
        std = float(self.args.input_noise_std)
        for key in select_input_keys(inputs, batch_size, label_key=self.label_key):
            inputs[key] = inputs[key] + std * torch.randn_like(inputs[key])

    def _per_example_loss(self, logits: torch.Tensor, labels: torch.Tensor, draw, smoothing: float) -> torch.Tensor:
        if draw is not None and self.args.mixup_targets == "input_only":
            if not torch.is_floating_point(labels) and bool((labels == -100).any()):
                raise ValueError("mixup needs a class id for every training example; found labels of -100")
            # The paper's "mix inputs only": the target of the example with the larger weight, unmixed.
            labels, draw = dominant_targets(labels, draw), None
        if self.problem_type == SINGLE_LABEL:
            if torch.is_floating_point(labels):
                if labels.ndim != 2 or labels.shape[-1] != logits.shape[-1]:
                    raise ValueError(
                        f"float labels of shape {tuple(labels.shape)} for a {logits.shape[-1]}-class single-label model: "
                        "give class ids [batch] or soft labels [batch, num_labels]"
                    )
                # Soft labels from DataCollatorForMixup are already smoothed (and mixed).
                if self._mixup_collator is not None:
                    return losses.soft_target_cross_entropy(logits, labels)
                if draw is not None:
                    return losses.soft_target_cross_entropy(logits, mix_targets(labels, draw, label_smoothing=smoothing))
                return losses.soft_target_cross_entropy(logits, labels, smoothing)
            self._check_batch_class_ids(labels, mixed=draw is not None)
            if draw is None:
                return losses.cross_entropy(logits, labels, smoothing)
            index = draw.index.to(labels.device)
            return losses.mixup_cross_entropy(logits, labels, labels.index_select(0, index), draw.lam, smoothing)
        targets = labels.float()
        if draw is not None:
            targets = mix_targets(targets, draw)
        if self.problem_type == MULTI_LABEL:
            return losses.multi_label_bce(logits, targets)
        return losses.regression_mse(logits, targets)

    def _check_batch_class_ids(self, labels: torch.Tensor, mixed: bool) -> None:
        """Class ids of a training batch in range (datasets that `check_inputs` cannot read ahead)."""
        ignored = labels == -100
        if bool(((labels < 0) & ~ignored).any() | (labels >= self.num_labels).any() | (mixed & ignored.any())):
            from .checks import check_class_ids

            check_class_ids(labels.cpu(), self.num_labels, column=self.label_key, split="training",
                            allow_ignored=not mixed)

    def _workspace(self, key: str, like: torch.Tensor) -> torch.Tensor | None:
        """A reused output tensor for mixing ``key`` on the CPU, where every fresh batch-sized tensor costs
        its page faults (results/bench_mixing.md times a new output against a reused one). Safe here: the
        previous step's mixed batch is no longer needed once its backward pass is done. GPUs cache their
        allocations."""
        if like.device.type != "cpu" or like.requires_grad:
            return None
        buffer = self._mix_workspaces.get(key)
        if buffer is None or buffer.shape != like.shape or buffer.dtype != like.dtype:
            buffer = self._mix_workspaces[key] = torch.empty_like(like)
        return buffer

    # -- schedule -----------------------------------------------------------------------------------
    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """With `lr_milestones`: linear warm-up from `warmup_start_factor * learning_rate`, then the learning
        rate times `lr_gamma` at each milestone epoch (the paper's step schedules)."""
        if self.lr_scheduler is not None or not self.args.lr_milestones:
            return super().create_scheduler(num_training_steps, optimizer)
        optimizer = optimizer if optimizer is not None else self.optimizer
        epoch_steps = steps_per_epoch(self.train_dataset, self.args, self._train_batch_size, num_training_steps)
        self.lr_scheduler = step_schedule(
            optimizer,
            num_training_steps=num_training_steps,
            steps_per_epoch=epoch_steps,
            milestones=self.args.lr_milestones,
            gamma=self.args.lr_gamma,
            warmup_steps=self.args.get_warmup_steps(num_training_steps),
            warmup_start_factor=self.args.warmup_start_factor,
        )
        self._created_lr_scheduler = True
        return self.lr_scheduler

    # -- logging ------------------------------------------------------------------------------------
    def _record_lambda(self, lam: torch.Tensor) -> None:
        lam = lam.detach().float().cpu()
        self._lam_sum += float(lam.sum())
        self._lam_count += lam.numel()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._lam_count:
            logs["mixup_lambda"] = round(self._lam_sum / self._lam_count, 4)
            self._lam_sum, self._lam_count = 0.0, 0
        super().log(logs, start_time)

    # -- checkpoints --------------------------------------------------------------------------------
    def _mixup_state_file(self, directory: str) -> str:
        if self.args.world_size <= 1:
            return os.path.join(directory, MIXUP_STATE_NAME)
        stem, ext = os.path.splitext(MIXUP_STATE_NAME)
        return os.path.join(directory, f"{stem}_{self.args.process_index}{ext}")

    def save_mixup_state(self, directory: str) -> None:
        """Write this process's mixing state into checkpoint folder ``directory``: the on-device mixer's
        generator and, with a `DataCollatorForMixup`, the collator's generator as it was before the
        first batch that training has not consumed yet."""
        state = {"mixer": self.mixer.state_dict()}
        if self._mixup_collator is not None:
            state["collator"] = self._mixup_collator.state_dict(next_draw=self._collator_next_draw)
        os.makedirs(directory, exist_ok=True)
        torch.save(state, self._mixup_state_file(directory))

    def load_mixup_state(self, directory: str) -> bool:
        """Restore the mixing state saved in checkpoint folder ``directory``; False (with a warning) when
        it holds none, in which case the run draws new mixing decisions."""
        path = self._mixup_state_file(directory)
        if not os.path.isfile(path):
            logger.warning(
                f"No mixing state at {path}: the resumed run draws new mixing decisions and will not match an "
                "uninterrupted one (the checkpoint was written by another trainer or world size)"
            )
            return False
        state = torch.load(path, weights_only=True)
        self.mixer.load_state_dict(state["mixer"])
        if self._mixup_collator is not None and "collator" in state:
            self._mixup_collator.load_state_dict(state["collator"])
        return True

    def check_inputs(self) -> None:
        """Check the data against the model and the mixing settings once, before anything is trained: class
        ids in ``0..num_labels-1`` (``-100`` only in evaluation, or in training without mixing), float labels
        of the model's width, labels that are not strings, and inputs with two spatial axes for CutMix.
        `train()` calls it; call it earlier to fail before other work. Raises `ValueError`."""
        from .checks import check_dataset_labels, check_spatial_inputs

        keys = list(dict.fromkeys([self.label_key, "labels", "label"]))
        for dataset, split, allow_ignored in (
            (self.train_dataset, "training", not self.args.mixing_enabled),
            *((d, "evaluation", True) for d in self._eval_datasets()),
        ):
            if dataset is not None:
                check_dataset_labels(dataset, keys, self.num_labels, self.problem_type, split=split,
                                     allow_ignored=allow_ignored)
        collator_cutmix = self._mixup_collator is not None and self._mixup_collator._mixer.cutmix_enabled
        if (self.mixer.cutmix_enabled or collator_cutmix) and self.train_dataset is not None:
            example = self._first_example()
            if example is not None:
                what = "CutMix (cutmix_alpha / cutmix_minmax)"
                check_spatial_inputs(example, keys + [key for key in example if key.startswith(PARTNER_PREFIX)], what)
        self._inputs_checked = True

    def _eval_datasets(self) -> list:
        data = self.eval_dataset
        return list(data.values()) if isinstance(data, dict) else [data]

    def _first_example(self) -> dict[str, Any] | None:
        """The first training example as the dataset gives it (transforms applied), drawn without moving any
        global random generator, so a checked run trains exactly as an unchecked one."""
        try:
            if len(self.train_dataset) == 0:
                return None
        except TypeError:
            return None
        import random

        import numpy as np

        python_state, numpy_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                example = self.train_dataset[0]
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
        return example if isinstance(example, dict) else None

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        """`Trainer.train`, after `check_inputs`; when resuming, the mixing state of the checkpoint is restored
        first (the collator draws while batches are collated, before the Trainer restores its own RNG states)."""
        if not getattr(self, "_inputs_checked", False):
            self.check_inputs()
        self._remove_partial_checkpoints()
        if resume_from_checkpoint:
            checkpoint = resume_from_checkpoint
            if checkpoint is True:
                checkpoint = get_last_checkpoint(self.args.output_dir)
            if checkpoint:  # none found: Trainer.train raises
                self.check_resumable(checkpoint)
                self.load_mixup_state(checkpoint)
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def run_settings(self) -> dict[str, Any]:
        """This run's `run_settings.json` record: every `MixupArguments` field, the world size, and the command
        line's model and data flags (`run_flags`) when the trainer was built by `hf-mixup train`."""
        from .runs import run_record

        return {**run_record(self.args), **getattr(self, "run_flags", {})}

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """`Trainer.save_model`, plus `run_settings.json` (the settings as JSON, read by `hf-mixup publish` and
        checked on resume) next to the weights, in the output folder and in every checkpoint."""
        super().save_model(output_dir, _internal_call=_internal_call)
        if self.args.should_save:
            from .runs import write_run_settings

            write_run_settings(output_dir if output_dir is not None else self.args.output_dir, self.run_settings())

    def check_resumable(self, checkpoint: str) -> None:
        """Refuse to resume ``checkpoint`` with settings that shape the weights differently (`ValueError`
        naming them); a checkpoint without `run_settings.json` is resumed with a warning."""
        from .runs import RUN_SETTINGS_NAME, differing_settings, read_run_settings

        saved = read_run_settings(checkpoint)
        if saved is None:
            logger.warning(f"{checkpoint} has no {RUN_SETTINGS_NAME}: its settings cannot be checked against these")
            return
        differences = differing_settings(saved, self.run_settings())
        if differences:
            raise ValueError(
                f"{checkpoint} was trained with other settings: {'; '.join(differences)}. Resume it with the settings "
                "it was started with, or start over (another output_dir, or no resume_from_checkpoint)"
            )

    def _get_output_dir(self, trial) -> str:
        # While `_save_checkpoint` runs, the Trainer's checkpoint folder is created inside a hidden staging folder.
        staging = getattr(self, "_staging_dir", None)
        return staging if staging is not None else super()._get_output_dir(trial)

    def _save_checkpoint(self, model: nn.Module, trial) -> None:
        """The Trainer's checkpoint, plus this run's mixing state, written whole into a hidden staging folder and
        only then renamed to ``checkpoint-<step>``: a process killed at any moment leaves either the complete
        checkpoint or none (the leftovers are removed at the next start). Old checkpoints are rotated out the
        same way (renamed, then deleted)."""
        run_dir = self._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        parent = staging_parent(run_dir, name)
        staged, final = os.path.join(parent, name), os.path.join(run_dir, name)
        if self.args.should_save and os.path.isdir(parent):  # left by a save of this step that was interrupted
            shutil.rmtree(parent)
        self.accelerator.wait_for_everyone()
        self._staging_dir = parent
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_dir = None
        if not self.args.save_only_model:  # no RNG or optimizer state either: such checkpoints do not resume
            self.save_mixup_state(staged)
        best = self.state.best_model_checkpoint
        if best is not None and os.path.normpath(best) == os.path.normpath(staged):
            self.state.best_model_checkpoint = final
            if self.args.should_save:
                self.state.save_to_json(os.path.join(staged, TRAINER_STATE_NAME))
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            publish_checkpoint(staged, final)
            shutil.rmtree(parent, ignore_errors=True)
            rotate_checkpoints(run_dir, self.args.save_total_limit, self.state.best_model_checkpoint)
        self.accelerator.wait_for_everyone()

    def _remove_partial_checkpoints(self) -> None:
        if not self.args.should_save:
            return
        removed = remove_partial_checkpoints(self.args.output_dir)
        if removed:
            logger.warning(
                f"Removed {len(removed)} partial folder(s) that an interrupted save left in {self.args.output_dir}: "
                f"{', '.join(removed)}"
            )

    def _loads_weights_itself(self) -> bool:
        # DeepSpeed, FSDP and SageMaker model parallelism load their own sharded formats.
        return not (self.is_deepspeed_enabled or self.is_fsdp_enabled or is_sagemaker_mp_enabled())

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        # Trainer loads with a plain load_state_dict(strict=False): models whose saved names differ from
        # their module names (ViT, DeiT, Swin, AST, ...) would keep their random initialisation.
        if self._loads_weights_itself() and has_full_weights(resume_from_checkpoint):
            target = self.model if model is None else model
            route = load_checkpoint_weights(target, resume_from_checkpoint)
            logger.info(f"Loaded the model weights of {resume_from_checkpoint} ({route})")
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        checkpoint = self.state.best_model_checkpoint
        if self._loads_weights_itself() and has_full_weights(checkpoint):
            route = load_checkpoint_weights(self.model, checkpoint)
            logger.info(f"Loaded the best model from {checkpoint} (score: {self.state.best_metric}, {route})")
            return
        super()._load_best_model()

    # -- model card ---------------------------------------------------------------------------------
    def create_model_card(self, *args, **kwargs) -> None:
        """Write `README.md` in `output_dir`: an offline `huggingface_hub` model card with the mixup
        settings and this run's evaluation results (`transformers.modelcard` would call the network)."""
        if not self.is_world_process_zero():
            return
        from .hub.card import CARD_SETTINGS_FILE, build_model_card

        # push_to_hub calls this again with its own arguments: keep what an earlier call said.
        self._model_card_kwargs = {**getattr(self, "_model_card_kwargs", {}), **{k: v for k, v in kwargs.items() if v is not None}}
        card = build_model_card(self, **self._model_card_kwargs)
        os.makedirs(self.args.output_dir, exist_ok=True)
        card.save(os.path.join(self.args.output_dir, "README.md"))
        # What the card was built from, so scripts/publish.py can rebuild it (with the sibling run's
        # comparison) without the trainer.
        settings = {k: v for k, v in self._model_card_kwargs.items() if k in CARD_SETTINGS_KEYS}
        with open(os.path.join(self.args.output_dir, CARD_SETTINGS_FILE), "w") as f:
            json.dump(settings, f, indent=2)


CARD_SETTINGS_KEYS = ("dataset_name", "dataset_id", "eval_split", "modality", "license", "metrics", "run_settings")


def _skip_gc_in_free_memory(accelerator) -> None:
    """Replace `free_memory` on this one accelerator instance (`MixupTrainer(skip_gc_at_train_start=True)`):
    it resets what `Accelerator.free_memory` resets (the prepared objects and the step counter) without
    `release_memory`'s full `gc.collect()`; on the CPU there is no device cache to release. Other
    accelerators in the process keep accelerate's own method."""

    def free_memory(*objects):
        accelerator._schedulers = []
        accelerator._optimizers = []
        accelerator._models = []
        accelerator._dataloaders = []
        accelerator.step = 0
        return [None] * len(objects)

    accelerator.free_memory = free_memory


def default_metrics_for(problem_type: str) -> Callable:
    return {SINGLE_LABEL: classification_metrics, MULTI_LABEL: multi_label_metrics, REGRESSION: regression_metrics}[
        problem_type
    ]

