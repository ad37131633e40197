"""Model families of hf_mixup (registered with timm on import) and the timm wrapper helpers."""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

from ..audio import SpectrogramFeatureExtractor
from . import cifar  # noqa: F401  (registers the CIFAR models with timm)
from .speech import SpeechCNNConfig, SpeechCNNForAudioClassification
from .timm_models import create_timm_classifier, restore_timm_init

AutoConfig.register(SpeechCNNConfig.model_type, SpeechCNNConfig, exist_ok=True)
AutoModelForAudioClassification.register(SpeechCNNConfig, SpeechCNNForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(SpeechCNNConfig, SpectrogramFeatureExtractor, exist_ok=True)

__all__ = [
    "SpectrogramFeatureExtractor",
    "SpeechCNNConfig",
    "SpeechCNNForAudioClassification",
    "create_timm_classifier",
    "restore_timm_init",
]
