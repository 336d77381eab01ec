"""Feature extractors for the metrics: FaceNet (δ_face), Inception-v3 pool features (FID, PRDC) and
the penultimate layer of a classifier (δ_eval; the demo's stand-ins for FaceNet and Inception).

Weights are read only from files (``resources/…``); nothing is downloaded at run time. Features are
computed in float32 (no autocast), so metrics do not depend on mixed precision.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from lsmia.data import augment
from lsmia.io import sha256_of
from lsmia.weights import require

FACENET_SIZE = 160
#: facenet-pytorch's ``fixed_image_standardization``, (p − 127.5) / 128 for p in [0, 255], is
#: x · 127.5 / 128 for x = p / 127.5 − 1 in [−1, 1].
FACENET_SCALE = 127.5 / 128.0
INCEPTION_FEATURES = "2048"
#: How [−1, 1] images reach FaceNet and the FID Inception: ``standard`` (each network's own input
#: convention) or ``ppa`` (as the authors' code feeds them; see ``facenet`` and ``inception_fid``).
#: ``ppa`` extractors carry ``+ppa`` in their name, so caches and tables tell the two apart.
INPUT_SCALINGS = ("standard", "ppa")


class FeatureExtractor(Protocol):
    """``name`` identifies network and weights (cached embeddings are checked against it);
    ``input_size`` is the side the network sees; calling it maps ``N×3×H×W`` images in [−1, 1]
    (any size, any device) to ``N×D`` float32 features on the extractor's device."""

    name: str
    input_size: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


class NetworkExtractor:
    """A frozen network behind the ``FeatureExtractor`` protocol.

    ``forward(network, images)`` receives [−1, 1] float images already on the network's device; it
    does its own resizing and normalisation. Non-finite features raise ``FloatingPointError``."""

    def __init__(self, name: str, input_size: int, network: nn.Module,
                 forward: Callable[[nn.Module, torch.Tensor], torch.Tensor]):
        self.name = name
        self.input_size = int(input_size)
        self.network = network.eval().requires_grad_(False)
        self._forward = forward

    @property
    def device(self) -> torch.device:
        tensor = next(itertools.chain(self.network.parameters(), self.network.buffers()), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"extractor {self.name}: expected float N×3×H×W images in [−1, 1], "
                             f"got {images.dtype} {tuple(images.shape)}")
        images = images.to(self.device, torch.float32)
        if self.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        features = self._forward(self.network, images).float().flatten(1)
        if len(features) != len(images):
            raise RuntimeError(f"extractor {self.name}: {len(features)} feature rows for "
                               f"{len(images)} images")
        if not torch.isfinite(features).all():
            raise FloatingPointError(f"extractor {self.name}: NaN or infinite features")
        return features


