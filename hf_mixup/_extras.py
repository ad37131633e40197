"""hf_mixup's optional dependencies (the extras of pyproject.toml) and the one error that names them.

`pip install hf_mixup` installs what `MixupTrainer` needs: torch, transformers, accelerate, safetensors,
huggingface_hub (and jinja2, for the model cards, which torch installs anyway). Everything else is an extra,
imported only where it is used, through `require`, so a missing one says which extra installs it::

    >>> require("timm", "vision", "create_timm_classifier")   # doctest: +SKIP
    MissingExtraError: create_timm_classifier needs timm: pip install 'hf_mixup[vision]'
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

# The modules each extra brings (import names), checked by `require_extra` without importing them.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "vision": ("timm", "torchvision"),
    "audio": ("torchcodec", "scipy"),
    "tabular": ("pandas", "river", "sklearn"),
    "metrics": ("evaluate",),
    "plots": ("matplotlib",),
    # `hf-mixup train` and `hf_mixup.data`: the default run is a timm ResNet-18 on scikit-learn's digits,
    # loaded with datasets, configured in YAML and logged to TensorBoard.
    "train": ("datasets", "yaml", "tensorboard", "sklearn", "timm", "torchvision"),
}
# Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"yaml": "pyyaml", "sklearn": "scikit-learn"}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def missing_extra_message(modules: list[str] | tuple[str, ...], extra: str, what: str) -> str:
    names = ", ".join(DISTRIBUTIONS.get(m, m) for m in modules)
    return f"{what} needs {names}: pip install 'hf_mixup[{extra}]'"


def require(module: str, extra: str, what: str | None = None) -> ModuleType:
    """Import and return ``module``; if it is not installed, raise `MissingExtraError` ("<what> needs
    <module>: pip install 'hf_mixup[<extra>]'"). A module that is installed but fails to import for
    another reason (a broken install) raises its own error unchanged."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        top = module.split(".")[0]
        if error.name is None or error.name.split(".")[0] != top:
            raise
        raise MissingExtraError(missing_extra_message([top], extra, what or f"hf_mixup[{extra}]"), name=top) from None


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that are not installed (found without importing them)."""
    missing = []
    for module in EXTRA_MODULES[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # ValueError: sys.modules[module] is None (blocked)
            found = False
        if not found:
            missing.append(module)
    return missing


def require_extra(extra: str, what: str) -> None:
    """Raise `MissingExtraError` naming every module of ``extra`` that is missing, before anything that needs
    them is imported (the command line checks its extra this way, then imports freely)."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(missing_extra_message(missing, extra, what), name=missing[0])
