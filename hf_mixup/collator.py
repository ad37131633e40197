"""`DataCollatorForMixup`: mix batches on the CPU, in the DataLoader (workers included)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from transformers import default_data_collator
from transformers.utils import logging

from .mixing import (
    MIXING_FIELDS, MixDraw, Mixer, check_mixing_settings, derive_seed, mix_batch, select_input_keys, spatial_size_of,
)

logger = logging.get_logger(__name__)

MIXUP_LAMBDA_KEY = "mixup_lambda"
MIXUP_DRAW_KEY = "mixup_draw_number"
_HISTORY = 256  # generator states kept for draws collated ahead of training (prefetch, accumulation)


@dataclass
class DataCollatorForMixup:
    """Wraps any collator and returns its batches mixed, with soft ``labels`` of shape ``[batch, num_labels]``.

    Every floating-point input of the batch (``pixel_values``, ``input_values``, ...) is mixed with the
    same draw as the labels; the per-example weights are returned under ``mixup_lambda`` (which
    :class:`~hf_mixup.MixupTrainer` takes out of the batch before the model sees it, and logs).

    Draws come from the collator's own generator, seeded from ``seed`` and ``rank`` (filled in from the
    trainer's arguments when left ``None``); inside DataLoader workers the generator is reseeded from
    the worker's seed, which the DataLoader draws anew for every epoch, so draws differ between
    workers, ranks and epochs. ``mixer``: a `~hf_mixup.mixing.Mixer` to draw from instead of one built from
    the mixing fields, which then take the mixer's settings (give one or the other); in the main process
    it is drawn from as it is, in DataLoader workers it is reseeded as above. ``MixupTrainer`` evaluates with ``base_collator`` (and ``post_mix``)
    alone: evaluation is never mixed.

    ``post_mix`` transforms the batch after mixing, for evaluation too: with a waveform dataset and
    :func:`hf_mixup.data.audio.spectrogram_post_mix`, waveforms are mixed, then turned into spectrograms
    (waveform-level mixing); with features computed by the dataset or ``base_collator``, the
    spectrograms themselves are mixed (the paper's default).

    Resuming from a checkpoint restores the collator's generator exactly (bit-identical weights) for
    map-style datasets loaded in the main process (``dataloader_num_workers=0``). With workers, or with
    an ``IterableDataset`` (whose skipped batches are collated again on resume), the resumed run draws
    from new seeds; mix on the device (the default) when exact resumption matters.

    Example:

    ```python
    >>> import torch
    >>> from hf_mixup import DataCollatorForMixup
    >>> collator = DataCollatorForMixup(num_labels=3, mixup_alpha=1.0, seed=0, rank=0)
    >>> features = [{"pixel_values": torch.full((1, 2, 2), float(i)), "label": i} for i in range(3)]
    >>> batch = collator(features)
    >>> batch["labels"].shape, batch["pixel_values"].shape
    (torch.Size([3, 3]), torch.Size([3, 1, 2, 2]))
    >>> torch.allclose(batch["labels"].sum(-1), torch.ones(3))
    True
    ```
    """

    base_collator: Callable[[list[dict[str, Any]]], dict[str, Any]] = default_data_collator
    num_labels: int | None = None
    mixup_alpha: float = 1.0
    cutmix_alpha: float = 0.0
    cutmix_minmax: Sequence[float] | None = None
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    mixup_mode: str = "batch"
    mixup_partner: str = "random"
    mixup_targets: str = "mixed"
    label_smoothing: float = 0.0
    seed: int | None = None
    rank: int | None = None
    label_key: str = "labels"
    input_keys: Sequence[str] | None = None
    post_mix: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    mixer: Mixer | None = None
    mixing_active: bool = field(default=True, repr=False)

    def __post_init__(self):
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.mixer is not None:
            self._take_settings_of(self.mixer)
        check_mixing_settings(**{name: getattr(self, name) for name in MIXING_FIELDS})
        if self.mixup_partner == "knn":
            raise ValueError(
                "mixup_partner='knn' takes partners from the dataset, on the device: leave DataCollatorForMixup out "
                "(MixupTrainer mixes on the device by default)"
            )
        if self.num_labels is not None and (not isinstance(self.num_labels, int) or self.num_labels < 1):
            raise ValueError(f"num_labels must be a positive int, got {self.num_labels!r}")
        self._mixer = self.mixer if self.mixer is not None else Mixer.from_settings(self)
        self._seeded_for: tuple | None = None
        self._draw_count = 0
        self._history: dict[int, torch.Tensor] = {}
        self._caller_checked = False

    def _take_settings_of(self, mixer: Mixer) -> None:
        """The mixing fields from ``mixer``; a field also set here to another value is refused."""
        given = {
            "mixup_alpha": mixer.mixup_alpha, "cutmix_alpha": mixer.cutmix_alpha, "cutmix_minmax": mixer.cutmix_minmax,
            "mixup_prob": mixer.prob, "mixup_switch_prob": mixer.switch_prob, "mixup_mode": mixer.mode,
            "mixup_partner": mixer.partner,
        }
        defaults = {f.name: f.default for f in fields(self)}
        for name, value in given.items():
            own = getattr(self, name)
            own = tuple(own) if isinstance(own, list) else own
            if own != defaults[name] and own != value:
                raise ValueError(
                    f"DataCollatorForMixup got mixer= and {name}={own!r}, but the mixer has {name}={value!r}: give the "
                    "mixing settings either through the Mixer or through the collator's fields, not both"
                )
            setattr(self, name, value)

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started by spawn / forkserver receive the collator pickled from the main
        # process, where the calling Trainer is still on the stack: check it there.
        self._check_caller()
        return dict(self.__dict__)

    def _check_caller(self) -> None:
        """Refuse to run under a plain `transformers.Trainer` (checked once per process): it would hand the
        soft labels to the model, whose loss then switches `config.problem_type` to multi-label (BCE) for good,
        and it would evaluate on mixed batches. `MixupTrainer` and hand-written loops are fine."""
        if self._caller_checked:
            return
        module = sys.modules.get("transformers.trainer")  # no Trainer class loaded: none can be calling
        if module is not None:
            frame = sys._getframe(1)
            while frame is not None:
                caller = frame.f_locals.get("self")
                if isinstance(caller, module.Trainer) and not getattr(caller, "_mixes_itself", False):
                    raise ValueError(
                        f"DataCollatorForMixup was given to a plain {type(caller).__name__}, which would pass its soft "
                        "labels to the model (whose loss then trains it as multi-label with BCE and saves "
                        "problem_type='multi_label_classification') and would mix evaluation batches: use "
                        "hf_mixup.MixupTrainer (with MixupArguments) instead; in a loop of your own, call the "
                        "collator yourself and compute the loss from its soft 'labels'"
                    )
                frame = frame.f_back
        self._caller_checked = True

    @classmethod
    def from_args(cls, args, num_labels: int | None = None, base_collator: Callable | None = None, **kwargs):
        """Build from :class:`~hf_mixup.MixupArguments` (alphas, probabilities, mode, label smoothing, seed)."""
        settings = {name: getattr(args, name) for name in MIXING_FIELDS}
        settings.update(label_smoothing=args.label_smoothing_factor, seed=args.seed)
        settings.update(kwargs)
        return cls(base_collator=base_collator or default_data_collator, num_labels=num_labels, **settings)

    # -- generator ----------------------------------------------------------------------------------
    def _ensure_seeded(self) -> None:
        worker = torch.utils.data.get_worker_info()
        key = ("worker", worker.seed) if worker is not None else ("main",)
        if self._seeded_for == key:
            return
        if self.mixer is not None and worker is None:  # a given mixer, drawn from as it is
            self._seeded_for = key
            return
        parts = [0 if self.seed is None else self.seed, 0 if self.rank is None else self.rank]
        if worker is not None:
            parts.append(worker.seed)
        self._mixer.reseed(derive_seed(*parts))
        self._seeded_for = key

    def state_dict(self, next_draw: int | None = None) -> dict[str, Any]:
        """The main process's generator state before draw number ``next_draw`` (default: the next one).

        The DataLoader collates batches ahead of training (prefetching, gradient accumulation), so a
        checkpoint asks for the state before the first batch that training has not consumed yet; the
        collator keeps the states of the batches it collated ahead. Each main-process batch carries its
        draw number under ``mixup_draw_number``.
        """
        self._ensure_seeded()
        if next_draw is None or next_draw >= self._draw_count:
            generator, next_draw = self._mixer.generator.get_state(), self._draw_count
        elif next_draw in self._history:
            generator = self._history[next_draw]
        else:
            raise ValueError(
                f"draw {next_draw} was collated more than {_HISTORY} batches ago; its state is gone"
            )
        return {"mixer": {"generator": generator}, "seeded_for": self._seeded_for, "draw_count": next_draw}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._mixer.load_state_dict(state["mixer"])
        self._seeded_for = tuple(state["seeded_for"])
        self._draw_count = int(state.get("draw_count", 0))
        self._history.clear()

    # -- collation ----------------------------------------------------------------------------------
    def unmixed(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """The base collator's batch, with the labels as class ids (used for evaluation)."""
        batch = self.base_collator(features)
        return self.post_mix(dict(batch)) if self.post_mix is not None else batch

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        self._check_caller()
        batch = dict(self.base_collator(features))
        if self.label_key not in batch:
            raise ValueError(
                f"DataCollatorForMixup found no {self.label_key!r} in the collated batch (keys {sorted(batch)}); "
                "the dataset needs a label column ('label' or 'labels'), and with remove_unused_columns=True the "
                "model's forward must accept it (set label_names, or remove_unused_columns=False)"
            )
        labels = batch[self.label_key]
        if not torch.is_floating_point(labels) and self.num_labels is None:
            raise ValueError(
                "DataCollatorForMixup needs num_labels to turn class ids into soft labels: pass num_labels=..., "
                "or give the collator to MixupTrainer, which takes it from model.config.num_labels"
            )
        batch_size = labels.shape[0]
        self._ensure_seeded()
        spatial = None
        if self._mixer.cutmix_enabled:
            keys = select_input_keys(batch, batch_size, self.label_key, self.input_keys)
            spatial = spatial_size_of(batch[keys[0]])
            if spatial is None:
                # Let the engine explain the shape it needs.
                self._mixer.draw(batch_size, None)
        in_main_process = torch.utils.data.get_worker_info() is None
        if in_main_process:
            self._history[self._draw_count] = self._mixer.generator.get_state()
            self._history.pop(self._draw_count - _HISTORY, None)
        mixer_on = self.mixing_active and self._mixer.enabled
        # Class ids for partners within a class; a mixer that needs none is called as before.
        by_class = {"labels": labels} if self.mixup_partner == "same_class" else {}
        draw = self._mixer.draw(batch_size, spatial, **by_class) if mixer_on else MixDraw.identity(batch_size)
        mixed = mix_batch(
            batch, draw, self.label_key, self.input_keys, self.num_labels, self.label_smoothing, self.mixup_targets
        )
        mixed[MIXUP_LAMBDA_KEY] = draw.lam.clone()
        if in_main_process:
            mixed[MIXUP_DRAW_KEY] = self._draw_count
            self._draw_count += 1
        return self.post_mix(mixed) if self.post_mix is not None else mixed

    def set_epoch(self, epoch: float, active: bool) -> None:
        """Called by the trainer at each epoch start: whether this epoch is mixed (warm-up / off epoch)."""
        self.mixing_active = bool(active)


def adopt_collator(collator, args, *, num_labels: int, problem_type: str, label_key: str) -> DataCollatorForMixup | None:
    """``collator`` made ready for a `MixupTrainer` with arguments ``args`` (None when it is not a
    `DataCollatorForMixup`): fields left unset (``num_labels``, ``seed``, ``rank``, label smoothing, the label
    key) and partner / target settings left at their defaults are taken from the trainer; settings the
    collator cannot follow (kNN partners, hidden-layer sites, fractional warm-up or off epochs) are refused."""
    if not isinstance(collator, DataCollatorForMixup):
        return None
    single_label = problem_type == "single_label_classification"
    if collator.num_labels is None:
        collator.num_labels = num_labels
    if collator.seed is None:
        collator.seed = args.seed
    if collator.rank is None:
        collator.rank = args.process_index
    if collator.label_smoothing == 0 and args.label_smoothing_factor and single_label:
        collator.label_smoothing = args.label_smoothing_factor
    if not single_label and collator.label_smoothing:
        raise ValueError("label smoothing applies to single-label classification only; set it to 0 for this model")
    if collator.label_key == "labels":
        collator.label_key = label_key
    if args.mixup_partner == "knn":
        raise ValueError(
            "mixup_partner='knn' mixes on the device with partners from the dataset; it cannot use "
            "DataCollatorForMixup: leave the data collator as the plain one"
        )
    if args.mixup_layer:
        raise ValueError(
            f"mixup_layer={args.mixup_layer!r} mixes hidden features on the device; it cannot use "
            "DataCollatorForMixup: leave the data collator as the plain one"
        )
    # The arguments' partner and target settings reach a collator left at the defaults.
    for name, default in (("mixup_partner", "random"), ("mixup_targets", "mixed")):
        if getattr(collator, name) == default and getattr(args, name) != default:
            if name == "mixup_partner" and collator.mixer is not None:
                raise ValueError(
                    f"mixup_partner={args.mixup_partner!r} in the arguments, but the collator's mixer draws random "
                    "partners: build the Mixer with partner=... to match"
                )
            setattr(collator, name, getattr(args, name))
            if name == "mixup_partner":  # a mixer with the new partners (and their checks)
                collator._mixer = Mixer.from_settings(collator)
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
    return collator
