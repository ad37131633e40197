"""A run's settings as JSON (`run_settings.json`): what shaped its weights, written into the output folder
and every checkpoint, so that

- a run is resumed only with the settings it was started with (`differing_settings`), and a card or a
  published model never states a setting its weights did not see;
- `hf-mixup publish` reads the settings without unpickling anything from a folder a user may have received
  (`RecordedArguments`, in place of the Trainer's pickled ``training_args.bin``).

The record holds every `MixupArguments` field (``training``), the world size and the GPUs of one process, and for
the command line its model and data flags (``model``, ``data``); ``finished`` marks a run whose outputs are all
written.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

RUN_SETTINGS_NAME = "run_settings.json"

# Fields that leave the weights as they are: where things are written or reported, how evaluation batches are
# formed, the device, the launcher's bookkeeping. Every other field of MixupArguments / TrainingArguments (and
# every model and data flag except those below) must match for a run to be resumed.
NEUTRAL_TRAINING_FIELDS = frozenset({
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "do_train", "do_eval", "do_predict",
    "logging_dir", "logging_strategy", "logging_steps", "logging_first_step", "log_on_each_node",
    "logging_nan_inf_filter", "include_num_input_tokens_seen", "log_level", "log_level_replica", "disable_tqdm",
    "report_to", "run_name", "project", "trackio_space_id", "trackio_bucket_id", "trackio_static_space_id",
    "per_device_eval_batch_size", "prediction_loss_only", "eval_on_start", "eval_do_concat_batches",
    "eval_use_gather_object", "eval_accumulation_steps", "include_for_metrics", "batch_eval_metrics",
    "bf16_full_eval", "fp16_full_eval", "eval_delay", "eval_strategy", "eval_steps",
    "save_strategy", "save_steps", "save_on_each_node", "save_total_limit", "save_only_model", "enable_jit_checkpoint",
    "push_to_hub", "hub_token", "hub_private_repo", "hub_model_id", "hub_strategy", "hub_always_push", "hub_revision",
    "use_cpu", "local_rank", "ddp_backend", "ddp_timeout", "debug", "skip_memory_metrics", "torch_empty_cache_steps",
    "dataloader_pin_memory", "dataloader_persistent_workers", "dataloader_prefetch_factor",
    "restore_callback_states_from_checkpoint",
})
# Evaluation shapes the final weights only through load_best_model_at_end: then these count too.
BEST_MODEL_FIELDS = frozenset({"eval_strategy", "eval_steps", "save_strategy", "save_steps"})
NEUTRAL_DATA_FIELDS = frozenset({"max_eval_samples", "memorisation_every_epoch"})


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: getattr(v, "value", str(v))))


def training_record(args) -> dict[str, Any]:
    """Every field of ``args`` (a `TrainingArguments`) as JSON values (tokens masked, as `to_dict` does)."""
    return _json_safe(args.to_dict())


def run_record(args, model_args=None, data_args=None) -> dict[str, Any]:
    """The record `run_settings.json` holds for a run with these settings."""
    record: dict[str, Any] = {"training": training_record(args), "world_size": int(args.world_size),
                              "gpus_per_process": max(1, int(args.n_gpu))}
    for name, flags in (("model", model_args), ("data", data_args)):
        if flags is not None:
            record[name] = _json_safe(dataclasses.asdict(flags))
    return record


def differing_settings(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The settings that shape the weights and differ between two records, as ``name (saved there, current
    here)``; a field only one record has (another version of hf_mixup) is not compared."""
    differences = []
    best_model = any(r.get("training", {}).get("load_best_model_at_end") for r in (saved, current))
    for section, neutral in (("training", NEUTRAL_TRAINING_FIELDS), ("model", frozenset()), ("data", NEUTRAL_DATA_FIELDS)):
        before, now = saved.get(section), current.get(section)
        if before is None or now is None:
            continue
        for name in sorted(set(before) & set(now)):
            if name in neutral and not (best_model and name in BEST_MODEL_FIELDS):
                continue
            if before[name] != now[name]:
                differences.append(f"{name} ({before[name]!r} there, {now[name]!r} here)")
    # The processes split each batch and draw their own partners, and one process on several GPUs (DataParallel)
    # multiplies its batch: another number of either gives other weights.
    for key, words in (
        ("world_size", "the number of processes ({0} there, {1} here: launch it with "
                       "`accelerate launch --num_processes {0}`)"),
        ("gpus_per_process", "the GPUs one process uses (DataParallel: {0} there, {1} here; CUDA_VISIBLE_DEVICES "
                             "picks them)"),
    ):
        before, now = saved.get(key), current.get(key)
        if before is not None and now is not None and before != now:
            differences.append(words.format(before, now))
    return differences


def check_resumable(checkpoint: str, current: dict[str, Any]) -> None:
    """Refuse to resume ``checkpoint`` with settings (the record ``current``) that shape the weights differently
    (`ValueError` naming them); a checkpoint without `run_settings.json` is resumed with a warning."""
    saved = read_run_settings(checkpoint)
    if saved is None:
        from transformers.utils import logging

        logging.get_logger(__name__).warning(
            f"{checkpoint} has no {RUN_SETTINGS_NAME}: its settings cannot be checked against these"
        )
        return
    differences = differing_settings(saved, current)
    if differences:
        raise ValueError(
            f"{checkpoint} was trained with other settings: {'; '.join(differences)}. Resume it with the settings "
            "it was started with, or start over (another output_dir, or no resume_from_checkpoint)"
        )


def read_run_settings(folder: str) -> dict[str, Any] | None:
    path = os.path.join(folder, RUN_SETTINGS_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} cannot be read ({error}): remove the folder's run, or choose another output_dir") from error
    if not isinstance(record, dict) or not isinstance(record.get("training"), dict):
        raise ValueError(f"{path} is not a run-settings file of hf_mixup (no 'training' mapping)")
    return record


def write_run_settings(folder: str, record: dict[str, Any]) -> None:
    """Write ``record`` into ``folder`` atomically (a temporary file renamed into place)."""
    os.makedirs(folder, exist_ok=True)
    from .checkpoints import PARTIAL_PREFIX

    path = os.path.join(folder, RUN_SETTINGS_NAME)
    temporary = os.path.join(folder, f"{PARTIAL_PREFIX}{RUN_SETTINGS_NAME}.{os.getpid()}")  # cleared if left behind
    with open(temporary, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(temporary, path)


class RecordedArguments:
    """A run's recorded `MixupArguments` fields as attributes (read from `run_settings.json`), with the
    properties the model card uses (`mixing_enabled`, `world_size`). Nothing is unpickled."""

    def __init__(self, record: dict[str, Any]):
        self.__dict__.update(record["training"])
        self.world_size = int(record.get("world_size", 1))

    @property
    def mixing_enabled(self) -> bool:
        from .arguments import MixupArguments

        return MixupArguments.mixing_enabled.fget(self)
