"""The paper's CIFAR models as timm models (3x3 stems for 32x32 inputs).

- ``preact_resnet18``: PreAct ResNet-18 as in kuangliu/pytorch-cifar (the official mixup code's model),
  with an optional dropout after the ReLU between the two convolutions of each block (``block_drop_rate``).
- ``preact_resnet18_dropout`` (p = 0.5), ``preact_resnet18_dropout70``, ``..._dropout80``,
  ``..._dropout90``: that dropout switched on, at the probabilities of the paper's label-corruption
  comparison (Section 3.4, Table 2: p in {0.5, 0.7, 0.8, 0.9}); ``block_drop_rate=`` sets any other p.
- ``wide_resnet28_10`` (and smaller ``wide_resnet16_4``, ``wide_resnet16_8``, ``wide_resnet28_2``, ``wide_resnet10_2``
  or any ``depth=`` / ``widen_factor=``): Zagoruyko & Komodakis (2016).
- ``densenet_bc_190`` (growth rate 40) and ``densenet_bc_100`` (growth rate 12): Huang et al. (2017),
  bottleneck layers and compression 0.5.
- ``image_mlp``: a fully connected network on the flattened image (default 784-1024-1024-10 for 28x28
  grey images, ``hidden_sizes=``, ``in_chans=``, ``img_size=``), with an optional dropout after each hidden
  ReLU (``block_drop_rate``); ``image_mlp_dropout`` has it at p = 0.5. Small enough for label-noise and
  attack experiments on a CPU; its hidden layers are ``layer1`` .. ``layerN``.

Registered with timm's ``@register_model`` when ``hf_mixup`` is imported, so
``timm.create_model("preact_resnet18", num_classes=10)`` and ``TimmWrapperConfig(architecture=...)``
work. Every model names its residual / dense stages ``layer1`` ... ``layerN`` and its head
``global_pool`` + ``fc``, as timm's ResNets do: hidden-layer mixing (``mixup_layer``) hooks there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import SelectAdaptivePool2d
from timm.models import register_model
from timm.models._builder import build_model_with_cfg
from timm.models._registry import generate_default_cfgs
from torch import nn
from torch.utils.checkpoint import checkpoint

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class _CifarNet(nn.Module):
    """Shared timm interface: stem, ``layer1..N``, optional final norm, ``global_pool``, ``fc``."""

    num_stages: int

    def _init_head(self, num_features: int, num_classes: int, global_pool: str, drop_rate: float) -> None:
        self.num_features = num_features
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        self._set_head(num_classes, global_pool)

    def _set_head(self, num_classes: int, global_pool: str) -> None:
        if not global_pool and num_classes > 0:
            raise ValueError("global_pool='' (no pooling) needs num_classes=0: the classifier takes pooled features")
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=bool(global_pool))
        self.head_hidden_size = self.num_features * self.global_pool.feat_mult()
        self.fc = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()

    def stages(self) -> list[nn.Module]:
        return [getattr(self, f"layer{i}") for i in range(1, self.num_stages + 1)]

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def get_classifier(self, name_only: bool = False):
        return "fc" if name_only else self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self._set_head(num_classes, self.global_pool.pool_type if global_pool is None else global_pool)

    def _between_stages(self, index: int, x: torch.Tensor) -> torch.Tensor:
        return x

    def _final(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for index, stage in enumerate(self.stages()):
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(stage, x, use_reentrant=False)
            else:
                x = stage(x)
            x = self._between_stages(index, x)
        return self._final(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _kaiming_init(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)


# -- PreAct ResNet ----------------------------------------------------------------------------------


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, drop_rate: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.drop = nn.Dropout(drop_rate) if drop_rate else nn.Identity()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.drop(F.relu(self.bn2(out))))
        return out + shortcut


class PreActResNet(_CifarNet):
    """PreAct ResNet for 32x32 inputs (kuangliu/pytorch-cifar ``PreActResNet``: no norm after the last stage)."""

    def __init__(
        self,
        layers=(2, 2, 2, 2),
        channels=(64, 128, 256, 512),
        num_classes: int = 10,
        in_chans: int = 3,
        block_drop_rate: float = 0.0,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ):
        super().__init__()
        self.num_stages = len(layers)
        self.conv1 = nn.Conv2d(in_chans, channels[0], 3, stride=1, padding=1, bias=False)
        in_planes = channels[0]
        self.feature_info = []
        for i, (depth, planes) in enumerate(zip(layers, channels)):
            blocks = []
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(PreActBlock(in_planes, planes, stride, block_drop_rate))
                in_planes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=planes, reduction=2**i, module=f"layer{i + 1}"))
        self._init_head(in_planes, num_classes, global_pool, drop_rate)
        _kaiming_init(self)


# -- Wide ResNet ------------------------------------------------------------------------------------


class WideBasic(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, drop_rate: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.drop = nn.Dropout(drop_rate) if drop_rate else nn.Identity()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(self.drop(F.relu(self.bn2(self.conv1(out)))))
        return out + shortcut


class WideResNet(_CifarNet):
    """WRN-depth-k: three groups of (depth - 4) / 6 pre-activation blocks of widths 16k, 32k, 64k."""

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        num_classes: int = 10,
        in_chans: int = 3,
        block_drop_rate: float = 0.0,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"Wide ResNet depth must be 6n + 4 (10, 16, 22, 28, 40, ...), got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.num_stages = 3
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, stride=1, padding=1, bias=False)
        in_planes = widths[0]
        self.feature_info = []
        for i in range(3):
            blocks = []
            for j in range(n):
                blocks.append(WideBasic(in_planes, widths[i + 1], 2 if (i > 0 and j == 0) else 1, block_drop_rate))
                in_planes = widths[i + 1]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=in_planes, reduction=2**i, module=f"layer{i + 1}"))
        self.norm = nn.BatchNorm2d(in_planes)
        self._init_head(in_planes, num_classes, global_pool, drop_rate)
        _kaiming_init(self)

    def _final(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(x))


# -- DenseNet-BC ------------------------------------------------------------------------------------


class Bottleneck(nn.Module):
    def __init__(self, in_planes: int, growth_rate: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth_rate, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth_rate)
        self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([x, out], 1)


class Transition(nn.Module):
    def __init__(self, in_planes: int, out_planes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNetBC(_CifarNet):
    """DenseNet-BC for 32x32 inputs: three dense blocks of (depth - 4) / 6 bottleneck layers."""

    def __init__(
        self,
        depth: int = 190,
        growth_rate: int = 40,
        reduction: float = 0.5,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"DenseNet-BC depth must be 6n + 4 (100, 190, 250, ...), got {depth}")
        n = (depth - 4) // 6
        planes = 2 * growth_rate
        self.num_stages = 3
        self.conv1 = nn.Conv2d(in_chans, planes, 3, padding=1, bias=False)
        self.feature_info = []
        for i in range(3):
            layers = []
            for _ in range(n):
                layers.append(Bottleneck(planes, growth_rate))
                planes += growth_rate
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
            self.feature_info.append(dict(num_chs=planes, reduction=2**i, module=f"layer{i + 1}"))
            if i < 2:
                out_planes = int(math.floor(planes * reduction))
                setattr(self, f"trans{i + 1}", Transition(planes, out_planes))
                planes = out_planes
        self.norm = nn.BatchNorm2d(planes)
        self._init_head(planes, num_classes, global_pool, drop_rate)
        _kaiming_init(self)

    def _between_stages(self, index: int, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"trans{index + 1}")(x) if index < 2 else x

    def _final(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(x))


class ImageMLP(nn.Module):
    """Flatten, then ``Linear -> ReLU [-> Dropout]`` per hidden size (``layer1`` ..), then ``fc``.

    The timm interface of the CIFAR models (``forward_features`` / ``forward_head``, ``reset_classifier``),
    with an identity ``global_pool`` so that ``mixup_layer = N + 1`` mixes the last hidden features."""

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        img_size: int = 28,
        hidden_sizes: tuple[int, ...] = (1024, 1024),
        block_drop_rate: float = 0.0,
        drop_rate: float = 0.0,
        global_pool: str = "",
        **kwargs,
    ):
        super().__init__()
        if not hidden_sizes:
            raise ValueError("image_mlp needs at least one hidden size, e.g. hidden_sizes=[1024, 1024]")
        if not 0.0 <= block_drop_rate < 1.0:
            raise ValueError(f"block_drop_rate must be in [0, 1), got {block_drop_rate}")
        self.num_stages = len(hidden_sizes)
        self.in_features = in_chans * img_size * img_size
        width = self.in_features
        for index, size in enumerate(hidden_sizes, start=1):
            layers = [nn.Linear(width, int(size)), nn.ReLU(inplace=True)]
            if block_drop_rate > 0:
                layers.append(nn.Dropout(block_drop_rate))
            setattr(self, f"layer{index}", nn.Sequential(*layers))
            width = int(size)
        self.num_features = self.head_hidden_size = width
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.global_pool = nn.Identity()
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()
        self.grad_checkpointing = False

    def stages(self) -> list[nn.Module]:
        return [getattr(self, f"layer{i}") for i in range(1, self.num_stages + 1)]

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x[0].numel() != self.in_features:
            raise ValueError(
                f"image_mlp takes {self.in_features} values per image (in_chans x img_size^2), got input of shape "
                f"{tuple(x.shape)}: set in_chans / img_size in the model arguments to match the images"
            )
        x = x.flatten(1)
        for stage in self.stages():
            x = checkpoint(stage, x, use_reentrant=False) if self.grad_checkpointing and self.training else stage(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -- registration -----------------------------------------------------------------------------------


def _cfg(**kwargs):
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": (4, 4),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": CIFAR10_MEAN,
        "std": CIFAR10_STD,
        "first_conv": "conv1",
        "classifier": "fc",
        "license": "apache-2.0",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        "preact_resnet18.untrained": _cfg(),
        "preact_resnet34.untrained": _cfg(),
        "preact_resnet18_dropout.untrained": _cfg(),
        "preact_resnet18_dropout70.untrained": _cfg(),
        "preact_resnet18_dropout80.untrained": _cfg(),
        "preact_resnet18_dropout90.untrained": _cfg(),
        "wide_resnet28_10.untrained": _cfg(pool_size=(8, 8)),
        "wide_resnet28_2.untrained": _cfg(pool_size=(8, 8)),
        "wide_resnet16_8.untrained": _cfg(pool_size=(8, 8)),
        "wide_resnet16_4.untrained": _cfg(pool_size=(8, 8)),
        "wide_resnet10_2.untrained": _cfg(pool_size=(8, 8)),
        "densenet_bc_190.untrained": _cfg(pool_size=(8, 8)),
        "densenet_bc_100.untrained": _cfg(pool_size=(8, 8)),
        "image_mlp.untrained": _cfg(input_size=(1, 28, 28), pool_size=None, mean=(0.2860,), std=(0.3530,), first_conv="layer1.0"),
        "image_mlp_dropout.untrained": _cfg(
            input_size=(1, 28, 28), pool_size=None, mean=(0.2860,), std=(0.3530,), first_conv="layer1.0"
        ),
    }
)


def _create(cls, variant: str, pretrained: bool, **kwargs):
    if pretrained:
        raise ValueError(f"{variant} has no pretrained weights in hf_mixup; use pretrained=False")
    if cls is ImageMLP:
        return build_model_with_cfg(cls, variant, pretrained, features_only=False, **kwargs)
    stages = len(kwargs.get("layers", (2, 2, 2, 2))) if cls is PreActResNet else 3
    return build_model_with_cfg(cls, variant, pretrained, feature_cfg=dict(out_indices=tuple(range(stages))), **kwargs)


@register_model
def preact_resnet18(pretrained: bool = False, **kwargs) -> PreActResNet:
    """PreAct ResNet-18 for 32x32 inputs (~11.2M parameters for 10 classes)."""
    return _create(PreActResNet, "preact_resnet18", pretrained, **dict(dict(layers=(2, 2, 2, 2)), **kwargs))


def _preact18_dropout(variant: str, block_drop_rate: float, pretrained: bool, kwargs) -> PreActResNet:
    settings = dict(layers=(2, 2, 2, 2), block_drop_rate=block_drop_rate)
    return _create(PreActResNet, variant, pretrained, **dict(settings, **kwargs))


@register_model
def preact_resnet18_dropout(pretrained: bool = False, **kwargs) -> PreActResNet:
    """PreAct ResNet-18 with dropout p = 0.5 after the middle ReLU of every block (Table 2's ERM + dropout)."""
    return _preact18_dropout("preact_resnet18_dropout", 0.5, pretrained, kwargs)


@register_model
def preact_resnet18_dropout70(pretrained: bool = False, **kwargs) -> PreActResNet:
    """PreAct ResNet-18 with dropout p = 0.7 after the middle ReLU of every block."""
    return _preact18_dropout("preact_resnet18_dropout70", 0.7, pretrained, kwargs)


@register_model
def preact_resnet18_dropout80(pretrained: bool = False, **kwargs) -> PreActResNet:
    """PreAct ResNet-18 with dropout p = 0.8 after the middle ReLU of every block."""
    return _preact18_dropout("preact_resnet18_dropout80", 0.8, pretrained, kwargs)


@register_model
def preact_resnet18_dropout90(pretrained: bool = False, **kwargs) -> PreActResNet:
    """PreAct ResNet-18 with dropout p = 0.9 after the middle ReLU of every block."""
    return _preact18_dropout("preact_resnet18_dropout90", 0.9, pretrained, kwargs)


@register_model
def preact_resnet34(pretrained: bool = False, **kwargs) -> PreActResNet:
    """PreAct ResNet-34 for 32x32 inputs."""
    return _create(PreActResNet, "preact_resnet34", pretrained, **dict(dict(layers=(3, 4, 6, 3)), **kwargs))


def _wrn(variant: str, depth: int, widen_factor: int, pretrained: bool, kwargs) -> WideResNet:
    return _create(WideResNet, variant, pretrained, **dict(dict(depth=depth, widen_factor=widen_factor), **kwargs))


@register_model
def wide_resnet28_10(pretrained: bool = False, **kwargs) -> WideResNet:
    """WRN-28-10 (~36.5M parameters for 10 classes)."""
    return _wrn("wide_resnet28_10", 28, 10, pretrained, kwargs)


@register_model
def wide_resnet28_2(pretrained: bool = False, **kwargs) -> WideResNet:
    """WRN-28-2 (~1.5M parameters)."""
    return _wrn("wide_resnet28_2", 28, 2, pretrained, kwargs)


@register_model
def wide_resnet16_8(pretrained: bool = False, **kwargs) -> WideResNet:
    """WRN-16-8 (~11M parameters)."""
    return _wrn("wide_resnet16_8", 16, 8, pretrained, kwargs)


@register_model
def wide_resnet16_4(pretrained: bool = False, **kwargs) -> WideResNet:
    """WRN-16-4 (~2.7M parameters)."""
    return _wrn("wide_resnet16_4", 16, 4, pretrained, kwargs)


@register_model
def wide_resnet10_2(pretrained: bool = False, **kwargs) -> WideResNet:
    """WRN-10-2 (~0.3M parameters): small enough to train on a CPU."""
    return _wrn("wide_resnet10_2", 10, 2, pretrained, kwargs)


@register_model
def densenet_bc_190(pretrained: bool = False, **kwargs) -> DenseNetBC:
    """DenseNet-BC-190 with growth rate 40 (~25.6M parameters)."""
    return _create(DenseNetBC, "densenet_bc_190", pretrained, **dict(dict(depth=190, growth_rate=40), **kwargs))


@register_model
def densenet_bc_100(pretrained: bool = False, **kwargs) -> DenseNetBC:
    """DenseNet-BC-100 with growth rate 12 (~0.8M parameters)."""
    return _create(DenseNetBC, "densenet_bc_100", pretrained, **dict(dict(depth=100, growth_rate=12), **kwargs))


@register_model
def image_mlp(pretrained: bool = False, **kwargs) -> ImageMLP:
    """784-1024-1024-10 MLP on 28x28 grey images (~1.9M parameters); ``hidden_sizes=`` / ``in_chans=`` /
    ``img_size=`` for other shapes."""
    return _create(ImageMLP, "image_mlp", pretrained, **kwargs)


@register_model
def image_mlp_dropout(pretrained: bool = False, **kwargs) -> ImageMLP:
    """``image_mlp`` with dropout p = 0.5 after each hidden ReLU (Table 2's ERM + dropout for the MLP)."""
    return _create(ImageMLP, "image_mlp_dropout", pretrained, **dict(dict(block_drop_rate=0.5), **kwargs))


# The architectures this module registers with timm (a checkpoint of one needs `import hf_mixup`).
MODEL_NAMES = (
    "preact_resnet18", "preact_resnet18_dropout", "preact_resnet18_dropout70", "preact_resnet18_dropout80",
    "preact_resnet18_dropout90", "preact_resnet34", "wide_resnet28_10", "wide_resnet28_2", "wide_resnet16_8",
    "wide_resnet16_4", "wide_resnet10_2", "densenet_bc_190", "densenet_bc_100", "image_mlp", "image_mlp_dropout",
)
