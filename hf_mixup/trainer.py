"""`MixupTrainer`: a `transformers.Trainer` that trains on mixed batches and evaluates on clean ones.

The trainer is glue. Where a batch is mixed is a site (`hf_mixup.sites`: the inputs, the token embeddings,
block or stage k, the pooled features, partners fetched from the dataset, a `DataCollatorForMixup`'s batch);
each mixes and hands back one draw and its `~hf_mixup.losses.Targets`, and one loss path serves them all:
`_per_example_loss` (`hf_mixup.losses.per_example_loss`), one reduction, one scale for DDP.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback, default_data_collator
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging

from . import losses
from .arguments import MixupArguments
from .checkpoints import (  # noqa: F401  (MIXUP_STATE_NAME: public here, as before)
    MIXUP_STATE_NAME,
    clear_partial_checkpoints,
    load_full_weights,
    load_mixing_state,
    save_mixing_state,
    save_staged_checkpoint,
)
from .checks import check_batch_class_ids, check_settings_for_model, check_trainer_inputs
from .collator import MIXUP_DRAW_KEY, MIXUP_LAMBDA_KEY, adopt_collator
from .data.in_memory import collate_batches, remove_columns_of_batches
from .losses import MULTI_LABEL, REGRESSION, SINGLE_LABEL, Targets, problem_type_of  # noqa: F401  (public here)
from .metrics import default_metrics_for
from .mixing import Mixer, derive_seed, select_input_keys
from .neighbours import PARTNER_PREFIX, PartnerDataset, knn_partner_dataset
from .schedules import trainer_step_schedule
from .sites import DatasetPartners, Mixed, Premixed, Site, holds_token_ids, site_for, unmixed
from .speed import lean_optimizer_step, skip_gc_in_free_memory, unclipped_grad_norm

# The input a `batch_transform` augments, and the stream of `derive_seed` that seeds it (the mixer's is the rank).
INPUT_KEY = "pixel_values"
BATCH_TRANSFORM_STREAM = 1

logger = logging.get_logger(__name__)


class _EpochCallback(TrainerCallback):
    """At each epoch start: new nearest-neighbour partners, and whether a `DataCollatorForMixup` mixes the coming
    epoch (warm-up and off epochs)."""

    def __init__(self, trainer: MixupTrainer):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        partners = self.trainer.train_dataset
        # accelerate's loader passes the epoch to the dataset on one process only (on several, to its batch sampler).
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

    Every site computes its loss through `_per_example_loss(logits, targets)` (`targets`: a
    [`~hf_mixup.losses.Targets`], the labels, the partners' labels and the weights); override it in a subclass
    for another loss of each example (`[batch]`), reduced and scaled by the trainer.

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
            small model (results/bench_tabular.md: 589 -> 723 steps/s on 10 epochs of the UCI MLP). Off by
            default; ignored on other devices and with DeepSpeed.
        batch_transform: a callable on the training batch's ``pixel_values``, on the device, before mixing
            (e.g. [`~hf_mixup.data.in_memory.CifarCrop`] with an `InMemoryImages` dataset, the fast path); its
            generator state (``state_dict`` / ``load_state_dict``) is kept in checkpoints with the mixer's, and
            one with ``seed=None`` is seeded from ``args.seed`` and the process rank. Evaluation never sees it.
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
        batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
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
        if self.data_collator is default_data_collator:  # the same for lists of examples; also takes whole batches
            self.data_collator = collate_batches
        if self.compute_loss_func is not None:
            raise ValueError(
                "MixupTrainer computes the loss itself (mixed targets, gradient accumulation); it does not call "
                "compute_loss_func: leave it unset, or subclass MixupTrainer and override _per_example_loss"
            )
        self._mixup_collator = adopt_collator(self.data_collator, args, num_labels=self.num_labels,
                                              problem_type=self.problem_type, label_key=self.label_key)
        self.mixer = mixer if mixer is not None else Mixer.from_settings(args, seed=self.mixer_seed)
        self.batch_transform = batch_transform
        if batch_transform is not None and getattr(batch_transform, "seed", 0) is None:
            batch_transform.reseed(derive_seed(args.seed, args.process_index, BATCH_TRANSFORM_STREAM))
        check_settings_for_model(args, self.problem_type)
        if args.mixup_partner == "knn" and self.train_dataset is not None:
            self.train_dataset = knn_partner_dataset(self, self.train_dataset)
        self._site: tuple[nn.Module, bool, Site] | None = None
        self._unwrapped: tuple[nn.Module, nn.Module] | None = None
        self._parameter_count: tuple[nn.Module, int] | None = None  # floating_point_ops: the model and its count
        self._token_ids = False
        if args.mixup_layer:
            self._site_of(self.model)  # a model without that site fails here
        if self.compute_metrics is None:
            self.compute_metrics = default_metrics_for(self.problem_type)
        self.add_callback(_EpochCallback(self))
        self._lam_sum, self._lam_count = 0.0, 0
        self._collator_next_draw: int | None = None
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(["hf_mixup", "mixup" if args.mixing_enabled else "erm"])
        self.skip_gc_at_train_start = bool(skip_gc_at_train_start)
        if self.skip_gc_at_train_start and self.args.device.type == "cpu" and not self.is_deepspeed_enabled:
            skip_gc_in_free_memory(self.accelerator)

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

    def _get_collator_with_removed_columns(self, data_collator, description=None):
        """The Trainer's column-removing collator, which also takes the whole batches of `TensorTable` and
        `InMemoryImages`."""
        return remove_columns_of_batches(super()._get_collator_with_removed_columns(data_collator, description))

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
        training = model.training
        if draw_number is not None and training:
            self._collator_next_draw = int(draw_number) + 1
        if labels is None:
            raise ValueError(
                f"MixupTrainer computes the loss from {self.label_key!r}, which is missing from the batch "
                f"(keys {sorted(inputs)}); the dataset needs a label column"
            )
        if training and self.batch_transform is not None:
            inputs[INPUT_KEY] = self.batch_transform(inputs[INPUT_KEY])
        mixed = self._mix(model, inputs, labels, partner, premixed_lam)
        if training and mixed.targets.lam is not None:
            self._record_lambda(mixed.targets.lam)
        if training and self.args.input_noise_std > 0:
            mixed.inputs = self._add_input_noise(mixed.inputs, labels.shape[0])
        with mixed.forward_hooks():
            outputs = model(**mixed.inputs)
        logits = outputs["logits"] if isinstance(outputs, dict) else losses.logits_of(outputs)
        loss = self._reduce(self._per_example_loss(logits, mixed.targets), labels, training, num_items_in_batch)
        if not return_outputs:
            return loss
        if not isinstance(outputs, dict):
            # prediction_step takes outputs[1:] as the logits of a tuple output, expecting the loss first.
            outputs = (loss, *outputs)
        return loss, outputs

    def _mix(self, model: nn.Module, inputs: dict[str, Any], labels: torch.Tensor, partner: dict[str, Any],
             premixed_lam: torch.Tensor | None) -> Mixed:
        """The batch mixed by its site, or left as it is (evaluation, ERM, warm-up and off epochs)."""
        if premixed_lam is not None:
            return Premixed(premixed_lam).mix(inputs, labels)
        if not (model.training and self.mixer.enabled and self.mixing_active()):
            return unmixed(inputs, labels)
        site = DatasetPartners(partner, self.label_key) if partner else self._site_of(model, inputs)
        return site.mix(inputs, labels, self.mixer, input_only=self.args.mixup_targets == "input_only")

    def _site_of(self, model: nn.Module, inputs: dict[str, Any] | None = None) -> Site:
        """Where this model is mixed (`hf_mixup.sites.site_for` of `mixup_layer`), built once per model;
        `mixup_layer=0` on token ids, which cannot be averaged, mixes their embeddings (logged once)."""
        model = self._unwrap(model)
        if self.args.mixup_layer == 0 and not self._token_ids and inputs is not None and holds_token_ids(inputs):
            logger.warning(
                "mixup_layer=0 on token ids, which cannot be averaged: mixing their embeddings instead "
                '(mixup_layer="embeddings": the output of get_input_embeddings(), attention masks joined)'
            )
            self._token_ids = True
        if self._site is None or self._site[:2] != (model, self._token_ids):
            layer = "embeddings" if self._token_ids else self.args.mixup_layer
            self._site = (model, self._token_ids, site_for(model, layer, mask=self.args.mixup_mask))
        return self._site[2]

    def _unwrap(self, model: nn.Module) -> nn.Module:
        """`accelerator.unwrap_model`, kept for the last model asked: unwrapping looks for installed packages on
        disk (accelerate's `is_deepspeed_available`), tens of microseconds a step for a small model."""
        if self._unwrapped is None or self._unwrapped[0] is not model:
            self._unwrapped = (model, self.accelerator.unwrap_model(model))
        return self._unwrapped[1]

    def _add_input_noise(self, inputs: dict[str, Any], batch_size: int) -> dict[str, Any]:
        """`input_noise_std`: Gaussian noise on every floating-point input of a training batch, after mixing, from
        the global torch generator (seeded by the Trainer and restored on resume)."""
        std = float(self.args.input_noise_std)
        inputs = dict(inputs)
        for key in select_input_keys(inputs, batch_size, label_key=self.label_key):
            inputs[key] = inputs[key] + std * torch.randn_like(inputs[key])
        return inputs

    def _per_example_loss(self, logits: torch.Tensor, targets: Targets) -> torch.Tensor:
        """The loss of each example (`[batch]`) against ``targets``, whichever site mixed the batch:
        `hf_mixup.losses.per_example_loss` with this model's problem type and `label_smoothing_factor`, after a
        check of the class ids. The override point for another loss."""
        if self.problem_type == SINGLE_LABEL and not torch.is_floating_point(targets.labels):
            check_batch_class_ids(targets.labels, self.num_labels, column=self.label_key, mixed=targets.mixed)
        return losses.per_example_loss(logits, targets, self.problem_type, float(self.args.label_smoothing_factor))

    def _reduce(self, per_example: torch.Tensor, labels: torch.Tensor, training: bool,
                num_items_in_batch: torch.Tensor | int | None) -> torch.Tensor:
        """The batch's loss. Training: the sum over `num_items_in_batch` (the examples of the whole accumulated
        batch) or the mean, times the processes when `num_items_in_batch` counts every rank's examples (DDP
        averages the gradients over ranks). Evaluation: the mean over the examples with a label (not -100)."""
        if not training:
            if self.problem_type == SINGLE_LABEL and not torch.is_floating_point(labels):
                per_example = per_example[labels.ne(-100)]
            return per_example.mean()
        loss = losses.reduce_loss(per_example, num_items_in_batch)
        if num_items_in_batch is not None and self.args.average_tokens_across_devices and self.args.world_size > 1:
            loss = loss * self.accelerator.num_processes
        return loss

    def _get_grad_norm(self, model, grad_norm=None):
        """The logged gradient norm; without clipping, the same norm without accelerate's clip by 1.0 (`speed.py`)."""
        if grad_norm is None:
            grad_norm = unclipped_grad_norm(self.accelerator, model)
        return super()._get_grad_norm(model, grad_norm=grad_norm)

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """`Trainer.floating_point_ops` (the logged ``total_flos``) with the model's parameter count taken once per
        `train()` call: transformers counts them again every step (`num_parameters` walks every module)."""
        main_input = getattr(self.model, "main_input_name", "input_ids")
        if main_input not in inputs or not hasattr(self.model, "num_parameters"):
            return 0
        if self._parameter_count is None or self._parameter_count[0] is not self.model:
            self._parameter_count = (self.model, self.model.num_parameters(exclude_embeddings=True))
        return 6 * inputs[main_input].numel() * self._parameter_count[1]

    # -- schedule and log ---------------------------------------------------------------------------
    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """With `lr_milestones`: linear warm-up from `warmup_start_factor * learning_rate`, then the learning
        rate times `lr_gamma` at each milestone epoch (the paper's step schedules, `hf_mixup.schedules`)."""
        if optimizer is None:  # the prepared optimizer, before the scheduler wraps its step
            lean_optimizer_step(self.optimizer)
        if self.lr_scheduler is not None or not self.args.lr_milestones:
            return super().create_scheduler(num_training_steps, optimizer)
        self.lr_scheduler = trainer_step_schedule(self, num_training_steps, optimizer or self.optimizer)
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def _record_lambda(self, lam: torch.Tensor) -> None:
        # Summed where lam is, in float64 (the sum Python floats gave), and read only when logged: no sync a step.
        total = lam.detach().float().sum()
        if total.device.type == "mps":  # no float64 there
            total = total.cpu()
        self._lam_sum = self._lam_sum + total.double()
        self._lam_count += lam.numel()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._lam_count:
            logs["mixup_lambda"] = round(float(self._lam_sum) / self._lam_count, 4)
            self._lam_sum, self._lam_count = 0.0, 0
        super().log(logs, start_time)

    # -- inputs, settings and checkpoints -------------------------------------------------------------
    def check_inputs(self) -> None:
        """Check the data against the model and the mixing settings once, before anything is trained: class
        ids in ``0..num_labels-1`` (``-100`` only in evaluation, or in training without mixing), float labels
        of the model's width, labels that are not strings, and inputs with two spatial axes for CutMix.
        `train()` calls it; call it earlier to fail before other work. Raises `ValueError`."""
        check_trainer_inputs(self)
        self._inputs_checked = True

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        """`Trainer.train`, after `check_inputs`; when resuming, the mixing state of the checkpoint is restored
        first (the collator draws while batches are collated, before the Trainer restores its own RNG states)."""
        if not getattr(self, "_inputs_checked", False):
            self.check_inputs()
        self._parameter_count = None
        if self.args.should_save:
            clear_partial_checkpoints(self.args.output_dir)
        if resume_from_checkpoint:
            checkpoint = resume_from_checkpoint
            if checkpoint is True:
                checkpoint = get_last_checkpoint(self.args.output_dir)
            if checkpoint:  # none found: Trainer.train raises
                self.check_resumable(checkpoint)
                self.load_mixup_state(checkpoint)
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def save_mixup_state(self, directory: str) -> None:
        """Write this process's mixing state into checkpoint folder ``directory``: the on-device mixer's
        generator and, with a `DataCollatorForMixup`, the collator's generator as it was before the
        first batch that training has not consumed yet."""
        state = {"mixer": self.mixer.state_dict()}
        if hasattr(self.batch_transform, "state_dict"):
            state["batch_transform"] = self.batch_transform.state_dict()
        if self._mixup_collator is not None:
            state["collator"] = self._mixup_collator.state_dict(next_draw=self._collator_next_draw)
        save_mixing_state(directory, state, self.args.world_size, self.args.process_index)

    def load_mixup_state(self, directory: str) -> bool:
        """Restore the mixing state saved in checkpoint folder ``directory``; False (with a warning) when
        it holds none, in which case the run draws new mixing decisions."""
        state = load_mixing_state(directory, self.args.world_size, self.args.process_index)
        if state is None:
            return False
        self.mixer.load_state_dict(state["mixer"])
        if hasattr(self.batch_transform, "load_state_dict") and "batch_transform" in state:
            self.batch_transform.load_state_dict(state["batch_transform"])
        if self._mixup_collator is not None and "collator" in state:
            self._mixup_collator.load_state_dict(state["collator"])
        return True

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
        from .runs import check_resumable

        check_resumable(checkpoint, self.run_settings())

    def _get_output_dir(self, trial) -> str:
        # While `_save_checkpoint` runs, the Trainer's checkpoint folder is created inside a hidden staging folder.
        staging = getattr(self, "_staging_dir", None)
        return staging if staging is not None else super()._get_output_dir(trial)

    def _save_checkpoint(self, model: nn.Module, trial) -> None:
        """The Trainer's checkpoint and the mixing state, staged and renamed into place whole
        (`hf_mixup.checkpoints.save_staged_checkpoint`)."""
        save_staged_checkpoint(self, model, trial, super()._save_checkpoint)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        target = self.model if model is None else model
        if not load_full_weights(self, target, resume_from_checkpoint, "the model weights"):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        what = f"the best model (score: {self.state.best_metric})"
        if not load_full_weights(self, self.model, self.state.best_model_checkpoint, what):
            super()._load_best_model()

    def create_model_card(self, *args, **kwargs) -> None:
        """Write `README.md` in `output_dir`: an offline `huggingface_hub` model card with the mixup
        settings and this run's evaluation results (`transformers.modelcard` would call the network)."""
        if self.is_world_process_zero():
            from .hub.card import write_model_card

            write_model_card(self, **kwargs)

