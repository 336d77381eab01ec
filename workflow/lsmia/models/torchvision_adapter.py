"""torchvision classifiers behind timm's interface, with torchvision's own state-dict keys.

The adapter adopts the torchvision model's child modules under their original names, so ImageNet
weight files from ``download.pytorch.org`` and checkpoints of code that used torchvision directly
load without renaming. Families: ResNet (``resnet*``, ``resnext*``, ``wide_resnet*``), DenseNet and
Inception-v3. Inception-v3 takes torchvision's ``aux_logits`` and ``transform_input`` (both off by
default here; the paper config turns both on, as the authors' ``weights=DEFAULT`` model has them):
with ``aux_logits`` a model in training mode returns ``InceptionOutputs(logits, aux_logits)`` and in
eval mode the main logits; ``transform_input`` applies torchvision's rescaling of the input.
"""

from __future__ import annotations

import logging
import re

import torch
from torch import nn

log = logging.getLogger("lsmia.models")

__all__ = ["TorchvisionModel", "SUPPORTED_FAMILIES", "is_supported"]

SUPPORTED_FAMILIES = ("ResNet", "DenseNet", "Inception3")
#: torchvision names of those families (checked without building the model)
_SUPPORTED_NAME = re.compile(r"(?:resnet|resnext|wide_resnet|densenet)\d.*|inception_v3")
_INCEPTION_STAGES = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
                     "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c",
                     "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                     "Mixed_7a", "Mixed_7b", "Mixed_7c")
_INCEPTION_AUX_AFTER = "Mixed_6e"  # the auxiliary head reads this stage's output
#: torchvision's ``Inception3._transform_input``: per channel x · std/0.5 + (mean − 0.5)/0.5 with
#: ImageNet's mean and std (constants computed in double precision, as there)
_TRANSFORM_SCALE = tuple(std / 0.5 for std in (0.229, 0.224, 0.225))
_TRANSFORM_SHIFT = tuple((mean - 0.5) / 0.5 for mean in (0.485, 0.456, 0.406))
_RESNET_STAGES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
# torchvision's DenseNet files still use the old module names "norm.1", "conv.2", … in dense layers
_LEGACY_DENSE_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.\w+)$")


def is_supported(name: str) -> bool:
    """Whether ``tv:<name>`` is a torchvision model of a family this adapter handles."""
    import torchvision

    return bool(_SUPPORTED_NAME.fullmatch(name)) and name in torchvision.models.list_models()


class TorchvisionModel(nn.Module):
    """``torchvision.models.get_model(name, num_classes=..., **kwargs)`` with ``forward_features``,
    ``forward_head``, ``get_classifier`` and ``reset_classifier``."""

    def __init__(self, name: str, num_classes: int, **kwargs):
        super().__init__()
        import torchvision

        if name not in torchvision.models.list_models():
            raise ValueError(f"unknown torchvision model 'tv:{name}'")
        if name == "inception_v3":
            for key in ("aux_logits", "transform_input"):
                if not isinstance(kwargs.setdefault(key, False), bool):
                    raise ValueError(f"tv:inception_v3: {key} must be true or false, got "
                                     f"{kwargs[key]!r}")
            kwargs.setdefault("init_weights", True)
        net = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
        self.family = type(net).__name__
        if self.family not in SUPPORTED_FAMILIES:
            raise ValueError(f"tv:{name} is a {self.family}; lsmia adapts the torchvision "
                             f"families {list(SUPPORTED_FAMILIES)} (or use a timm name)")
        for child_name, child in net.named_children():
            self.add_module(child_name, child)
        self.tv_name = name
        self.transform_input = bool(getattr(net, "transform_input", False))
        self.classifier_name = "classifier" if self.family == "DenseNet" else "fc"
        self.num_features = self.get_classifier().in_features
        self.num_classes = num_classes

    @property
    def aux_head(self) -> nn.Module | None:
        """Inception-v3's auxiliary head (``AuxLogits``), None when built without it."""
        return self._modules.get("AuxLogits")

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weight files as torchvision publishes them → this model's keys: DenseNet's legacy
        dense-layer names are renamed; Inception's auxiliary-head tensors are dropped (logged)
        when this model has no auxiliary head."""
        if self.family == "DenseNet":
            return {_LEGACY_DENSE_KEY.sub(r"\1\2", key): value for key, value in state.items()}
        if self.family == "Inception3" and self.aux_head is None:
            auxiliary = [key for key in state if key.startswith("AuxLogits.")]
            if auxiliary:
                log.info("dropping %d AuxLogits.* tensors (lsmia's Inception-v3 has no auxiliary "
                         "head)", len(auxiliary))
            return {key: value for key, value in state.items() if key not in auxiliary}
        return state

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.family == "DenseNet":
            return torch.relu(self.features(x))
        if self.family == "Inception3":
            return self._inception_features(x)[0]
        for stage in _RESNET_STAGES:
            x = getattr(self, stage)(x)
        return x

    def _inception_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Feature map and, in training mode with an auxiliary head, the auxiliary logits."""
        if self.transform_input:
            scale = x.new_tensor(_TRANSFORM_SCALE)[:, None, None]
            x = x * scale + x.new_tensor(_TRANSFORM_SHIFT)[:, None, None]
        aux = None
        for stage in _INCEPTION_STAGES:
            x = getattr(self, stage)(x)
            if stage == _INCEPTION_AUX_AFTER and self.aux_head is not None and self.training:
                aux = self.aux_head(x)
        return x, aux

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(x, 1)
        if self.family == "Inception3":
            x = self.dropout(x)
        x = torch.flatten(x, 1)
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits; ``InceptionOutputs(logits, aux_logits)`` for Inception-v3 with an auxiliary head
        in training mode (the trainer adds the auxiliary loss)."""
        if self.family == "Inception3":
            features, aux = self._inception_features(x)
            logits = self.forward_head(features)
            if aux is None:
                return logits
            from torchvision.models.inception import InceptionOutputs  # loaded with the model

            return InceptionOutputs(logits, aux)
        return self.forward_head(self.forward_features(x))

    def auxiliary_classifier(self) -> nn.Module | None:
        """The auxiliary head's last layer (``AuxLogits.fc``), sized like the classifier."""
        return self.aux_head.fc if self.aux_head is not None else None

    def get_classifier(self) -> nn.Module:
        return getattr(self, self.classifier_name)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh classifier for ``num_classes`` (0: none, ``forward`` returns pre-logits)."""
        self.num_classes = num_classes
        head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        setattr(self, self.classifier_name, head)