def facenet(weights_path: str | os.PathLike, device: torch.device | str = "cpu",
            input_scaling: str = "standard") -> NetworkExtractor:
    """FaceNet (facenet-pytorch ``InceptionResnetV1``) with the state dict at ``weights_path``
    (VGGFace2: ``20180402-114759-vggface2.pt``). Its 8631-way ``logits`` layer, when present, is not
    needed for embeddings and is dropped; every other key must match. Input: 160 px, with
    ``standard`` facenet-pytorch's fixed image standardisation ((p − 127.5) / 128), with ``ppa`` the
    [−1, 1] images as they are (the authors' code); output: the 512-d L2-normalised embedding."""
    from facenet_pytorch import InceptionResnetV1

    path = require(weights_path)
    state = _load_state_dict(path)
    state = {key: value for key, value in state.items() if not key.startswith("logits.")}
    network = InceptionResnetV1(pretrained=None, classify=False)
    _load_strict(network, state, path)
    scale = FACENET_SCALE if _checked_scaling(input_scaling) == "standard" else 1.0

    def forward(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return net(augment.resize(images, FACENET_SIZE) * scale)

    return NetworkExtractor(_name(_scaled("facenet", input_scaling), path), FACENET_SIZE,
                            network.to(device), forward)


def inception_fid(weights_path: str | os.PathLike, device: torch.device | str = "cpu",
                  input_scaling: str = "standard") -> NetworkExtractor:
    """torch-fidelity's ``FeatureExtractorInceptionV3`` (the TF FID Inception) with weights from
    ``weights_path``; 2048-d pool features. It takes uint8 images of any size and resizes them to
    299 px itself (TF1-style bilinear), so [−1, 1] images are only quantised back to uint8.

    ``ppa``: the authors pass [−1, 1] images to pytorch-fid's InceptionV3, whose
    ``normalize_input=True`` maps them once more, x ↦ 2x − 1, to [−3, 1]. The same network is fed
    that input here: its first convolution receives 2x − 1 instead of x (x: the resized image), so
    the FID is comparable with the paper's, not with standard FID."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = require(weights_path)
    try:
        network = FeatureExtractorInceptionV3("inception-v3-compat", [INCEPTION_FEATURES],
                                              feature_extractor_weights_path=str(path))
    except RuntimeError as err:  # load_state_dict's key/shape mismatch
        raise ValueError(f"{path}: not torch-fidelity Inception-v3 weights ({err})") from err
    if _checked_scaling(input_scaling) == "ppa":
        network.Conv2d_1a_3x3.register_forward_pre_hook(_ppa_input)

    def forward(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
        as_uint8 = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return net(as_uint8)[0]

    return NetworkExtractor(_name(_scaled("inception", input_scaling), path),
                            FeatureExtractorInceptionV3.INPUT_IMAGE_SIZE, network.to(device), forward)


def _ppa_input(module: nn.Module, args: tuple) -> tuple:
    """torch-fidelity normalises the resized pixels u to (u − 128)/128 before its first convolution;
    hand it 2x − 1 for the [−1, 1] image x = u/127.5 − 1 instead (pytorch-fid's normalisation applied
    to an image already in [−1, 1])."""
    pixels = args[0] * 128 + 128
    return (2 * (pixels / 127.5 - 1) - 1,)


def model_penultimate(model: nn.Module, input_size: int, name: str) -> NetworkExtractor:
    """Penultimate (pre-logit) features of an lsmia classifier at its ``input_size``."""
    from lsmia.models import penultimate

    def forward(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return penultimate(net, augment.resize(images, input_size))

    return NetworkExtractor(name, input_size, model, forward)


def load_extractor(spec: dict, device: torch.device | str,
                   loaded: Mapping[Path, tuple[nn.Module, dict]] | None = None) -> NetworkExtractor:
    """Build an extractor from ``{kind: facenet | inception | model, path: …, name?: …,
    input_scaling?: standard | ppa}`` (``input_scaling``: facenet and inception only).

    ``model`` is an lsmia model file (``lsmia.models.load_model``), or the ``(model, metadata)`` that
    ``loaded`` holds for its path (a file the caller has loaded already). The extractor's name is
    ``<name or kind>[+ppa]@<first 12 hex digits of the file's SHA-256>``, so embeddings cached with
    other weights or another input scaling are recognised as stale."""
    if not isinstance(spec, dict) or "kind" not in spec or "path" not in spec:
        raise ValueError(f"extractor spec: expected a mapping with 'kind' and 'path', got {spec!r}")
    kind, path = spec["kind"], Path(spec["path"])
    scaling = _checked_scaling(spec.get("input_scaling") or "standard")
    if kind == "model" and scaling != "standard":
        raise ValueError(f"extractor spec {spec!r}: input_scaling applies to facenet and inception "
                         "only (a model extractor sees [−1, 1] images as its model was trained)")
    if kind == "facenet":
        extractor = facenet(path, device, scaling)
    elif kind == "inception":
        extractor = inception_fid(path, device, scaling)
    elif kind == "model":
        from lsmia.models import load_model

        if not path.is_file():
            raise FileNotFoundError(f"{path}: model file of the extractor not found")
        model, meta = (loaded or {}).get(path) or load_model(path, torch.device(device))
        if "input_size" not in meta:
            raise KeyError(f"{path}: model metadata has no 'input_size'")
        extractor = model_penultimate(model.to(device), meta["input_size"], _name("model", path))
    else:
        raise ValueError(f"extractor spec kind: expected facenet, inception or model, got {kind!r}")
    if spec.get("name"):
        extractor.name = _name(_scaled(spec["name"], scaling), path)
    return extractor


def _name(label: str, path: Path) -> str:
    return f"{label}@{sha256_of(path)[:12]}"


def _scaled(label: str, input_scaling: str) -> str:
    return label if input_scaling == "standard" else f"{label}+{input_scaling}"


def _checked_scaling(input_scaling: str) -> str:
    if input_scaling not in INPUT_SCALINGS:
        raise ValueError(f"input_scaling: {input_scaling!r} is not one of {list(INPUT_SCALINGS)}")
    return input_scaling


def _load_state_dict(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict (parameter name → tensor)")
    return state


def _load_strict(network: nn.Module, state: dict, path: Path) -> None:
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit {type(network).__name__} ({err})") from err
