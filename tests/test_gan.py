"""hf_mixup.gan: the toy data, the mode-coverage metrics, the mixup discriminator's batches, the training
iteration against the released code's loop, exact resume (one process and two gloo ranks under the real
`accelerate launch`), the Hub-style save/load of the generator, and scripts/gan.py end to end."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import accelerate_launch, free_port, launch_env
from hypothesis import given, settings
from hypothesis import strategies as st

import hf_mixup.gan as gan
import hf_mixup.gan.training
from hf_mixup.gan.training import GanSampler
from hf_mixup.mixing import sample_beta

ROOT = Path(__file__).resolve().parents[1]
GAN_SCRIPT = ROOT / "scripts" / "gan.py"


def small_args(tmp_path, name="run", **kwargs) -> gan.GanArguments:
    settings_ = dict(output_dir=str(tmp_path / name), hidden_size=16, batch_size=8, d_steps=2, iterations=6,
                     snapshots=[3], eval_samples=64, save_steps=0, disable_tqdm=True, mixup_max=0.5, use_cpu=True)
    settings_.update(kwargs)
    return gan.GanArguments(**settings_)


# -- data ---------------------------------------------------------------------------------------------------
def test_ring_and_grid_means_are_the_released_codes():
    ring = gan.toy_means("ring")
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    torch.testing.assert_close(ring, torch.stack([angles.sin(), angles.cos()], 1).float())
    assert torch.allclose(ring.norm(dim=1), torch.ones(8))
    grid = gan.toy_means("grid")
    assert grid.shape == (25, 2)
    assert sorted(set(grid[:, 0].tolist())) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert len({tuple(p) for p in grid.tolist()}) == 25


@pytest.mark.parametrize("name, modes", [("ring", 8), ("grid", 25)])
def test_toy_data_statistics(name, modes):
    std = 0.01
    points = gan.toy_data(name, 40000, seed=3, std=std)
    assert points.shape == (40000, 2) and points.dtype == torch.float32
    means = gan.toy_means(name)
    nearest = torch.cdist(points, means).argmin(1)
    counts = torch.bincount(nearest, minlength=modes).float()
    expected = 40000 / modes
    assert float((counts - expected).abs().max()) < 5 * math.sqrt(expected)  # uniform over the modes
    offsets = points - means[nearest]
    assert float(offsets.mean(0).abs().max()) < 5 * std / math.sqrt(40000)
    assert offsets.std(0).tolist() == pytest.approx([std, std], rel=0.02)
    # A larger std spreads the same draws.
    small, large = gan.toy_data(name, 100, seed=4, std=std), gan.toy_data(name, 100, seed=4, std=10 * std)
    centres = means[torch.cdist(small, means).argmin(1)]
    torch.testing.assert_close(large - centres, 10 * (small - centres), rtol=1e-4, atol=1e-6)


def test_toy_data_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a = gan.toy_data("grid", 50, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, gan.toy_data("grid", 50, seed=1))
    assert not torch.equal(a, gan.toy_data("grid", 50, seed=2))


def test_toy_data_refuses_bad_input():
    with pytest.raises(ValueError, match="ring, grid"):
        gan.toy_data("spiral", 10)
    with pytest.raises(ValueError, match="std"):
        gan.toy_data("ring", 10, std=-1.0)


# -- mode coverage ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ring", "grid"])
def test_mode_coverage_of_the_exact_means_is_everything(name):
    coverage = gan.mode_coverage(gan.toy_means(name), name)
    assert coverage.modes_covered == coverage.num_modes == len(gan.toy_means(name))
    assert coverage.high_quality == 1.0 and coverage.covers_all


@given(st.sets(st.integers(0, 24), min_size=1, max_size=25), st.integers(1, 5))
@settings(max_examples=40, deadline=None)
def test_mode_coverage_counts_exactly_the_modes_sampled(subset, copies):
    means = gan.toy_means("grid")
    chosen = sorted(subset)
    samples = means[chosen].repeat(copies, 1)
    coverage = gan.mode_coverage(samples, "grid")
    assert coverage.modes_covered == len(chosen)
    assert coverage.covers_all == (len(chosen) == 25)


def test_high_quality_means_within_three_std_of_the_nearest_mode():
    std = 0.01
    mode = gan.toy_means("ring")[0]
    inside = mode + torch.tensor([2.9 * std, 0.0])
    outside = mode + torch.tensor([0.0, 3.1 * std])
    far = torch.tensor([0.0, 0.0])  # the ring's centre: 1 away from every mode
    samples = torch.stack([inside, outside, far, torch.tensor([float("nan"), 0.0])])
    coverage = gan.mode_coverage(samples, "ring", std=std)
    assert coverage.high_quality == 0.25 and coverage.modes_covered == 1
    # Only a high-quality sample covers a mode: the outside one alone covers nothing.
    assert gan.mode_coverage(outside[None], "ring", std=std).modes_covered == 0
    # std scales the radius.
    assert gan.mode_coverage(outside[None], "ring", std=0.011).modes_covered == 1


def test_mode_coverage_refuses_bad_input():
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        gan.mode_coverage(torch.zeros(4, 3), "ring")
    with pytest.raises(ValueError, match="std"):
        gan.mode_coverage(torch.zeros(4, 2), "ring", std=0.0)


# -- the mixup discriminator's batches -------------------------------------------------------------------------
def test_a_real_point_mixed_with_a_generated_one_is_labelled_lam():
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(16, 2, generator=generator), torch.randn(16, 2, generator=generator)
    lam = gan.discriminator_lam(16, generator, mixup_max=1.0)
    points, labels = gan.mix_discriminator_batches(real, torch.ones(16, 1), fake, torch.zeros(16, 1), lam)
    torch.testing.assert_close(labels, lam[:, None], rtol=0, atol=0)
    torch.testing.assert_close(points, lam[:, None] * real + (1 - lam[:, None]) * fake, rtol=0, atol=1e-6)
    # The other way round: 1 - lam; two real points: 1; two generated ones: 0.
    _, flipped = gan.mix_discriminator_batches(fake, torch.zeros(16, 1), real, torch.ones(16, 1), lam)
    torch.testing.assert_close(flipped, 1 - lam[:, None])
    _, both_real = gan.mix_discriminator_batches(real, torch.ones(16, 1), fake, torch.ones(16, 1), lam)
    assert torch.equal(both_real, torch.ones(16, 1))


def test_mixing_refuses_batches_that_do_not_match():
    with pytest.raises(ValueError, match="must match"):
        gan.mix_discriminator_batches(torch.zeros(4, 2), torch.zeros(4, 1), torch.zeros(3, 2), torch.zeros(3, 1),
                                      torch.zeros(4))


def test_lam_is_uniform_below_m_or_the_engines_beta():
    generator = torch.Generator().manual_seed(1)
    lam = gan.discriminator_lam(20000, generator, mixup_max=0.2)
    assert float(lam.min()) >= 0 and float(lam.max()) < 0.2
    assert float(lam.mean()) == pytest.approx(0.1, abs=0.003)
    assert float(lam.var()) == pytest.approx(0.2**2 / 12, rel=0.05)
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(gan.discriminator_lam(64, a, mixup_alpha=0.4), sample_beta(0.4, 64, b))


def test_discriminator_batches_pair_real_and_generated_points_as_the_released_code(tmp_path):
    trainer = gan.GanTrainer(small_args(tmp_path, batch_size=32, mixup_max=1.0))
    replay = GanSampler(trainer.args, 0, trainer.accelerator.device)
    replay.generator.set_state(trainer.sampler.generator.get_state())
    points, labels = trainer.discriminator_batch()
    generator = trainer.accelerator.unwrap_model(trainer.generator)

    def one_batch():
        real = replay.real(32)
        with torch.no_grad():
            fake = generator(replay.noise(32))
        order = replay.permutation(64)
        return torch.cat([real, fake])[order], torch.cat([torch.ones(32, 1), torch.zeros(32, 1)])[order]

    (x1, y1), (x2, y2) = one_batch(), one_batch()
    lam = replay.lam(64)[:, None]
    torch.testing.assert_close(points, lam * x1 + (1 - lam) * x2, rtol=0, atol=1e-6)
    torch.testing.assert_close(labels, lam * y1 + (1 - lam) * y2, rtol=0, atol=1e-7)
    mixed_pairs = (y1 != y2).squeeze(1)
    assert 10 < int(mixed_pairs.sum()) < 54  # real/generated pairs occur, and they carry lam or 1 - lam
    assert set(labels[~mixed_pairs].squeeze(1).tolist()) <= {0.0, 1.0}


def test_a_plain_gan_does_not_mix(tmp_path):
    trainer = gan.GanTrainer(small_args(tmp_path, mixup_max=0.0))
    _, labels = trainer.discriminator_batch()
    assert sorted(labels.squeeze(1).tolist()) == [0.0] * 8 + [1.0] * 8


def test_an_iteration_takes_the_released_loops_steps(tmp_path):
    """The released loop (generated points not detached, the discriminator's gradients computed in the generator
    step) and hf_mixup's lean iteration update both networks alike."""
    trainer = gan.GanTrainer(small_args(tmp_path, batch_size=16, d_steps=3, mixup_max=0.5, learning_rate=1e-2))
    G = copy.deepcopy(trainer.accelerator.unwrap_model(trainer.generator))
    D = copy.deepcopy(trainer.accelerator.unwrap_model(trainer.discriminator))
    optG, optD = torch.optim.Adam(G.parameters(), lr=1e-2), torch.optim.Adam(D.parameters(), lr=1e-2)
    replay = GanSampler(trainer.args, 0, trainer.accelerator.device)
    replay.generator.set_state(trainer.sampler.generator.get_state())
    labels = torch.cat([torch.ones(16, 1), torch.zeros(16, 1)])
    for _ in range(2):
        trainer.train_iteration()
        for _ in range(3):
            def one_batch():
                data = torch.cat([replay.real(16), G(replay.noise(16))])
                order = replay.permutation(32)
                return data[order], labels[order]
            (d1, l1), (d2, l2) = one_batch(), one_batch()
            lam = replay.lam(32)[:, None]
            optD.zero_grad()
            F.binary_cross_entropy_with_logits(D(lam * d1 + (1 - lam) * d2), lam * l1 + (1 - lam) * l2).backward()
            optD.step()
        data = torch.cat([replay.real(16), G(replay.noise(16))])
        optG.zero_grad()
        (-F.binary_cross_entropy_with_logits(D(data), labels)).backward()
        optG.step()
    for ours, theirs in ((trainer.generator, G), (trainer.discriminator, D)):
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    assert not torch.allclose(G.net[0].weight, gan.GanTrainer(small_args(tmp_path, "fresh")).generator.net[0].weight)


