"""Training-time defences against model inversion: MID and BiDO-HSIC.

``wrap_defence(model, cfg)`` returns a module the trainer trains through
``forward_with_regulariser(x, y) -> (logits, extra_loss)``; its ``forward(x)`` gives logits, and it
keeps the timm methods ``forward_features``, ``forward_head`` and ``get_classifier``. The wrapper's
structure depends only on ``cfg`` and the base model, so ``load_model`` rebuilds it before loading.

Each defence registers itself in its module (``registry.register_defence``); importing the module
here is what makes its name known.
"""

from __future__ import annotations

from .bido import BiDOModel
from .mid import MIDModel, kl_to_standard_normal
from .registry import DEFENCES, parse_defence, register_defence, wrap_defence

__all__ = [
    "DEFENCES", "BiDOModel", "MIDModel", "kl_to_standard_normal", "parse_defence",
    "register_defence", "wrap_defence",
]
