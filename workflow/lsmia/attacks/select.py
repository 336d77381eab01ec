"""PPA stage 3: keep the optimised latents whose class survives random crops and flips best."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from lsmia.attacks.generators import Generator
from lsmia.attacks.views import (
    prepare_target,
    target_logits,
    target_view,
    to_uint8,
    top_k_per_row,
)
from lsmia.data import augment
from lsmia.io import atomic_path


@torch.no_grad()
def select_stage(generator: Generator, target: nn.Module, optimise_out: dict, *,
                 final_per_class: int, transforms: int, crop_scale: tuple[float, float],
                 crop_ratio: tuple[float, float], crop_fraction: float, input_size: int,
                 batch_size: int, seed: int, device: torch.device, image_size: int | None = None,
                 precision: str = "fp32") -> dict[str, torch.Tensor]:
    """Score every optimised latent by the target's mean softmax for its class over ``transforms``
    random views, and keep the best ``final_per_class`` per class.

    A view is the target's input (centre crop ``crop_fraction``, resize ``input_size``) through a
    random resized crop (``crop_scale``, ``crop_ratio``) and, with probability ½, a mirror. The
    ``transforms`` views are drawn once from ``seed`` and shared by all latents, so the result does
    not depend on batching.

    Returns (CPU tensors) ``w`` ``C×n×…``, ``classes``, ``confidence`` ``C×n`` (the scores, best
    first), ``indices`` ``C×n`` (positions among the optimised candidates of the class) and
    ``images`` uint8 ``C×n×S×S×3``: the centre crop the target saw, resized to ``image_size``
    (``None``: kept at the generator's resolution).
    """
    target = prepare_target(target, device)
    classes = torch.as_tensor(optimise_out["classes"], dtype=torch.int64)
    all_w = optimise_out["w"].float()
    num_classes, per_class = all_w.shape[:2]
    flat_w = all_w.reshape(num_classes * per_class, *all_w.shape[2:])
    flat_targets = classes.repeat_interleave(per_class)

    view_generator = torch.Generator().manual_seed(seed)
    boxes = augment.crop_boxes(transforms, input_size, input_size, crop_scale, crop_ratio,
                               view_generator).to(device)
    flips = (torch.rand(transforms, generator=view_generator) < 0.5).tolist()
    scores = [
        _mean_view_confidence(generator, target, flat_w[start : start + batch_size].to(device),
                              flat_targets[start : start + batch_size, None].to(device), boxes,
                              flips, crop_fraction, input_size, precision)
        for start in tqdm(range(0, len(flat_w), batch_size), desc="select", file=sys.stderr,
                          mininterval=10)
    ]
    confidence, indices = top_k_per_row(
        torch.cat(scores).cpu().reshape(num_classes, per_class), final_per_class, "select_stage"
    )
    chosen = all_w[torch.arange(num_classes)[:, None], indices]
    flat_chosen = chosen.reshape(-1, *all_w.shape[2:])
    output_size = image_size or max(1, round(generator.image_size * crop_fraction))
    images = [
        to_uint8(target_view(generator.synthesise(flat_chosen[start : start + batch_size]
                                                  .to(device)), crop_fraction, output_size)).cpu()
        for start in range(0, len(flat_chosen), batch_size)
    ]
    return {
        "w": chosen,
        "classes": classes,
        "confidence": confidence,
        "indices": indices,
        "images": torch.cat(images).reshape(num_classes, final_per_class, *images[0].shape[1:]),
    }


def _mean_view_confidence(generator, target, w, targets, boxes, flips, crop_fraction, input_size,
                          precision) -> torch.Tensor:
    """The target's softmax for ``targets`` (``B×1``) averaged over the views of ``w`` that the
    crop ``boxes`` and ``flips`` make."""
    view = target_view(generator.synthesise(w), crop_fraction, input_size)
    total = torch.zeros(len(w), device=w.device)
    for box, flip in zip(boxes, flips):
        images = augment.crop_and_resize(view, box.expand(len(w), 4), input_size)
        images = images.flip(-1) if flip else images
        total += target_logits(target, images, precision).softmax(dim=1).gather(1, targets)[:, 0]
    return total / len(boxes)


def save_grid(images: torch.Tensor, classes, path: str | Path, max_classes: int = 10,
              max_per_class: int = 8, gap: int = 2, label_width: int = 48) -> None:
    """PNG grid: one row per class (the first ``max_classes``, labelled with the class), up to
    ``max_per_class`` images each. ``images`` is uint8 ``C×n×H×W×3`` (``select_stage``'s output)."""
    from PIL import Image, ImageDraw

    if images.dtype != torch.uint8 or images.dim() != 5 or images.shape[-1] != 3:
        raise ValueError(f"save_grid: expected uint8 C×n×H×W×3 images, got {images.dtype} "
                         f"{tuple(images.shape)}")
    labels = [int(label) for label in classes]
    if len(labels) != images.shape[0]:
        raise ValueError(f"save_grid: {len(labels)} classes for {images.shape[0]} rows of images")
    rows = images[:max_classes, :max_per_class].numpy()
    num_rows, num_cols, height, width = rows.shape[:4]
    canvas = np.full((num_rows * (height + gap) - gap, label_width + num_cols * (width + gap) - gap,
                      3), 255, dtype=np.uint8)
    for r in range(num_rows):
        for c in range(num_cols):
            top, left = r * (height + gap), label_width + c * (width + gap)
            canvas[top : top + height, left : left + width] = rows[r, c]
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    for r in range(num_rows):
        draw.text((4, r * (height + gap) + height // 2 - 5), f"class {labels[r]}", fill=(0, 0, 0))
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
