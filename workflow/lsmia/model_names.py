"""Which architecture names exist, answered without importing torch, torchvision or timm.

Planning the workflow (validating the config) needs only the names; building a model loads the
libraries. tests/test_startup.py keeps these names equal to what the libraries register.
"""

from __future__ import annotations

#: lsmia's own architectures (``lsmia.models.known_architectures()``)
LSMIA_ARCHITECTURES = ("tiny_densenet", "tiny_inception", "tiny_resnet", "tiny_resnext")
#: ``tv:<name>`` models the torchvision adapter supports (torchvision 0.29.1)
TORCHVISION_MODELS = frozenset({
    "densenet121", "densenet161", "densenet169", "densenet201", "inception_v3", "resnet18",
    "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
    "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
})


def is_known_model(model: str) -> bool:
    """Whether ``model`` names an lsmia, supported torchvision (``tv:``) or timm architecture.

    Only a timm name imports timm (and torch): the paper's and the demo's configs plan without."""
    if model in LSMIA_ARCHITECTURES:
        return True
    if model.startswith("tv:"):
        return model[3:] in TORCHVISION_MODELS
    import timm

    return timm.is_model(model)
