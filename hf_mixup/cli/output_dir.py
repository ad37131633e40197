"""`hf-mixup train` and a used `--output_dir`: resume only a run of the same settings, say so when it is
already finished, start over only when asked (`--overwrite_output_dir`).

Order of work, so that a refused command changes nothing: `check_output_dir` only reads (before the data and
model are built); `start_run` clears the folder (with `--overwrite_output_dir`) and records the settings only
once everything is built; `finish_run` marks the run finished after its last output is written.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import shutil

from transformers.trainer_utils import get_last_checkpoint

from ..checkpoints import LEFTOVER_PREFIXES
from ..runs import RUN_SETTINGS_NAME, differing_settings, read_run_settings, run_record, write_run_settings
from .errors import UsageError

logger = logging.getLogger("hf_mixup.train")

# What a run writes at the top of its output folder (removed by --overwrite_output_dir, with every
# checkpoint-<step>); any other file there is left alone.
RUN_OUTPUTS = (
    "README.md", RUN_SETTINGS_NAME, "hf_mixup_card.json", "*_results.json", "trainer_state.json", "training_args.bin",
    "config.json", "*.safetensors", "*.safetensors.index.json", "preprocessor_config.json", "processor_config.json",
    "feature_extractor_config.json", "tokenizer*.json", "special_tokens_map.json", "vocab.*", "merges.txt", "curves.png",
    "test_calibration.json", "reliability.png",
)
# Any of these without a run_settings.json: a run (of an older hf_mixup, or another tool) whose settings are unknown.
USED_MARKERS = ("model.safetensors", "model.safetensors.index.json", "all_results.json", "hf_mixup_card.json")


def check_output_dir(model_args, data_args, training_args) -> dict[str, float] | None:
    """Read-only check of ``--output_dir`` (and of an explicit ``--resume_from_checkpoint``) against these
    settings. Returns the saved metrics of a finished run of the same settings (nothing left to do), else None.

    Raises:
        UsageError: the folder (or the checkpoint) holds a run with other settings, or one whose settings were
            not recorded; the message names the differing fields and what to do.
    """
    record = run_record(training_args, model_args, data_args)
    explicit = training_args.resume_from_checkpoint
    if explicit:
        saved = read_run_settings(explicit) if os.path.isdir(explicit) else None
        differences = differing_settings(saved, record) if saved else []
        if differences:
            raise UsageError(
                f"--resume_from_checkpoint {explicit} was trained with other settings: {'; '.join(differences)}; "
                "resume it with the settings it was started with"
            )
    out = training_args.output_dir
    if training_args.overwrite_output_dir or not os.path.isdir(out):
        return None
    saved = read_run_settings(out)
    if saved is None:
        used = [name for name in USED_MARKERS if os.path.exists(os.path.join(out, name))]
        checkpoint = get_last_checkpoint(out)
        if checkpoint is not None or used:
            what = os.path.basename(checkpoint) if checkpoint else used[0]
            raise UsageError(
                f"--output_dir {out} holds a run ({what}) whose settings were not recorded ({RUN_SETTINGS_NAME} is "
                "missing), so it cannot be resumed safely: pass --overwrite_output_dir to start over there, or choose "
                "another --output_dir"
            )
        return None
    differences = differing_settings(saved, record)
    if differences:
        raise UsageError(
            f"--output_dir {out} holds a run with other settings: {'; '.join(differences)}. Run the command it was "
            "started with to resume or keep it, pass --overwrite_output_dir to start over there, or choose another "
            "--output_dir"
        )
    if not saved.get("finished"):
        return None
    results = os.path.join(out, "all_results.json")
    metrics = {}
    if os.path.isfile(results):
        with open(results) as f:
            metrics = json.load(f)
    logger.warning(
        "%s holds a finished run with these settings: nothing to do (its weights, card and results are unchanged; "
        "pass --overwrite_output_dir to train it again)", out,
    )
    return metrics


def clear_run(out: str) -> list[str]:
    """Remove a previous run's checkpoints, interrupted-save leftovers and outputs from ``out``; the names removed."""
    removed = []
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name)
        checkpoint = name.startswith("checkpoint-") and os.path.isdir(path)
        if checkpoint or name.startswith(LEFTOVER_PREFIXES):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.isfile(path) and any(fnmatch.fnmatch(name, pattern) for pattern in RUN_OUTPUTS):
            os.remove(path)
        else:
            continue
        removed.append(name)
    return removed


def start_run(trainer, model_args, data_args, training_args) -> None:
    """Once the trainer is built: clear the folder for `--overwrite_output_dir`, and record the settings (the
    trainer writes them into every checkpoint too)."""
    trainer.run_flags = {key: value for key, value in run_record(training_args, model_args, data_args).items()
                         if key in ("model", "data")}
    out = training_args.output_dir
    if trainer.is_world_process_zero():
        if training_args.overwrite_output_dir and os.path.isdir(out):
            removed = clear_run(out)
            if removed:
                logger.warning("--overwrite_output_dir: removed the previous run from %s (%s)", out, ", ".join(removed))
        write_run_settings(out, trainer.run_settings())
    trainer.accelerator.wait_for_everyone()


def finish_run(trainer) -> None:
    """Mark the run finished: every output is written, so the same command run again does nothing."""
    if trainer.is_world_process_zero():
        write_run_settings(trainer.args.output_dir, {**trainer.run_settings(), "finished": True})
