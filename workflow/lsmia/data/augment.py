"""Batched, on-device image transforms for float ``N×3×H×W`` batches in [−1, 1].

Random transforms draw their parameters from a ``torch.Generator`` (CPU by default) and move
them to the batch's device, so a seed gives the same parameters on CPU and CUDA. Every sample
gets its own parameters, as torchvision's per-image transforms in a DataLoader would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from lsmia.data.color import color_jitter

__all__ = ["to_float", "resize", "center_crop", "random_resized_crop", "color_jitter", "hflip",
           "TrainAugment", "eval_transform"]


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float32 [−1, 1] (memory format kept)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"to_float: expected a uint8 tensor, got {images.dtype}")
    return images.float().div_(127.5).sub_(1.0)


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def resize(images: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Bilinear resize with antialiasing to ``size`` (an int means a square ``size×size``)."""
    height, width = _pair(size)
    if images.shape[-2:] == (height, width):
        return images
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False,
                         antialias=True)


def center_crop(images: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """The central ``size`` window (torchvision's rounding of the offsets)."""
    height, width = _pair(size)
    full_h, full_w = images.shape[-2:]
    if height > full_h or width > full_w:
        raise ValueError(f"center_crop: size {(height, width)} larger than images {(full_h, full_w)}")
    top = int(round((full_h - height) / 2.0))
    left = int(round((full_w - width) / 2.0))
    return images[..., top:top + height, left:left + width]


def crop_boxes(n: int, height: int, width: int, scale: Sequence[float], ratio: Sequence[float],
               generator: torch.Generator | None = None, attempts: int = 10) -> torch.Tensor:
    """``N×4`` boxes ``(left, top, width, height)`` drawn as ``RandomResizedCrop.get_params`` does:
    up to ``attempts`` tries of area fraction in ``scale`` and log-uniform aspect ratio in ``ratio``;
    the first box that fits wins, otherwise a central crop with the ratio clamped to ``ratio``."""
    area = height * width
    device = generator.device if generator is not None else torch.device("cpu")
    uniform = torch.rand(n, attempts, 4, generator=generator, device=device, dtype=torch.float64)
    target_area = area * (scale[0] + (scale[1] - scale[0]) * uniform[..., 0])
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_low + (log_high - log_low) * uniform[..., 1])
    box_w = torch.round(torch.sqrt(target_area * aspect))
    box_h = torch.round(torch.sqrt(target_area / aspect))
    fits = (box_w > 0) & (box_w <= width) & (box_h > 0) & (box_h <= height)
    # randint(0, H - h + 1) as floor(u · (H − h + 1))
    top = torch.floor(uniform[..., 2] * (height - box_h + 1))
    left = torch.floor(uniform[..., 3] * (width - box_w + 1))
    first = torch.argmax(fits.to(torch.int8), dim=1)
    pick = lambda values: values.gather(1, first[:, None])[:, 0]  # noqa: E731
    boxes = torch.stack([pick(left), pick(top), pick(box_w), pick(box_h)], dim=1)
    fallback_w, fallback_h = _central_fallback(height, width, ratio)
    fallback = torch.tensor([(width - fallback_w) // 2, (height - fallback_h) // 2,
                             fallback_w, fallback_h], dtype=torch.float64, device=device)
    return torch.where(fits.any(dim=1, keepdim=True), boxes, fallback)


def _central_fallback(height: int, width: int, ratio: Sequence[float]) -> tuple[int, int]:
    in_ratio = width / height
    if in_ratio < min(ratio):
        return width, int(round(width / min(ratio)))
    if in_ratio > max(ratio):
        return int(round(height * max(ratio))), height
    return width, height


