"""Models: one factory for lsmia's demo, torchvision and timm architectures, and one model file.

Every model maps [−1, 1] images to logits and offers timm's ``forward_features``,
``forward_head(x, pre_logits=False)`` and ``get_classifier()``.
"""

from .checkpoint import import_checkpoint, load_model, save_model
from .factory import create_model, penultimate
from .registry import known_architectures, register_architecture
from .state_dicts import load_pretrained

__all__ = [
    "create_model",
    "penultimate",
    "known_architectures",
    "register_architecture",
    "load_pretrained",
    "save_model",
    "load_model",
    "import_checkpoint",
]
