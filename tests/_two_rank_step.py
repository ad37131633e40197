"""Run by tests/test_distributed.py under `accelerate launch` (not collected by pytest): ERM steps of
MixupTrainer with plain SGD on the first 32 digits, a batch of `sys.argv[2]` examples per process; the
first process writes the trained weights and the world size to `sys.argv[1]`. Run as a script, its folder
(tests/) comes first on the import path, so the shared helpers import from conftest."""

import json
import sys
from pathlib import Path

import torch
from conftest import PLAIN_SGD, digits_as_dataset, load_digits_arrays, mixup_args, tiny_vit

from hf_mixup import MixupTrainer

STEPS, LEARNING_RATE, EXAMPLES = 3, 0.5, 32


def train(output: Path, per_device_batch: int) -> MixupTrainer:
    """The same run in one process (batch 32) or in two (batch 16 each): every step sees all 32 examples."""
    args = mixup_args(output, mixup_alpha=0.0, max_steps=STEPS, per_device_train_batch_size=per_device_batch,
                      learning_rate=LEARNING_RATE, use_cpu=True, seed=0, **PLAIN_SGD)
    data = digits_as_dataset(*load_digits_arrays(), n=EXAMPLES)
    trainer = MixupTrainer(model=tiny_vit(), args=args, train_dataset=data)
    trainer.train()
    return trainer


if __name__ == "__main__":
    output = Path(sys.argv[1])
    trainer = train(output, int(sys.argv[2]))
    if trainer.is_world_process_zero():
        model = trainer.accelerator.unwrap_model(trainer.model)
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, output / "weights.pt")
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        (output / "run.json").write_text(json.dumps({"world_size": trainer.args.world_size, "losses": losses}))
