"""Training the paper's toy GANs with a mixup discriminator (Section 3.7), on ``accelerate``.

One generator iteration, as in the authors' released code (``gan/example_gan.py``):

1. ``d_steps`` (5) discriminator steps. Each builds a batch of ``batch_size`` real points (label 1) and as many
   generated ones (label 0), shuffled. With mixup on, a second such batch is built independently and the two are
   mixed example by example, ``x = lam x1 + (1 - lam) x2`` and ``y = lam y1 + (1 - lam) y2``, with
   ``lam ~ Uniform(0, mixup_max)`` (the released code; ``mixup_max`` = m in {0, 0.1, 0.2, 0.5, 1}) or
   ``lam ~ Beta(mixup_alpha, mixup_alpha)`` (the classifiers' law). Loss: BCE with logits against the mixed
   labels, the paper's ``min_d E l(d(lam x + (1 - lam) g(z)), lam)`` for real/generated pairs.
2. One generator step on an unmixed batch: the generator maximises the discriminator's BCE (``-BCE``).

The mixing goes through the classifiers' engine (:func:`hf_mixup.mixing.mix_inputs` / ``mix_targets`` with
``sample_beta`` for the Beta law). Everything random (real points, latent noise, shuffles, lam) is drawn from a
generator of the run's own, seeded by ``seed`` and the process rank, and saved in every checkpoint, so a resumed
run continues bit for bit. Two computations of the released loop whose results it throws away are skipped
(generator gradients during discriminator steps, discriminator weight gradients during the generator step); the
updates are the same.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..mixing import MixDraw, derive_seed, mix_inputs, mix_targets, sample_beta
from .data import DEFAULT_STD, TOY_DATA, mode_coverage, toy_data, toy_means
from .models import GanDiscriminator, GanGenerator

SNAPSHOTS = (10, 100, 1000, 10000, 20000)
CONFIG_NAME = "gan_config.json"
METRICS_NAME = "metrics.json"
CHECKPOINT_PREFIX = "checkpoint-"
# Settings a resumed run must share with the run it continues (the others: how long, what to save).
RUN_DEFINING = (
    "data", "data_std", "latent_dim", "hidden_size", "num_layers", "batch_size", "d_steps", "mixup_max", "mixup_alpha",
    "learning_rate", "seed", "eval_samples",
)
_EVAL_STREAM = 0x6576616C
logger = logging.getLogger(__name__)


def eval_seed(seed: int) -> int:
    """The seed of a run's snapshot noise: ``GanGenerator.sample(eval_samples, seed=eval_seed(seed))`` draws the
    very points its snapshots were scored on."""
    return derive_seed(seed, _EVAL_STREAM)


@dataclass
class GanArguments:
    """Settings of one toy GAN run; every field is a ``scripts/gan.py`` flag of the same name."""

    output_dir: str = field(metadata={"help": "where the metrics, samples, plots, checkpoints and generator go"})
    data: str = field(default="ring", metadata={"help": "toy data: ring (8 modes) or grid (25 modes)"})
    data_std: float = field(default=DEFAULT_STD, metadata={"help": "standard deviation of each mode"})
    latent_dim: int = field(default=2, metadata={"help": "dimension of the Gaussian latent noise (released code: 2, 5, 10)"})
    hidden_size: int = field(default=512, metadata={"help": "units of each hidden layer, both networks"})
    num_layers: int = field(default=3, metadata={"help": "hidden layers of each network"})
    batch_size: int = field(default=128, metadata={"help": "real points per batch (as many generated ones join them)"})
    d_steps: int = field(default=5, metadata={"help": "discriminator steps per generator iteration"})
    iterations: int = field(default=20000, metadata={"help": "generator iterations"})
    mixup_max: float = field(
        default=1.0,
        metadata={"help": "m: lam ~ Uniform(0, m) per example for the discriminator's batches; 0 = a plain GAN"},
    )
    mixup_alpha: float = field(
        default=0.0,
        metadata={"help": "lam ~ Beta(alpha, alpha) instead of Uniform(0, mixup_max) (needs mixup_max 0 or 1); 0 = off"},
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam's learning rate (PyTorch's default)"})
    seed: int = field(default=0, metadata={"help": "seed of the networks' initialisation and of every draw"})
    snapshots: list[int] = field(
        default_factory=lambda: list(SNAPSHOTS),
        metadata={"help": "iterations at which samples and metrics are recorded (the last one always is)"},
    )
    eval_samples: int = field(default=2500, metadata={"help": "generated points scored at each snapshot"})
    save_steps: int = field(default=1000, metadata={"help": "checkpoint every this many iterations; 0 = only at the end"})
    save_total_limit: int = field(default=1, metadata={"help": "checkpoints kept (the newest)"})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "a checkpoint folder, or 'latest' for the newest in output_dir (none: start afresh)"}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "start afresh in an output_dir that holds another run (its checkpoints are deleted)"}
    )
    mixed_precision: str | None = field(
        default=None,
        metadata={"help": "no, fp16 or bf16 (default: accelerate's configuration); fp32 is advised: half-precision "
                          "steps near 1 are of the order of the modes' std"},
    )
    use_cpu: bool = field(default=False, metadata={"help": "train on the CPU even when a GPU is there"})
    disable_tqdm: bool = field(default=False, metadata={"help": "no progress bar"})

    def __post_init__(self):
        if self.data not in TOY_DATA:
            raise ValueError(f"data must be one of {', '.join(TOY_DATA)}; got {self.data!r}")
        if not (self.data_std > 0 and math.isfinite(self.data_std)):
            raise ValueError(f"data_std must be a positive finite number, got {self.data_std!r}")
        for name in ("latent_dim", "hidden_size", "batch_size", "d_steps", "iterations", "eval_samples", "save_total_limit"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("num_layers", "save_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if not (0.0 <= self.mixup_max <= 1.0):
            raise ValueError(f"mixup_max must lie in [0, 1] (lam ~ Uniform(0, mixup_max)), got {self.mixup_max!r}")
        if not (self.mixup_alpha >= 0 and math.isfinite(self.mixup_alpha)):
            raise ValueError(f"mixup_alpha must be a finite number >= 0 (0 turns it off), got {self.mixup_alpha!r}")
        if self.mixup_alpha > 0 and self.mixup_max not in (0.0, 1.0):
            raise ValueError(
                f"mixup_alpha={self.mixup_alpha} draws lam from Beta(alpha, alpha); mixup_max={self.mixup_max} would draw "
                "it from Uniform(0, m): set one of them (mixup_max 0 or its default 1 with mixup_alpha)"
            )
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be a positive finite number, got {self.learning_rate!r}")
        self.snapshots = sorted({int(s) for s in self.snapshots})
        if any(s < 1 for s in self.snapshots):
            raise ValueError(f"snapshots must be iterations >= 1, got {self.snapshots}")
        if self.mixed_precision not in (None, "no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be no, fp16 or bf16; got {self.mixed_precision!r}")

    @property
    def mixing(self) -> str:
        """``"beta"``, ``"uniform"`` or ``"none"`` (a plain GAN)."""
        if self.mixup_alpha > 0:
            return "beta"
        return "uniform" if self.mixup_max > 0 else "none"

    @property
    def snapshot_iterations(self) -> list[int]:
        return sorted({s for s in self.snapshots if s <= self.iterations} | {self.iterations})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def discriminator_lam(
    n: int, generator: torch.Generator, *, mixup_max: float = 0.0, mixup_alpha: float = 0.0
) -> torch.Tensor:
    """``[n]`` float32 mixing weights of the first batch: Beta(alpha, alpha) when ``mixup_alpha > 0`` (the
    engine's :func:`~hf_mixup.mixing.sample_beta`), else Uniform(0, ``mixup_max``) as in the released code."""
    if mixup_alpha > 0:
        return sample_beta(mixup_alpha, n, generator)
    return torch.rand(n, generator=generator) * mixup_max


def mix_discriminator_batches(
    data1: torch.Tensor, labels1: torch.Tensor, data2: torch.Tensor, labels2: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``lam * batch1 + (1 - lam) * batch2``, example by example, for the points and their real/fake labels.

    The two batches are stacked and mixed by the engine with every example of the first paired with the same
    row of the second; labels are ``[B, 1]`` floats, so a real point (1) mixed with a generated one (0) gets
    the label ``lam``.
    """
    size = data1.shape[0]
    if data2.shape != data1.shape or labels1.shape[0] != size or labels2.shape != labels1.shape or lam.shape != (size,):
        raise ValueError(
            f"the two batches must match: points {tuple(data1.shape)} and {tuple(data2.shape)}, labels "
            f"{tuple(labels1.shape)} and {tuple(labels2.shape)}, lam {tuple(lam.shape)} (one per example)"
        )
    index = torch.arange(2 * size).roll(-size)  # row i of the first batch with row i of the second, and back
    draw = MixDraw(lam=torch.cat([lam, lam]), index=index)
    points = mix_inputs(torch.cat([data1, data2]), draw)[:size]
    labels = mix_targets(torch.cat([labels1, labels2]), draw)[:size]
    return points, labels


class GanSampler:
    """Real points, latent noise and shuffles of one process, from a ``torch.Generator`` of its own (its state
    is part of every checkpoint)."""

    def __init__(self, args: GanArguments, seed: int, device: torch.device):
        self.args = args
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self.means = toy_means(args.data)

    def real(self, n: int) -> torch.Tensor:
        modes = torch.randint(len(self.means), (n,), generator=self.generator)
        points = torch.randn(n, 2, generator=self.generator) * self.args.data_std + self.means[modes]
        return points.to(self.device, non_blocking=True)

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.args.latent_dim, generator=self.generator).to(self.device, non_blocking=True)

    def permutation(self, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=self.generator).to(self.device, non_blocking=True)

    def lam(self, n: int) -> torch.Tensor:
        return discriminator_lam(n, self.generator, mixup_max=self.args.mixup_max, mixup_alpha=self.args.mixup_alpha)


class _RunState:
    """What a checkpoint holds beyond the networks and optimisers: the iteration, the snapshots so far and the
    samplers' generator states of every process."""

    def __init__(self, trainer: GanTrainer):
        self.trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        trainer = self.trainer
        state = trainer.sampler.generator.get_state()
        if trainer.accelerator.num_processes > 1:
            states = trainer.accelerator.gather(state.to(trainer.accelerator.device).unsqueeze(0)).cpu()
        else:
            states = state.unsqueeze(0)
        return {"iteration": trainer.iteration, "history": trainer.history, "seconds": trainer.seconds,
                "generator_states": states, "settings": {name: getattr(trainer.args, name) for name in RUN_DEFINING},
                "mixed_precision": trainer.accelerator.mixed_precision}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        trainer = self.trainer
        differences = trainer._differences(state.get("settings", {}))
        if differences:
            raise ValueError(f"the checkpoint belongs to another run ({differences}): resume it with its settings")
        saved_precision = state.get("mixed_precision", trainer.accelerator.mixed_precision)
        if saved_precision != trainer.accelerator.mixed_precision:
            logger.warning(f"resuming a {saved_precision} run in {trainer.accelerator.mixed_precision}: it continues, "
                           "but not as the uninterrupted run would have")
        states = state["generator_states"]
        if states.shape[0] != trainer.accelerator.num_processes:
            raise ValueError(
                f"the checkpoint was written by {states.shape[0]} processes and this run has "
                f"{trainer.accelerator.num_processes}: resume it with as many processes"
            )
        trainer.sampler.generator.set_state(states[trainer.accelerator.process_index].clone())
        trainer.iteration = int(state["iteration"])
        trainer.history = list(state["history"])
        trainer.seconds = float(state["seconds"])


def _checkpoints(output_dir: str) -> list[tuple[int, Path]]:
    found = []
    for path in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*"):
        match = re.fullmatch(rf"{CHECKPOINT_PREFIX}(\d+)", path.name)
        if match and path.is_dir():
            found.append((int(match[1]), path))
    return sorted(found)


class GanTrainer:
    """Trains a toy GAN from :class:`GanArguments` on an ``accelerate.Accelerator``.

    ``GanTrainer(args).train()`` runs to ``args.iterations`` and writes into ``args.output_dir``:
    ``gan_config.json``, ``metrics.json`` (one entry per snapshot: modes covered, high-quality share, losses),
    ``samples/iteration_<k>.safetensors`` (the generated and real points of each snapshot), ``samples.png``,
    ``checkpoint-<k>/`` (``accelerate`` states) and ``generator/`` (``save_pretrained``, with a model card).
    """

    def __init__(self, args: GanArguments, accelerator=None):
        from accelerate import Accelerator

        self.args = args
        if accelerator is None:
            kwargs = {"cpu": True} if args.use_cpu else {}
            if args.mixed_precision is not None:
                kwargs["mixed_precision"] = args.mixed_precision
            accelerator = Accelerator(**kwargs)
        self.accelerator = accelerator
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, the caller's RNG left as it was
            torch.manual_seed(args.seed)
            generator = GanGenerator(args.latent_dim, args.hidden_size, args.num_layers)
            discriminator = GanDiscriminator(2, args.hidden_size, args.num_layers)
        optimizer_g = torch.optim.Adam(generator.parameters(), lr=args.learning_rate)
        optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=args.learning_rate)
        self.generator, self.discriminator, self.optimizer_g, self.optimizer_d = accelerator.prepare(
            generator, discriminator, optimizer_g, optimizer_d
        )
        device = accelerator.device
        self.sampler = GanSampler(args, derive_seed(args.seed, accelerator.process_index), device)
        size = args.batch_size
        self.labels = torch.cat([torch.ones(size, 1), torch.zeros(size, 1)]).to(device)
        self.eval_seed = eval_seed(args.seed)
        eval_generator = torch.Generator().manual_seed(self.eval_seed)
        self.eval_noise = torch.randn(args.eval_samples, args.latent_dim, generator=eval_generator).to(device)
        self.eval_real = toy_data(args.data, 1000, generator=eval_generator, std=args.data_std)
        self.iteration = 0
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0
        self._last_losses: tuple[Any, Any] = (float("nan"), float("nan"))
        self.state = _RunState(self)
        accelerator.register_for_checkpointing(self.state)
        self._prepared: tuple[Path | None] | None = None

    # -- one iteration ------------------------------------------------------------------------------------
    def _one_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.args.batch_size
        real = self.sampler.real(size)
        with torch.no_grad(), self.accelerator.autocast():
            fake = self.generator(self.sampler.noise(size)).float()
        order = self.sampler.permutation(2 * size)
        return torch.cat([real, fake])[order], self.labels[order]

    def discriminator_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (mixed, when mixup is on) points and soft labels of one discriminator step."""
        points, labels = self._one_batch()
        if self.args.mixing == "none":
            return points, labels
        points2, labels2 = self._one_batch()
        return mix_discriminator_batches(points, labels, points2, labels2, self.sampler.lam(points.shape[0]))

    def train_iteration(self) -> None:
        """``d_steps`` discriminator steps, then one generator step."""
        accelerator, args = self.accelerator, self.args
        for _ in range(args.d_steps):
            points, labels = self.discriminator_batch()
            with accelerator.autocast():
                logits = self.discriminator(points)
            loss_d = F.binary_cross_entropy_with_logits(logits.float(), labels)
            self.optimizer_d.zero_grad(set_to_none=True)
            accelerator.backward(loss_d)
            self.optimizer_d.step()
        size = args.batch_size
        real = self.sampler.real(size)
        self.discriminator.requires_grad_(False)  # its weight gradients would be thrown away
        try:
            with accelerator.no_sync(self.discriminator):  # no gradients of its own to average
                with accelerator.autocast():
                    fake = self.generator(self.sampler.noise(size))
                    logits = self.discriminator(torch.cat([real, fake.float()]))
                loss_g = -F.binary_cross_entropy_with_logits(logits.float(), self.labels)
                self.optimizer_g.zero_grad(set_to_none=True)
                accelerator.backward(loss_g)
        finally:
            self.discriminator.requires_grad_(True)
        self.optimizer_g.step()
        self.iteration += 1
        self._last_losses = (loss_d.detach(), loss_g.detach())

    # -- snapshots ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Generated points for ``noise`` (default: the snapshots' fixed noise), in float32 whatever the training
        precision: the unwrapped network's layers, without accelerate's autocast, as ``GanGenerator.sample`` runs."""
        generator = self.accelerator.unwrap_model(self.generator)
        return generator.net(self.eval_noise if noise is None else noise).float().cpu()

    def snapshot(self) -> dict[str, Any]:
        args = self.args
        samples = self.generate()
        coverage = mode_coverage(samples, args.data, std=args.data_std)
        loss_d, loss_g = (float(v) for v in self._last_losses)
        entry = {"iteration": self.iteration, **coverage.to_dict(), "loss_d": loss_d, "loss_g": loss_g}
        if self.accelerator.is_main_process:
            from safetensors.torch import save_file

            folder = Path(args.output_dir) / "samples"
            folder.mkdir(parents=True, exist_ok=True)
            save_file({"generated": samples.contiguous(), "real": self.eval_real.contiguous()},
                      str(folder / f"iteration_{self.iteration:06d}.safetensors"))
        self.history.append(entry)
        return entry

    # -- checkpoints --------------------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """``checkpoint-<iteration>`` in the output folder, written whole before it replaces anything; older
        ones beyond ``save_total_limit`` are removed."""
        accelerator, output_dir = self.accelerator, Path(self.args.output_dir)
        final = output_dir / f"{CHECKPOINT_PREFIX}{self.iteration}"
        partial = output_dir / f"{CHECKPOINT_PREFIX}{self.iteration}.partial"
        if accelerator.is_main_process:
            for stale in output_dir.glob(f"{CHECKPOINT_PREFIX}*.partial"):
                shutil.rmtree(stale)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(partial))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            previous = output_dir / f"{CHECKPOINT_PREFIX}{self.iteration}.previous"
            if final.exists():  # kept under another name until the new one is in place
                os.replace(final, previous)
            os.replace(partial, final)
            if previous.exists():
                shutil.rmtree(previous)
            for _, old in _checkpoints(str(output_dir))[: -self.args.save_total_limit]:
                shutil.rmtree(old)
        accelerator.wait_for_everyone()
        return final

    def resolve_checkpoint(self) -> Path | None:
        wanted = self.args.resume_from_checkpoint
        if wanted is None:
            return None
        if wanted == "latest":
            found = _checkpoints(self.args.output_dir)
            return found[-1][1] if found else None
        path = Path(wanted)
        if not path.is_dir():
            raise ValueError(f"resume_from_checkpoint={wanted!r} is not a folder: give a checkpoint-<k> folder or 'latest'")
        return path

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        self.accelerator.load_state(str(path))
        if self.iteration > self.args.iterations:
            raise ValueError(
                f"{path} is at iteration {self.iteration}, beyond iterations={self.args.iterations}: "
                "raise iterations to continue it, or start afresh in another output_dir"
            )

    # -- the run ------------------------------------------------------------------------------------------
    def _differences(self, saved: dict[str, Any]) -> str:
        differing = [name for name in RUN_DEFINING if name in saved and saved[name] != getattr(self.args, name)]
        return ", ".join(f"{name}={saved[name]!r} there, {getattr(self.args, name)!r} here" for name in differing)

    def prepare_output_dir(self) -> Path | None:
        """Check the output folder and find the checkpoint to resume (``None``: start afresh). A checkpoint of a
        run with other settings, or a fresh start over another run's checkpoints, is refused with a ValueError
        (``overwrite_output_dir`` clears the folder for a fresh start instead). Call on every process."""
        args, accelerator = self.args, self.accelerator
        output = Path(args.output_dir)
        checkpoint = None if args.overwrite_output_dir else self.resolve_checkpoint()
        config = output / CONFIG_NAME
        if checkpoint is not None:
            differences = self._differences(json.loads(config.read_text())) if config.exists() else ""
            if differences:
                raise ValueError(f"{checkpoint} belongs to another run ({differences}): resume it with its settings, "
                                 "or pass overwrite_output_dir to start afresh")
        elif output.is_dir() and not args.overwrite_output_dir and (_checkpoints(str(output)) or (
                config.exists() and self._differences(json.loads(config.read_text())))):
            raise ValueError(
                f"{output} already holds another run: resume it (resume_from_checkpoint='latest'), pass "
                "overwrite_output_dir to start afresh there, or choose another output_dir"
            )
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            output.mkdir(parents=True, exist_ok=True)
            if checkpoint is None:  # a fresh start: nothing of an earlier run may mix into this one
                for _, old in _checkpoints(str(output)):
                    shutil.rmtree(old)
                shutil.rmtree(output / "samples", ignore_errors=True)
                (output / METRICS_NAME).unlink(missing_ok=True)
            temporary = output / f".{CONFIG_NAME}.tmp"
            temporary.write_text(json.dumps(args.to_dict(), indent=2) + "\n")
            os.replace(temporary, config)
        accelerator.wait_for_everyone()
        self._prepared = (checkpoint,)
        return checkpoint

    def train(self) -> dict[str, Any]:
        """Run (or continue) to ``args.iterations``; returns the contents of ``metrics.json``."""
        from tqdm.auto import tqdm

        args, accelerator = self.args, self.accelerator
        (checkpoint,) = self._prepared if self._prepared is not None else (self.prepare_output_dir(),)
        self._prepared = None
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        snapshots = set(args.snapshot_iterations)
        bar = tqdm(total=args.iterations, initial=self.iteration, desc=f"GAN ({args.data}, {self._method()})",
                   unit="it", disable=args.disable_tqdm or not accelerator.is_local_main_process)
        start = time.perf_counter()
        while self.iteration < args.iterations:
            self.train_iteration()
            bar.update(1)
            if self.iteration in snapshots:
                self.seconds += time.perf_counter() - start
                entry = self.snapshot()
                bar.set_postfix(modes=f"{entry['modes_covered']}/{entry['num_modes']}",
                                hq=f"{entry['high_quality']:.2f}", refresh=False)
                start = time.perf_counter()
            if args.save_steps and self.iteration % args.save_steps == 0 and self.iteration < args.iterations:
                self.seconds += time.perf_counter() - start
                self.save_checkpoint()
                start = time.perf_counter()
        bar.close()
        self.seconds += time.perf_counter() - start
        if not self.history or self.history[-1]["iteration"] != self.iteration:
            self.snapshot()
        self.save_checkpoint()
        return self.write_outputs()

    def _method(self) -> str:
        return {"none": "plain GAN", "uniform": f"mixup m={self.args.mixup_max:g}",
                "beta": f"mixup Beta({self.args.mixup_alpha:g})"}[self.args.mixing]

    def write_outputs(self) -> dict[str, Any]:
        from ..experiments import describe_machine

        args, accelerator = self.args, self.accelerator
        metrics = {
            "method": self._method(),
            "data": args.data,
            "final": self.history[-1],
            "snapshots": self.history,
            "iterations": self.iteration,
            "train_seconds": self.seconds,
            "iterations_per_second": self.iteration / self.seconds if self.seconds else None,
            "processes": accelerator.num_processes,
            "mixed_precision": accelerator.mixed_precision,
            "eval_seed": self.eval_seed,
            "machine": describe_machine(),
        }
        if accelerator.is_main_process:
            output = Path(args.output_dir)
            (output / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
            save_generator(accelerator.unwrap_model(self.generator), str(output / "generator"), args, metrics)
            try:
                from .plots import plot_run
            except ImportError:  # matplotlib is the optional [plots] extra
                logger.warning("matplotlib is not installed: samples.png is not drawn (pip install 'hf_mixup[plots]')")
            else:
                plot_run(str(output), str(output / "samples.png"))
        accelerator.wait_for_everyone()
        return metrics


def save_generator(generator: GanGenerator, folder: str, args: GanArguments, metrics: dict[str, Any]) -> None:
    """``save_pretrained`` of the trained generator, with a model card from the project's template."""
    from ..hub.card import build_gan_card

    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    (path / "README.md").unlink(missing_ok=True)
    generator.save_pretrained(path)
    (path / "README.md").unlink(missing_ok=True)
    build_gan_card(args, metrics, repo_id=str(path), model_name=f"{Path(args.output_dir).name}-generator").save(
        str(path / "README.md"))


def train_gan(args: GanArguments, accelerator=None) -> dict[str, Any]:
    """Train (or resume) one toy GAN; returns its metrics (also written to ``metrics.json``)."""
    return GanTrainer(args, accelerator).train()
