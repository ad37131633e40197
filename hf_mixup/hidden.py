"""Hidden-layer mixing (``mixup_layer``): mix the features entering a residual stage, or the features
before the final pooling and classifier, instead of the inputs (the paper's ablation, Table 5).

Layer numbering, for a network with stages ``layer1 .. layerN`` (timm ResNets, the CIFAR family) or
``stages[0 .. N-1]`` (other timm models): ``0`` mixes the inputs, ``k`` in ``1..N`` the features
entering stage ``k``, ``N + 1`` the features entering the final pooling (``global_pool``, or ``head``).
"""

from __future__ import annotations

import contextlib

from torch import nn

from .mixing import MixDraw, mix_inputs


def mixing_points(model: nn.Module) -> list[nn.Module]:
    """The modules whose input ``mixup_layer = 1, 2, ...`` mixes: the stages, then the pooling."""
    core = getattr(model, "timm_model", model)
    points: list[nn.Module] = []
    index = 1
    while isinstance(getattr(core, f"layer{index}", None), nn.Module):
        points.append(getattr(core, f"layer{index}"))
        index += 1
    if not points and isinstance(getattr(core, "stages", None), (nn.Sequential, nn.ModuleList)):
        points = list(core.stages)
    pool = getattr(core, "global_pool", None)
    if not isinstance(pool, nn.Module):
        pool = getattr(core, "head", None)
    if not points or not isinstance(pool, nn.Module):
        raise ValueError(
            f"mixup_layer needs a network with residual stages (layer1.., or stages) and a global_pool or head "
            f"(timm ResNets, ConvNeXts, the hf_mixup CIFAR models); {type(core).__name__} has none: use mixup_layer=0"
        )
    return points + [pool]


@contextlib.contextmanager
def mixing_at(model: nn.Module, layer: int, draw: MixDraw):
    """Within the block, a forward pass of ``model`` mixes the input of mixing point ``layer`` with ``draw``."""
    points = mixing_points(model)
    if not 1 <= layer <= len(points):
        raise ValueError(
            f"mixup_layer must be 0 (inputs) or 1..{len(points)} for this model "
            f"(1..{len(points) - 1}: entering a stage, {len(points)}: before the final pooling), got {layer}"
        )

    def mix(module, args):
        return (mix_inputs(args[0], draw), *args[1:])

    handle = points[layer - 1].register_forward_pre_hook(mix)
    try:
        yield
    finally:
        handle.remove()