# -- training, resume, save / load ---------------------------------------------------------------------------
def test_resume_is_bit_identical(tmp_path):
    straight = gan.GanTrainer(small_args(tmp_path, "straight", iterations=10, snapshots=[4, 8], save_steps=5))
    straight_metrics = straight.train()
    first = gan.GanTrainer(small_args(tmp_path, "resumed", iterations=5, snapshots=[4, 8], save_steps=5))
    first.train()
    resumed = gan.GanTrainer(small_args(tmp_path, "resumed", iterations=10, snapshots=[4, 8], save_steps=5,
                                        resume_from_checkpoint="latest"))
    assert resumed.resolve_checkpoint().name == "checkpoint-5"
    metrics = resumed.train()
    for a, b in ((straight.generator, resumed.generator), (straight.discriminator, resumed.discriminator)):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), name
    assert torch.equal(straight.sampler.generator.get_state(), resumed.sampler.generator.get_state())
    common = {e["iteration"]: e for e in straight_metrics["snapshots"]}
    assert [e for e in metrics["snapshots"] if e["iteration"] in (4, 8, 10)] == [common[4], common[8], common[10]]
    assert [p.name for p in Path(tmp_path / "resumed").glob("checkpoint-*")] == ["checkpoint-10"]  # save_total_limit 1


