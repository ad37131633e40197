"""Generator and discriminator MLPs of the paper's toy GANs, saved and loaded the Hugging Face way.

Both are ``huggingface_hub.PyTorchModelHubMixin`` models: ``save_pretrained`` writes ``config.json`` and
``model.safetensors`` (and a model card), ``from_pretrained`` loads them from a local folder or the Hub. Unlike
the mixin's default, loading is strict: a checkpoint whose tensors do not match the configuration is refused
instead of being half loaded.
"""

from __future__ import annotations

from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

REPO_URL = "https://github.com/hongyi-zhang/mixup"
PAPER_URL = "https://arxiv.org/abs/1710.09412"


def hub_metadata() -> dict:
    """The model-card metadata of both networks (PyTorchModelHubMixin's class arguments), a fresh copy: the mixin
    appends to the tags list it is given."""
    return {"library_name": "hf_mixup", "tags": ["hf_mixup", "gan", "mixup"], "repo_url": REPO_URL, "paper_url": PAPER_URL}


def perceptron(sizes: list[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with a ReLU between consecutive ones (none after the last): the released
    code's ``Perceptron``."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _check_size(name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


class _StrictLoading:
    @classmethod
    def _load_as_safetensor(cls, model, model_file: str, map_location: str, strict: bool):
        import safetensors.torch

        try:
            safetensors.torch.load_model(model, model_file, strict=True, device=map_location)
        except RuntimeError as error:
            raise ValueError(
                f"{model_file} does not match {cls.__name__}({model.config_dict()}): {error}. "
                "Load it with the configuration it was saved with (its config.json)"
            ) from error
        model.eval()
        return model

    @classmethod
    def _load_as_pickle(cls, model, model_file: str, map_location: str, strict: bool):
        raise ValueError(f"{model_file}: only safetensors weights (model.safetensors) are loaded")


class GanGenerator(_StrictLoading, nn.Module, PyTorchModelHubMixin, **hub_metadata()):
    """Latent noise ``[B, latent_dim]`` to points ``[B, output_dim]``: ``num_layers`` hidden layers of
    ``hidden_size`` ReLU units (the released code: 3 x 512, latent dim 2, 5 or 10)."""

    def __init__(self, latent_dim: int = 2, hidden_size: int = 512, num_layers: int = 3, output_dim: int = 2):
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("hidden_size", hidden_size), ("output_dim", output_dim)):
            _check_size(name, value)
        _check_size("num_layers", num_layers, 0)
        self.latent_dim, self.hidden_size, self.num_layers, self.output_dim = latent_dim, hidden_size, num_layers, output_dim
        self.net = perceptron([latent_dim] + [hidden_size] * num_layers + [output_dim])

    def config_dict(self) -> dict[str, int]:
        return {"latent_dim": self.latent_dim, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "output_dim": self.output_dim}

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.net(noise)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0) -> torch.Tensor:
        """``n`` generated points ``[n, 2]`` (float32, on the CPU) from latent noise drawn on the CPU with ``seed``
        (the global RNG is left alone), computed on the model's device."""
        generator = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(n, self.latent_dim, generator=generator).to(next(self.parameters()).device)
        return self.net(noise).float().cpu()


class GanDiscriminator(_StrictLoading, nn.Module, PyTorchModelHubMixin, **hub_metadata()):
    """Points ``[B, input_dim]`` to one logit each ``[B, 1]`` (real vs generated), with ``num_layers`` hidden
    layers of ``hidden_size`` ReLU units."""

    def __init__(self, input_dim: int = 2, hidden_size: int = 512, num_layers: int = 3):
        super().__init__()
        _check_size("input_dim", input_dim)
        _check_size("hidden_size", hidden_size)
        _check_size("num_layers", num_layers, 0)
        self.input_dim, self.hidden_size, self.num_layers = input_dim, hidden_size, num_layers
        self.net = perceptron([input_dim] + [hidden_size] * num_layers + [1])

    def config_dict(self) -> dict[str, int]:
        return {"input_dim": self.input_dim, "hidden_size": self.hidden_size, "num_layers": self.num_layers}

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.net(points)
