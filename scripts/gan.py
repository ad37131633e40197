#!/usr/bin/env python
"""Train a toy GAN with a mixup discriminator (the paper's Section 3.7), on accelerate.

    python scripts/gan.py --output_dir runs/gan-ring-mixup --data ring --mixup_max 0.2
    python scripts/gan.py --output_dir runs/gan-grid-plain --data grid --mixup_max 0 --latent_dim 5
    accelerate launch scripts/gan.py --output_dir runs/gan-ring --mixed_precision bf16     # a GPU, or several
    python scripts/gan.py --output_dir runs/gan-ring-mixup --iterations 30000 --resume_from_checkpoint latest

Every field of `hf_mixup.gan.GanArguments` is a flag (`--help` lists them): the data set (`ring`, `grid`)
and its std, the networks (latent dim, hidden units, layers), the discriminator's mixing (`--mixup_max m`:
lam ~ Uniform(0, m) per example, 0 = a plain GAN; or `--mixup_alpha a`: lam ~ Beta(a, a)), batch size,
discriminator steps, iterations, seed, snapshots, checkpoints and resuming. A settings file works too:
`python scripts/gan.py run.json` (or `.yaml`).

Writes into --output_dir: `metrics.json` (modes covered and high-quality share at every snapshot),
`samples.png`, `samples/`, `checkpoint-<k>/` and `generator/` (`GanGenerator.from_pretrained` loads it).
"""

from __future__ import annotations

import sys


def parse(argv: list[str] | None = None):
    from transformers import HfArgumentParser

    from hf_mixup.gan import GanArguments

    parser = HfArgumentParser(GanArguments, description=__doc__.split("\n\n")[0])
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        (args,) = parser.parse_json_file(argv[0])
    elif len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        (args,) = parser.parse_yaml_file(argv[0])
    else:
        (args,) = parser.parse_args_into_dataclasses(argv)
    from hf_mixup.gan import GanTrainer

    trainer = GanTrainer(args)
    trainer.prepare_output_dir()  # a folder holding another run, or a checkpoint that is not this run's: one-line error
    return (trainer,)


def execute(trainer, argv=None) -> dict:
    args = trainer.args
    metrics = trainer.train()
    if trainer.accelerator.is_main_process:
        final = metrics["final"]
        print(
            f"{metrics['method']} on {args.data}: {final['modes_covered']}/{final['num_modes']} modes covered, "
            f"{100 * final['high_quality']:.1f}% high-quality samples at iteration {final['iteration']} "
            f"({metrics['iterations_per_second']:.1f} it/s); outputs in {args.output_dir}"
        )
    return metrics


def main(argv: list[str] | None = None) -> int:
    from hf_mixup.cli.evaluation import run_script

    return run_script(parse, execute, argv, "gan.py")


if __name__ == "__main__":
    sys.exit(main())
