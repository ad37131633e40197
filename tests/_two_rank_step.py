"""Run by tests/test_distributed.py under `accelerate launch` (not collected by pytest): ERM steps of
MixupTrainer with plain SGD on the first 32 digits, a batch of `sys.argv[2]` examples per process; the
first process writes the trained weights and the world size to `sys.argv[1]`. With `knn` as `sys.argv[3]`:
mixup with nearest-neighbour partners instead, each rank writing the partners it trained with. Run as a script, its folder
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


def train_knn(output: Path, per_device_batch: int) -> None:
    """Two epochs of mixup with partners among the 3 nearest of the first 64 digits; each rank writes the
    (example pixels, partner index) pairs of its batches to rank<k>.json."""
    seen = []

    class Recording(MixupTrainer):
        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training:
                rows = inputs["pixel_values"].flatten(1).tolist()
                seen.extend(zip(rows, inputs["partner_index"].tolist()))
            return super().compute_loss(model, inputs, *args, **kwargs)

    args = mixup_args(output, mixup_partner="knn", mixup_knn_k=3, num_train_epochs=2,
                      per_device_train_batch_size=per_device_batch, use_cpu=True, seed=0, **PLAIN_SGD)
    data = digits_as_dataset(*load_digits_arrays(), n=64)
    trainer = Recording(model=tiny_vit(), args=args, train_dataset=data)
    trainer.train()
    rank = trainer.args.process_index
    neighbours = trainer.train_dataset.neighbours.tolist()
    (output / f"rank{rank}.json").write_text(json.dumps({"seen": seen, "neighbours": neighbours,
                                                         "world_size": trainer.args.world_size}))


if __name__ == "__main__":
    from hf_mixup.cli.common import end_processes

    output = Path(sys.argv[1])
    if len(sys.argv) > 3 and sys.argv[3] == "knn":
        train_knn(output, int(sys.argv[2]))
    else:
        trainer = train(output, int(sys.argv[2]))
        if trainer.is_world_process_zero():
            model = trainer.accelerator.unwrap_model(trainer.model)
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, output / "weights.pt")
            losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
            (output / "run.json").write_text(json.dumps({"world_size": trainer.args.world_size, "losses": losses}))
    end_processes()  # a gloo group left to the interpreter's teardown can abort a rank
