"""What the target sees of a generated image, and how the stages score and rank latents."""

from __future__ import annotations

import torch
from torch import nn

from lsmia.data import augment
from lsmia.runtime import autocast

PAPER_CROP_FRACTION = 800 / 1024


def target_view(images: torch.Tensor, crop_fraction: float, input_size: int) -> torch.Tensor:
    """Centre crop ``crop_fraction`` of the side (800 of 1024 px in the paper), then resize."""
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    side = max(1, round(images.shape[-1] * crop_fraction))
    return augment.resize(augment.center_crop(images, side), input_size)


def prepare_target(target: nn.Module, device: torch.device) -> nn.Module:
    """Frozen, in eval mode, on ``device`` (channels-last on CUDA)."""
    target = target.to(device).eval().requires_grad_(False)
    if device.type == "cuda":
        target = target.to(memory_format=torch.channels_last)
    return target


def target_logits(target: nn.Module, images: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """Float32 logits; the forward pass in fp32 or under bf16 autocast on CUDA (``precision``)."""
    if images.device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    with autocast(images.device, precision):
        return target(images).float()


def flip_averaged_softmax(target: nn.Module, images: torch.Tensor,
                          precision: str = "fp32") -> torch.Tensor:
    """Softmax of the target averaged over the images and their horizontal mirrors."""
    both = target_logits(target, torch.cat([images, images.flip(-1)]), precision).softmax(dim=1)
    return 0.5 * (both[: len(images)] + both[len(images) :])


def check_classes(classes, num_classes: int, what: str) -> torch.Tensor:
    """Classes as a 1-D int64 tensor of distinct labels below ``num_classes``."""
    classes = torch.as_tensor(classes, dtype=torch.int64).reshape(-1)
    if len(classes) == 0 or len(torch.unique(classes)) != len(classes):
        raise ValueError(
            f"{what}: classes must be a non-empty list of distinct labels, got {classes.tolist()}"
        )
    if classes.min() < 0 or classes.max() >= num_classes:
        raise ValueError(
            f"{what}: classes must lie in [0, {num_classes}) (the target's outputs), "
            f"got {classes.tolist()}"
        )
    return classes


def top_k_per_row(scores: torch.Tensor, k: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and indices of the ``k`` highest entries of each row, ties broken by lower index.

    Each row's indices are distinct, so no latent is kept twice for one class."""
    if not 0 < k <= scores.shape[1]:
        raise ValueError(f"{what}: cannot keep {k} per class out of {scores.shape[1]} candidates")
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return scores.gather(1, order), order


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``N×3×H×W`` in [−1, 1] → ``N×H×W×3`` uint8 (values outside [−1, 1] are clipped)."""
    scaled = (images.float().clamp(-1, 1) + 1) * 127.5
    return scaled.round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
