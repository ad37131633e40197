"""Model families of hf_mixup and the timm wrapper helpers.

Importing this package (which `import hf_mixup` does) registers the speech CNN and the table MLP with the
transformers Auto classes; that needs transformers alone. The timm side needs the `vision` extra
(``pip install 'hf_mixup[vision]'``) and is imported when it is used: `create_timm_classifier`,
`restore_timm_init` and the `cifar` module are loaded on first access, and the paper's CIFAR models
(`cifar`) are registered with timm as soon as timm is imported, by anyone (`timm.create_model`, or
transformers loading a `TimmWrapper` checkpoint), so ``import hf_mixup`` then
``pipeline("image-classification", model=run_dir)`` works without importing timm up front.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import logging
import sys

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

from .._extras import require
from ..data.audio import SpectrogramFeatureExtractor
from ..data.tabular import TabularPreprocessor
from .speech import SpeechCNNConfig, SpeechCNNForAudioClassification
from .tabular import TabularMLPConfig, TabularMLPForPrediction

AutoConfig.register(SpeechCNNConfig.model_type, SpeechCNNConfig, exist_ok=True)
AutoModelForAudioClassification.register(SpeechCNNConfig, SpeechCNNForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(SpeechCNNConfig, SpectrogramFeatureExtractor, exist_ok=True)
AutoConfig.register(TabularMLPConfig.model_type, TabularMLPConfig, exist_ok=True)
AutoModel.register(TabularMLPConfig, TabularMLPForPrediction, exist_ok=True)
AutoFeatureExtractor.register(TabularMLPConfig, TabularPreprocessor, exist_ok=True)

# The architectures `cifar` registers with timm (a checkpoint of one needs `import hf_mixup`), readable
# without timm; tests/test_install.py holds it equal to `cifar.MODEL_NAMES`.
CIFAR_MODEL_NAMES = (
    "preact_resnet18", "preact_resnet18_dropout", "preact_resnet18_dropout70", "preact_resnet18_dropout80",
    "preact_resnet18_dropout90", "preact_resnet34", "wide_resnet28_10", "wide_resnet28_2", "wide_resnet16_8",
    "wide_resnet16_4", "wide_resnet10_2", "densenet_bc_190", "densenet_bc_100", "image_mlp", "image_mlp_dropout",
)

# Loaded on first access (they import timm): name -> module of this package.
_LAZY = {"create_timm_classifier": "timm_models", "restore_timm_init": "timm_models", "cifar": "cifar", "timm_models": "timm_models"}


def register_timm_models():
    """Register the paper's CIFAR models with timm (``timm.create_model("preact_resnet18")``) and return the
    `cifar` module. Happens by itself when timm is imported after hf_mixup; needs the `vision` extra."""
    require("timm", "vision", "hf_mixup's timm models")
    return importlib.import_module(".cifar", __name__)


def __getattr__(name: str):
    if name in _LAZY:
        require("timm", "vision", f"hf_mixup.models.{name}")
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        register_timm_models()
        return module if name == _LAZY[name] else getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


class _RegisterWhenTimmIsImported(importlib.abc.MetaPathFinder):
    """Runs `register_timm_models` right after the top-level ``timm`` package has been executed, then leaves
    ``sys.meta_path``. It finds nothing itself: it asks the finders after it and wraps the loader of the spec
    they return (a `find_spec` that is not followed by an import, as transformers' availability checks do,
    leaves the hook in place)."""

    hf_mixup_timm_hook = True

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "timm":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if getattr(finder, "hf_mixup_timm_hook", False) or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            _remove_hook()
            try:
                register_timm_models()
            except Exception as error:  # noqa: BLE001 - never break `import timm` itself
                logging.getLogger(__name__).warning(f"hf_mixup could not register its CIFAR models with timm: {error}")

        spec.loader.exec_module = exec_and_register  # this spec's own loader instance
        return spec


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "hf_mixup_timm_hook", False)]


if sys.modules.get("timm") is not None:  # imported before hf_mixup: register now
    register_timm_models()
elif not any(getattr(f, "hf_mixup_timm_hook", False) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenTimmIsImported())

__all__ = [
    "CIFAR_MODEL_NAMES",
    "SpectrogramFeatureExtractor",
    "SpeechCNNConfig",
    "SpeechCNNForAudioClassification",
    "TabularMLPConfig",
    "TabularMLPForPrediction",
    "TabularPreprocessor",
    "create_timm_classifier",
    "register_timm_models",
    "restore_timm_init",
]