def test_resuming_with_other_settings_is_refused(tmp_path):
    gan.GanTrainer(small_args(tmp_path, iterations=4, save_steps=2)).train()
    with pytest.raises(ValueError, match=r"mixup_max=0.5 there, 0.2 here"):
        gan.GanTrainer(small_args(tmp_path, iterations=8, mixup_max=0.2, resume_from_checkpoint="latest")).train()
    with pytest.raises(ValueError, match="not a folder"):
        gan.GanTrainer(small_args(tmp_path, resume_from_checkpoint=str(tmp_path / "nowhere"))).train()


def test_a_fresh_start_over_another_run_is_refused_unless_overwriting(tmp_path):
    gan.GanTrainer(small_args(tmp_path, iterations=6, save_steps=3)).train()
    with pytest.raises(ValueError, match="already holds another run"):
        gan.GanTrainer(small_args(tmp_path, iterations=3, mixup_max=0.2)).train()
    metrics = gan.GanTrainer(small_args(tmp_path, iterations=3, mixup_max=0.2, overwrite_output_dir=True)).train()
    run = tmp_path / "run"
    assert [p.name for p in run.glob("checkpoint-*")] == ["checkpoint-3"]  # the other run's checkpoint-6 is gone
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["iteration_000003.safetensors"]
    assert json.loads((run / "gan_config.json").read_text())["mixup_max"] == 0.2
    assert [e["iteration"] for e in metrics["snapshots"]] == [3]


