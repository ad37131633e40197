"""Kill this Python process with SIGKILL at a chosen moment of a training run (for `scripts/kill_sweep.py` and
tests/test_crash_safety.py): put this folder first on PYTHONPATH and set

- ``HF_MIXUP_KILL_AT=N``: SIGKILL at the N-th moment (1-based), or ``HF_MIXUP_KILL_AT="NAME#K"``: at the K-th
  time the moment ``NAME`` (as the trace names it, e.g. ``enter Trainer._save_rng_state``) comes;
- ``HF_MIXUP_KILL_TRACE=path``: append every moment's name to ``path`` (one line each), to count them.

A moment is the entry or the exit of one of the calls below: the training steps, every write of a checkpoint
(weights, optimizer and scheduler, RNG states, trainer state, mixing state, run settings, the rename into
place, the rotation of old checkpoints) and every write of the run's final outputs. A kill at the entry of
``_save_rng_state`` leaves a checkpoint with its weights and optimizer written and its RNG states not: a kill in
the middle of a save. The process is killed as an out-of-memory killer or a pre-empted node kills it: no Python
code runs after it (no `finally`, no `atexit`).
"""

import os

_SPEC = os.environ.get("HF_MIXUP_KILL_AT") or ""
_KILL_NAME, _, _KILL_TIMES = _SPEC.rpartition("#")
_KILL_AT = int(_SPEC) if _SPEC.isdigit() else 0
_TRACE = os.environ.get("HF_MIXUP_KILL_TRACE")

if _SPEC or _TRACE:
    import functools
    import importlib
    import signal

    _count = [0]
    _seen: dict = {}

    def _moment(name: str) -> None:
        _count[0] += 1
        _seen[name] = _seen.get(name, 0) + 1
        if _TRACE:
            with open(_TRACE, "a") as f:
                f.write(f"{_count[0]} {name}\n")
        if _count[0] == _KILL_AT or (name == _KILL_NAME and str(_seen[name]) == _KILL_TIMES):
            os.kill(os.getpid(), signal.SIGKILL)

    def _wrap(owner, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def wrapped(*args, **kwargs):
            _moment(f"enter {name}")
            result = original(*args, **kwargs)
            _moment(f"exit {name}")
            return result

        setattr(owner, attribute, wrapped)

    _transformers = importlib.import_module("transformers.trainer")
    _callback = importlib.import_module("transformers.trainer_callback")
    _ours = importlib.import_module("hf_mixup.trainer")
    _checkpoints = importlib.import_module("hf_mixup.checkpoints")
    _output_dir = importlib.import_module("hf_mixup.cli.output_dir")
    _runs = importlib.import_module("hf_mixup.runs")
    Trainer, MixupTrainer = _transformers.Trainer, _ours.MixupTrainer
    for _owner, _attribute in (
        (Trainer, "training_step"),
        (MixupTrainer, "save_model"),
        (Trainer, "_save_optimizer_and_scheduler"),
        (Trainer, "_save_rng_state"),
        (_callback.TrainerState, "save_to_json"),
        (MixupTrainer, "save_mixup_state"),
        (_checkpoints, "publish_checkpoint"),
        (_checkpoints, "rotate_checkpoints"),
        (Trainer, "evaluate"),
        (Trainer, "save_metrics"),
        (MixupTrainer, "create_model_card"),
        (_runs, "write_run_settings"),
        (_output_dir, "write_run_settings"),
    ):
        _wrap(_owner, _attribute, f"{getattr(_owner, '__name__', _owner)}.{_attribute}")