def crop_and_resize(images: torch.Tensor, boxes: torch.Tensor,
                    size: int | Sequence[int]) -> torch.Tensor:
    """Crop each image to its box ``(left, top, width, height)`` and resize it to ``size``.

    Same result as torchvision's ``resized_crop(..., antialias=True)`` per image (bilinear when
    enlarging, triangle-filtered when shrinking, edges clamped to the box), computed as two batched
    matrix products with per-sample interpolation matrices; differentiable and deterministic."""
    height, width = _pair(size)
    boxes = boxes.to(device=images.device, dtype=torch.float32)
    rows = _interpolation_matrix(boxes[:, 1], boxes[:, 3], images.shape[-2], height)
    cols = _interpolation_matrix(boxes[:, 0], boxes[:, 2], images.shape[-1], width)
    with torch.autocast(images.device.type, enabled=False):
        images = images.float()
        return rows[:, None] @ images @ cols.transpose(1, 2)[:, None]


def _interpolation_matrix(start: torch.Tensor, length: torch.Tensor, full: int,
                          out: int) -> torch.Tensor:
    """``N×out×full`` weights mapping an axis of ``full`` pixels to ``out`` samples of the window
    ``[start, start + length)``: PIL/torchvision's antialiased bilinear (triangle) filter."""
    scale = (length / out)[:, None, None]
    support = scale.clamp(min=1.0)
    centre = start[:, None, None] + (torch.arange(out, device=start.device)[None, :, None] + 0.5) * scale
    pixel = torch.arange(full, device=start.device, dtype=torch.float32)[None, None, :]
    weights = (1.0 - ((pixel + 0.5 - centre) / support).abs()).clamp(min=0.0)
    inside = (pixel >= start[:, None, None]) & (pixel < (start + length)[:, None, None])
    weights = weights * inside
    return weights / weights.sum(dim=2, keepdim=True)


def random_resized_crop(images: torch.Tensor, size: int | Sequence[int],
                        scale: Sequence[float] = (0.08, 1.0),
                        ratio: Sequence[float] = (3 / 4, 4 / 3),
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """torchvision's ``RandomResizedCrop`` with a box per sample."""
    boxes = crop_boxes(len(images), images.shape[-2], images.shape[-1], scale, ratio, generator)
    return crop_and_resize(images, boxes, size)


def hflip(images: torch.Tensor, generator: torch.Generator | None = None,
          p: float = 0.5) -> torch.Tensor:
    """Mirror each sample with probability ``p``."""
    device = generator.device if generator is not None else torch.device("cpu")
    flip = torch.rand(len(images), generator=generator, device=device) < p
    flip = flip.to(images.device)[:, None, None, None]
    return torch.where(flip, images.flip(-1), images)


@dataclass
class TrainAugment:
    """resize → random resized crop → colour jitter → horizontal flip, on [−1, 1] batches.

    Built from a recipe's ``augment`` mapping: ``TrainAugment(**recipe["augment"])``. ``jitter`` is
    ``(brightness, contrast, saturation, hue)`` or ``None``; ``out_size`` defaults to ``resize``."""

    resize: int
    crop_scale: Sequence[float] = (1.0, 1.0)
    crop_ratio: Sequence[float] = (1.0, 1.0)
    jitter: Sequence[float] | None = None
    flip: bool = False
    out_size: int | None = None

    def __post_init__(self):
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1]:
            raise ValueError(f"augment.crop_scale: expected [low, high] with 0 < low <= high, "
                             f"got {self.crop_scale}")
        if len(self.crop_ratio) != 2 or not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"augment.crop_ratio: expected [low, high] with 0 < low <= high, "
                             f"got {self.crop_ratio}")
        if self.jitter is not None and len(self.jitter) != 4:
            raise ValueError(f"augment.jitter: expected [brightness, contrast, saturation, hue] "
                             f"or null, got {self.jitter}")

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if images.dtype == torch.uint8:
            images = to_float(images)
        images = resize(images, self.resize)
        images = random_resized_crop(images, self.out_size or self.resize, self.crop_scale,
                                     self.crop_ratio, generator)
        if self.jitter is not None:
            images = color_jitter(images, *self.jitter, generator=generator)
        if self.flip:
            images = hflip(images, generator)
        return images


def eval_transform(images: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Evaluation preprocessing: uint8 or [−1, 1] float batch → [−1, 1] float at ``size``."""
    if images.dtype == torch.uint8:
        images = to_float(images)
    return resize(images, size)
