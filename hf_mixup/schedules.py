"""The paper's step schedules (`MixupArguments.lr_milestones`): a linear warm-up, then the learning rate times
`lr_gamma` at each milestone epoch, with epochs converted to optimizer steps as the Trainer counts them.
`MixupTrainer.create_scheduler` builds it."""

from __future__ import annotations

import math

import torch
from transformers.utils import logging

__all__ = ["step_schedule", "steps_per_epoch", "trainer_step_schedule"]

logger = logging.get_logger(__name__)


def step_schedule(
    optimizer,
    num_training_steps: int,
    steps_per_epoch: float,
    milestones,
    gamma: float = 0.1,
    warmup_steps: int = 0,
    warmup_start_factor: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up then step decay, with milestones in epochs converted to optimizer steps: the factor on the
    learning rate rises linearly from ``warmup_start_factor`` over ``warmup_steps`` steps, then is
    ``gamma ** (milestones passed)``, a milestone ``m`` passed from step ``round(m * steps_per_epoch)`` on."""
    milestone_steps = [int(round(m * steps_per_epoch)) for m in milestones]

    def factor(step: int) -> float:
        if step < warmup_steps:
            return warmup_start_factor + (1.0 - warmup_start_factor) * step / max(warmup_steps, 1)
        return gamma ** sum(step >= m for m in milestone_steps)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def steps_per_epoch(train_dataset, args, train_batch_size: int, num_training_steps: int) -> float:
    """Optimizer steps per epoch, counted as the Trainer counts them: this process's batches of
    ``train_batch_size`` (the Trainer's ``_train_batch_size``, which covers DataParallel and
    ``auto_find_batch_size``), and a last partial accumulation window counts as a step. A dataset of unknown
    length takes an epoch as ``num_training_steps / args.num_train_epochs``."""
    try:
        examples = len(train_dataset)
    except TypeError:
        if args.max_steps > 0 and args.num_train_epochs:
            logger.warning(
                "lr_milestones with a dataset of unknown length: epochs are taken as max_steps / num_train_epochs"
            )
        return num_training_steps / max(args.num_train_epochs, 1e-9)
    per_process = math.ceil(examples / args.world_size)
    batches = per_process / train_batch_size
    batches = math.floor(batches) if args.dataloader_drop_last else math.ceil(batches)
    accumulation = args.gradient_accumulation_steps
    return max(batches // accumulation + int(batches % accumulation > 0), 1)


def trainer_step_schedule(trainer, num_training_steps: int, optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """`step_schedule` for a `MixupTrainer` with `lr_milestones`: its arguments' milestones, gamma, warm-up steps
    and start factor, with epochs counted as the trainer counts them (`steps_per_epoch`)."""
    args = trainer.args
    return step_schedule(
        optimizer,
        num_training_steps=num_training_steps,
        steps_per_epoch=steps_per_epoch(trainer.train_dataset, args, trainer._train_batch_size, num_training_steps),
        milestones=args.lr_milestones,
        gamma=args.lr_gamma,
        warmup_steps=args.get_warmup_steps(num_training_steps),
        warmup_start_factor=args.warmup_start_factor,
    )
