#!/usr/bin/env python
"""Steps per second of MixupTrainer on the paper's table MLP against a plain PyTorch loop doing the same work.

    python scripts/bench_tabular.py                 # writes results/bench_tabular.{json,md}
    python scripts/bench_tabular.py --rounds 7 --dataset phishing

Same model (the 2 x 128 ReLU MLP of recipes/uci_mlp.yaml), same encoded rows (a `TensorTable`), same
batch (16), same optimiser (Adam, lr 1e-3), same mixing (hf_mixup's engine, alpha 1) and the recipe's
10 epochs of the table per timed call (`--epochs`). The loop is what the official mixup code does: a
shuffled DataLoader, draw, mix, pair-form loss, backward, step. The trainer runs as `scripts/train.py`
would with the recipe (no evaluation, no checkpoints), each call timed from `train()` to its return,
so its set-up (dataloader, optimiser, callbacks, and the `gc.collect()` that `train()` starts with unless
`skip_gc_at_train_start=True`) counts. Every round times each run once (after one
warm-up round), the order rotating from round to round, for `--rounds` rounds; the ratio is of medians.
Variants of the trainer show where its overhead goes.
"""

from __future__ import annotations

import argparse

import torch

from hf_mixup import MixupArguments, MixupTrainer
from hf_mixup.data import OFFLINE_DATASETS
from hf_mixup.data.tabular import TabularPreprocessor, TensorTable
from hf_mixup.experiments import command_line, describe_machine, time_interleaved, write_results
from hf_mixup.losses import mixup_cross_entropy
from hf_mixup.mixing import Mixer, mix_inputs
from hf_mixup.models import TabularMLPConfig, TabularMLPForPrediction


def plain_loop(model, table, batch_size: int, seed: int, epochs: int) -> int:
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(table, batch_size=batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    mixer = Mixer(mixup_alpha=1.0, seed=seed)
    model.train()
    steps = 0
    for _ in range(epochs):
        for batch in loader:
            x, y = batch["input_values"], batch["labels"]
            draw = mixer.draw(x.shape[0])
            logits = model(input_values=mix_inputs(x, draw)).logits
            loss = mixup_cross_entropy(logits, y, y[draw.index], draw.lam).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
    return steps


def trainer_run(model, table, batch_size: int, seed: int, epochs: int, output_dir: str, skip_gc: bool = False,
                **overrides) -> int:
    settings = dict(
        output_dir=output_dir, mixup_alpha=1.0, num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        optim="adamw_torch", learning_rate=1e-3, weight_decay=0.0, max_grad_norm=0.0, lr_scheduler_type="constant",
        eval_strategy="no", save_strategy="no", logging_steps=50, report_to="none", disable_tqdm=True,
        use_cpu=True, seed=seed, remove_unused_columns=False,
    )
    settings.update(overrides)
    trainer = MixupTrainer(model=model, args=MixupArguments(**settings), train_dataset=table,
                           skip_gc_at_train_start=skip_gc)
    return trainer.train().global_step


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="phishing")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--output", default="results/bench_tabular")
    args = parser.parse_args(argv)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    frame = OFFLINE_DATASETS[args.dataset]()["train"].to_pandas()
    preprocessor = TabularPreprocessor.fit(frame, "label")
    table = TensorTable.from_rows(preprocessor, frame)
    torch.manual_seed(0)
    model = TabularMLPForPrediction(TabularMLPConfig.from_preprocessor(preprocessor))
    out = "/tmp/bench_tabular"
    candidates = {
        "plain loop": lambda r: plain_loop(model, table, args.batch_size, r, args.epochs),
        "MixupTrainer (recipe settings)": lambda r: trainer_run(model, table, args.batch_size, r, args.epochs, out),
        "MixupTrainer, logging every 500 steps": lambda r: trainer_run(
            model, table, args.batch_size, r, args.epochs, out, logging_steps=500),
        "MixupTrainer, gradient clipping 1.0 (the TrainingArguments default)": lambda r: trainer_run(
            model, table, args.batch_size, r, args.epochs, out, max_grad_norm=1.0),
        "MixupTrainer(skip_gc_at_train_start=True)": lambda r: trainer_run(
            model, table, args.batch_size, r, args.epochs, out, skip_gc=True),
    }
    # Round 0 warms up; every later round times each candidate once, the order rotating.
    timings = time_interleaved(candidates, args.rounds, warmup_rounds=1, keep_results=True, progress="rounds")
    steps = {name: t.results[-1] for name, t in timings.items()}
    rate = {name: steps[name] / t.median for name, t in timings.items()}
    base = rate["plain loop"]
    device = describe_machine()
    rows = [f"| {name} | {steps[name]} | {rate[name]:.0f} | {rate[name] / base:.3f} |" for name in candidates]
    text = "\n".join([
        f"# MixupTrainer vs a plain PyTorch loop: table MLP, {args.epochs} epochs of {args.dataset} ({len(table)} rows), "
        f"batch {args.batch_size}, median of {args.rounds} interleaved rounds ({device})",
        "",
        "| run | steps | steps/s | vs plain loop |",
        "|---|---|---|---|",
        *rows,
        "",
        f"`{command_line(argv, __file__)}`",
        "",
    ])
    write_results(args.output, text, {"device": device, "steps_per_second": rate, "steps": steps,
                                       "seconds_per_call": {name: t.seconds for name, t in timings.items()}},
                  argv=argv, script=__file__)
    return rate


if __name__ == "__main__":
    main()
