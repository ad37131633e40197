"""LeNet and VGG-11 for spectrograms (the paper's Section 3.3), as transformers models.

`SpeechCNNConfig(architecture="lenet" | "vgg11")` and `SpeechCNNForAudioClassification` take the
`input_features` of `SpectrogramFeatureExtractor` (``[batch, 1, 160, 101]``). Registered with
`AutoConfig`, `AutoModelForAudioClassification` and `AutoFeatureExtractor` when `hf_mixup` is imported,
so `pipeline("audio-classification", model=checkpoint)` works on a saved model with its extractor.

- LeNet: conv 5x5 (20) - max-pool - conv 5x5 (50) - max-pool - fully connected 500 - classifier.
- VGG-11: the 8 convolutions of configuration "A" (64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M)
  with batch norm, global average pooling and a linear classifier, as CIFAR-style VGG code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

ARCHITECTURES = ("lenet", "vgg11")
VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class SpeechCNNConfig(PretrainedConfig):
    model_type = "hf_mixup_speech_cnn"

    def __init__(
        self,
        architecture: str = "vgg11",
        num_channels: int = 1,
        input_size: tuple[int, int] | list[int] = (160, 101),
        dropout: float = 0.0,
        **kwargs,
    ):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        self.architecture = architecture
        self.num_channels = num_channels
        self.input_size = list(input_size)
        self.dropout = dropout
        super().__init__(**kwargs)


class SpeechCNNForAudioClassification(PreTrainedModel):
    config_class = SpeechCNNConfig
    base_model_prefix = "speech_cnn"
    main_input_name = "input_features"

    def __init__(self, config: SpeechCNNConfig):
        super().__init__(config)
        if config.architecture == "lenet":
            self.features = nn.Sequential(
                nn.Conv2d(config.num_channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
            )
            with torch.no_grad():
                flat = self.features(torch.zeros(1, config.num_channels, *config.input_size)).numel()
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 500), nn.ReLU(), nn.Dropout(config.dropout))
            width = 500
        else:
            layers, channels = [], config.num_channels
            for item in VGG11:
                if item == "M":
                    layers.append(nn.MaxPool2d(2, ceil_mode=True))
                else:
                    layers += [nn.Conv2d(channels, item, 3, padding=1, bias=False), nn.BatchNorm2d(item), nn.ReLU()]
                    channels = item
            self.features = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(config.dropout))
            width = channels
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=5**0.5)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, input_features: torch.Tensor, labels: torch.Tensor | None = None, return_dict: bool | None = None, **kwargs):
        if input_features.ndim == 3:
            input_features = input_features.unsqueeze(1)
        logits = self.classifier(self.head(self.features(input_features)))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        if return_dict is False:
            return (loss, logits) if loss is not None else (logits,)
        return SequenceClassifierOutput(loss=loss, logits=logits)