def test_a_checkpoint_of_another_run_is_refused_from_any_folder(tmp_path):
    gan.GanTrainer(small_args(tmp_path, "first", iterations=4, save_steps=2)).train()
    other = small_args(tmp_path, "second", iterations=8, mixup_max=0.2,
                       resume_from_checkpoint=str(tmp_path / "first" / "checkpoint-4"))
    with pytest.raises(ValueError, match=r"another run \(mixup_max=0.5 there, 0.2 here\)"):
        gan.GanTrainer(other).train()


def test_the_cards_snippet_reproduces_its_figures(tmp_path):
    metrics = gan.GanTrainer(small_args(tmp_path, iterations=4)).train()
    folder = tmp_path / "run" / "generator"
    seed = gan.training.eval_seed(0)
    assert metrics["eval_seed"] == seed
    card = (folder / "README.md").read_text()
    assert f"generator.sample(64, seed={seed})" in card and f'from_pretrained("{folder}")' in card
    points = gan.GanGenerator.from_pretrained(str(folder)).sample(64, seed=seed)
    coverage = gan.mode_coverage(points, "ring")
    final = metrics["final"]
    assert (coverage.modes_covered, coverage.high_quality) == (final["modes_covered"], final["high_quality"])


@pytest.mark.parametrize("field, value, message", [
    ("mixup_max", 1.5, "mixup_max must lie in"), ("data", "spiral", "data must be one of"),
    ("latent_dim", 0, "latent_dim must be"), ("mixed_precision", "fp8", "mixed_precision"),
])
def test_bad_settings_name_the_field(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        small_args(tmp_path, **{field: value})


def test_the_released_codes_five_discriminator_steps_are_the_default(tmp_path):
    """scripts/reproduce_gan.py runs scripts/gan.py without --d_steps: the default must stay the released
    code's 5, as a literal, for the dataclass and for scripts/gan.py's flag."""
    from transformers import HfArgumentParser

    assert gan.GanArguments(output_dir=str(tmp_path)).d_steps == 5
    (parsed,) = HfArgumentParser(gan.GanArguments).parse_args_into_dataclasses(["--output_dir", str(tmp_path)])
    assert parsed.d_steps == 5


def test_beta_and_a_uniform_m_are_not_both_taken(tmp_path):
    with pytest.raises(ValueError, match="set one of them"):
        small_args(tmp_path, mixup_alpha=0.2, mixup_max=0.5)
    assert small_args(tmp_path, mixup_alpha=0.2, mixup_max=1.0).mixing == "beta"
    assert small_args(tmp_path, mixup_max=0.0).mixing == "none"


def test_the_generator_saves_and_loads_with_its_card(tmp_path):
    trainer = gan.GanTrainer(small_args(tmp_path, iterations=4, latent_dim=5))
    metrics = trainer.train()
    folder = tmp_path / "run" / "generator"
    assert json.loads((folder / "config.json").read_text()) == {"latent_dim": 5, "hidden_size": 16, "num_layers": 3,
                                                                 "output_dim": 2}
    loaded = gan.GanGenerator.from_pretrained(str(folder))
    noise = torch.randn(10, 5)
    assert torch.equal(loaded(noise), trainer.generator(noise).detach())
    assert not loaded.training
    card = (folder / "README.md").read_text()
    final = metrics["final"]
    assert f"| Modes covered | {final['modes_covered']} / 8 |" in card
    assert "lam ~ Uniform(0, 0.5)" in card and "library_name: hf_mixup" in card
    with pytest.raises(ValueError, match="does not match GanGenerator"):
        gan.GanGenerator.from_pretrained(str(folder), latent_dim=2)


# -- scripts -------------------------------------------------------------------------------------------------
def test_gan_script_runs_200_iterations_and_writes_its_metrics_and_plot(tmp_path):
    out = tmp_path / "ring"
    done = subprocess.run(
        [sys.executable, str(GAN_SCRIPT), "--output_dir", str(out), "--iterations", "200", "--hidden_size", "64",
         "--snapshots", "10", "100", "--mixup_max", "0.2", "--save_steps", "100", "--disable_tqdm", "true"],
        capture_output=True, text=True, timeout=900, env=launch_env())
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["iteration"] for e in metrics["snapshots"]] == [10, 100, 200]
    assert metrics["method"] == "mixup m=0.2" and metrics["iterations"] == 200
    final = metrics["final"]
    samples = __import__("safetensors.torch", fromlist=["load_file"]).load_file(str(out / "samples" / "iteration_000200.safetensors"))
    assert samples["generated"].shape == (2500, 2)
    recomputed = gan.mode_coverage(samples["generated"], "ring")
    assert (recomputed.modes_covered, recomputed.high_quality) == (final["modes_covered"], final["high_quality"])
    assert (out / "samples.png").stat().st_size > 10_000
    assert (out / "checkpoint-200").is_dir() and not (out / "checkpoint-100").exists()
    assert f"{final['modes_covered']}/8 modes covered" in done.stdout


