#!/usr/bin/env python
"""Steps per second of MixupTrainer on the paper's table MLP against a plain PyTorch loop doing the same work, with
each `train()` call split into its steady step time and its fixed start-up cost.

    python scripts/bench_tabular.py                 # writes results/bench_tabular.{json,md}
    python scripts/bench_tabular.py --rounds 7 --dataset phishing --threads 1

Same model (the 2 x 128 ReLU MLP of recipes/uci_mlp.yaml), same encoded rows (a `TensorTable`, served a whole batch
at a time through `collate_batches`, as `hf-mixup train` serves tables), same batch (16), same optimiser (Adam,
lr 1e-3), same mixing (hf_mixup's engine, alpha 1) and the recipe's 10 epochs of the table per timed call
(`--epochs`). The loop is what the official mixup code does: a shuffled DataLoader, draw, mix, pair-form loss,
backward, step; a second loop stacks the rows one by one (the Trainer's default collation before `TensorTable`
served batches). The trainer runs as `hf-mixup train` would with the recipe (no evaluation, no checkpoints),
each call timed from `train()` to its return, so its set-up (dataloader, optimiser, callbacks, and the
`gc.collect()` that `train()` starts with unless `skip_gc_at_train_start=True`) counts.

Every call is also split in two: the steady step is the mean time between consecutive optimizer steps after the
first `--warmup_steps` (a `StepTimer`; logging steps and epoch boundaries included), and the start-up is the
call's wall time minus steps x steady step (what a call costs before and after its steps). Every round times each
run once (after one warm-up round), the order rotating from round to round, for `--rounds` rounds; each ratio
(steady step, whole call) is of medians over the rounds of that one run. Torch runs `--threads` intra-op threads
(1 by default: a batch of 16 through a 128-wide MLP gains nothing from a second thread, and on a shared machine a
second thread waits for a busy core at every kernel).
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch

from hf_mixup import MixupArguments, MixupTrainer
from hf_mixup.data import OFFLINE_DATASETS
from hf_mixup.data.in_memory import collate_batches
from hf_mixup.data.tabular import TabularPreprocessor, TensorTable
from hf_mixup.experiments import StepTimer, command_line, describe_machine, time_interleaved, write_results
from hf_mixup.losses import mixup_cross_entropy
from hf_mixup.mixing import Mixer, mix_inputs
from hf_mixup.models import TabularMLPConfig, TabularMLPForPrediction


class RowByRow(torch.utils.data.Dataset):
    """The table read one row at a time (no `__getitems__`), each batch stacked by the default collation."""

    def __init__(self, table: TensorTable):
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.table[i]


def plain_loop(model, data, batch_size: int, seed: int, epochs: int, timer: StepTimer) -> int:
    generator = torch.Generator().manual_seed(seed)
    collate = collate_batches if isinstance(data, TensorTable) else None
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator,
                                         collate_fn=collate)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    mixer = Mixer(mixup_alpha=1.0, seed=seed)
    model.train()
    timer.reset()
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
            timer.tick()
            steps += 1
    return steps


def trainer_run(model, table, batch_size: int, seed: int, epochs: int, output_dir: str, timer: StepTimer,
                skip_gc: bool = False, **overrides) -> int:
    settings = dict(
        output_dir=output_dir, mixup_alpha=1.0, num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        optim="adamw_torch", learning_rate=1e-3, weight_decay=0.0, max_grad_norm=0.0, lr_scheduler_type="constant",
        eval_strategy="no", save_strategy="no", logging_steps=50, report_to="none", disable_tqdm=True,
        use_cpu=True, seed=seed, remove_unused_columns=False,
    )
    settings.update(overrides)
    trainer = MixupTrainer(model=model, args=MixupArguments(**settings), train_dataset=table,
                           data_collator=collate_batches, skip_gc_at_train_start=skip_gc, callbacks=[timer])
    return trainer.train().global_step


def timed(run, warmup_steps: int):
    """A candidate for `time_interleaved`: calls ``run(round, timer)`` and returns (steps, steady step seconds)."""

    def call(r):
        timer = StepTimer()
        steps = run(r, timer)
        return steps, statistics.fmean(timer.steady(warmup_steps))

    return call


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="phishing")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--warmup_steps", type=int, default=20, help="step intervals left out of the steady step")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (torch.set_num_threads)")
    parser.add_argument("--output", default="results/bench_tabular")
    args = parser.parse_args(argv)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    frame = OFFLINE_DATASETS[args.dataset]()["train"].to_pandas()
    preprocessor = TabularPreprocessor.fit(frame, "label")
    table = TensorTable.from_rows(preprocessor, frame)
    torch.manual_seed(0)
    model = TabularMLPForPrediction(TabularMLPConfig.from_preprocessor(preprocessor))
    out = "/tmp/bench_tabular"
    b, e = args.batch_size, args.epochs
    runs = {
        "plain loop": lambda r, t: plain_loop(model, table, b, r, e, t),
        "plain loop, rows stacked one by one": lambda r, t: plain_loop(model, RowByRow(table), b, r, e, t),
        "MixupTrainer (recipe settings)": lambda r, t: trainer_run(model, table, b, r, e, out, t),
        "MixupTrainer(skip_gc_at_train_start=True)": lambda r, t: trainer_run(model, table, b, r, e, out, t,
                                                                              skip_gc=True),
        "MixupTrainer, gradient clipping 1.0 (the TrainingArguments default)": lambda r, t: trainer_run(
            model, table, b, r, e, out, t, max_grad_norm=1.0),
    }
    candidates = {name: timed(run, args.warmup_steps) for name, run in runs.items()}
    load_before = os.getloadavg()[0]
    # Round 0 warms up; every later round times each candidate once, the order rotating.
    timings = time_interleaved(candidates, args.rounds, warmup_rounds=1, keep_results=True, progress="rounds")
    load = (load_before, os.getloadavg()[0])
    steps, steady, call, startup = {}, {}, {}, {}
    for name, t in timings.items():
        steps[name] = t.results[-1][0]
        steady[name] = statistics.median(result[1] for result in t.results)
        call[name] = t.median
        startup[name] = statistics.median(
            seconds - n * step for seconds, (n, step) in zip(t.seconds, t.results))
    base = "plain loop"
    rate = {name: steps[name] / call[name] for name in runs}
    device = describe_machine()
    rows = [
        f"| {name} | {steps[name]} | {steady[name] * 1e6:.0f} | {steady[base] / steady[name]:.3f} | "
        f"{startup[name] * 1e3:.1f} | {call[name]:.3f} | {rate[name]:.0f} | {rate[name] / rate[base]:.3f} |"
        for name in runs
    ]
    text = "\n".join([
        f"# MixupTrainer vs a plain PyTorch loop: table MLP, {e} epochs of {args.dataset} ({len(table)} rows), "
        f"batch {b}, median of {args.rounds} interleaved rounds ({device})",
        "",
        "Steady step: mean time between optimizer steps after the first "
        f"{args.warmup_steps}; start-up: the call's wall time minus steps x steady step; whole call: steps over "
        "the wall time of one `train()` call (or one loop). Both ratios come from the same interleaved run. "
        f"Load average {load[0]:.1f} at the start, {load[1]:.1f} at the end, on {os.cpu_count()} cores: the higher, "
        "the slower and noisier the absolute times; interleaving gives every run the same load.",
        "",
        "| run | steps | steady step (us) | steady vs plain loop | start-up (ms) | whole call (s) | steps/s | "
        "whole call vs plain loop |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"`{command_line(argv, __file__)}`",
        "",
    ])
    write_results(args.output, text, {
        "device": device, "threads": args.threads, "warmup_steps": args.warmup_steps, "steps": steps,
        "steady_step_seconds": steady, "startup_seconds": startup, "seconds_per_call": call,
        "steps_per_second": rate,
        "steady_vs_plain_loop": {name: steady[base] / steady[name] for name in runs},
        "whole_call_vs_plain_loop": {name: rate[name] / rate[base] for name in runs},
        "calls": {name: {"seconds": t.seconds, "steps_and_steady_step": t.results} for name, t in timings.items()},
        "load_average_start_end": load,
    }, argv=argv, script=__file__)
    return rate


if __name__ == "__main__":
    main()
