"""Model families of hf_mixup (registered with timm and the transformers Auto classes on import) and the
timm wrapper helpers."""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

from ..data.audio import SpectrogramFeatureExtractor
from ..data.tabular import TabularPreprocessor
from . import cifar  # noqa: F401  (registers the CIFAR models with timm)
from .speech import SpeechCNNConfig, SpeechCNNForAudioClassification
from .tabular import TabularMLPConfig, TabularMLPForPrediction
from .timm_models import create_timm_classifier, restore_timm_init

AutoConfig.register(SpeechCNNConfig.model_type, SpeechCNNConfig, exist_ok=True)
AutoModelForAudioClassification.register(SpeechCNNConfig, SpeechCNNForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(SpeechCNNConfig, SpectrogramFeatureExtractor, exist_ok=True)
AutoConfig.register(TabularMLPConfig.model_type, TabularMLPConfig, exist_ok=True)
AutoModel.register(TabularMLPConfig, TabularMLPForPrediction, exist_ok=True)
AutoFeatureExtractor.register(TabularMLPConfig, TabularPreprocessor, exist_ok=True)

__all__ = [
    "SpectrogramFeatureExtractor",
    "SpeechCNNConfig",
    "SpeechCNNForAudioClassification",
    "TabularMLPConfig",
    "TabularMLPForPrediction",
    "TabularPreprocessor",
    "create_timm_classifier",
    "restore_timm_init",
]