def test_a_bf16_run_is_scored_in_float32(tmp_path):
    """Under bf16 autocast the snapshots are still scored in float32: the saved generator's own float32 points
    give the recorded figures."""
    out = tmp_path / "bf16"
    done = subprocess.run(
        [sys.executable, str(GAN_SCRIPT), "--output_dir", str(out), "--iterations", "30", "--hidden_size", "32",
         "--batch_size", "16", "--snapshots", "30", "--mixed_precision", "bf16", "--use_cpu", "true", "--disable_tqdm", "true",
         "--data_std", "0.1"],
        capture_output=True, text=True, timeout=600, env=launch_env())
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mixed_precision"] == "bf16"
    points = gan.GanGenerator.from_pretrained(str(out / "generator")).sample(2500, seed=metrics["eval_seed"])
    from safetensors.torch import load_file

    scored = load_file(str(out / "samples" / "iteration_000030.safetensors"))["generated"]
    assert torch.equal(scored, points)  # bf16 points would differ in the third decimal near 1
    coverage = gan.mode_coverage(points, "ring", std=0.1)
    assert (coverage.modes_covered, coverage.high_quality) == (metrics["final"]["modes_covered"], metrics["final"]["high_quality"])


def test_gan_script_reports_a_bad_flag_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(GAN_SCRIPT), "--output_dir", str(tmp_path), "--mixup_max", "2"],
                          capture_output=True, text=True, timeout=300, env=launch_env())
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("gan.py: error: mixup_max must lie in [0, 1]")


def test_gan_script_refuses_a_folder_holding_another_run_in_one_line(tmp_path):
    gan.GanTrainer(small_args(tmp_path, iterations=2, save_steps=1)).train()
    done = subprocess.run([sys.executable, str(GAN_SCRIPT), "--output_dir", str(tmp_path / "run"), "--iterations", "2"],
                          capture_output=True, text=True, timeout=300, env=launch_env())
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("gan.py: error: ") and "overwrite_output_dir" in done.stderr


def _two_ranks(out: Path, *flags: str) -> None:
    command = accelerate_launch(
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), str(GAN_SCRIPT), "--output_dir", str(out), "--hidden_size", "16",
        "--batch_size", "8", "--snapshots", "3", "--eval_samples", "64", "--disable_tqdm", "true", *flags)
    done = subprocess.run(command, env=launch_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_two_ranks_under_accelerate_launch_train_and_resume_exactly(tmp_path):
    _two_ranks(tmp_path / "straight", "--iterations", "6", "--save_steps", "3")
    _two_ranks(tmp_path / "resumed", "--iterations", "3", "--save_steps", "3")
    _two_ranks(tmp_path / "resumed", "--iterations", "6", "--save_steps", "3", "--resume_from_checkpoint", "latest")
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "straight" / "generator" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "generator" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    metrics = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert metrics["processes"] == 2
    state = torch.load(tmp_path / "straight" / "checkpoint-6" / "custom_checkpoint_0.pkl", weights_only=False)
    assert state["generator_states"].shape[0] == 2  # each rank's draws, saved
    assert not torch.equal(state["generator_states"][0], state["generator_states"][1])
