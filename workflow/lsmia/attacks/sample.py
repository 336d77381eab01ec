"""PPA stage 1: search the prior for the latents the target finds most class-like."""

from __future__ import annotations

import logging
import sys

import torch
from torch import nn
from tqdm import tqdm

from lsmia.attacks.generators import Generator
from lsmia.attacks.views import (
    check_classes,
    flip_averaged_softmax,
    prepare_target,
    target_view,
    top_k_per_row,
)

log = logging.getLogger(__name__)


@torch.no_grad()
def sample_stage(
    generator: Generator,
    target: nn.Module,
    classes,
    *,
    search_space_size: int,
    candidates_per_class: int,
    psi: float,
    cutoff: int | None,
    crop_fraction: float,
    input_size: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    precision: str = "fp32",
    clamp: bool = True,
    latent_draw: str = "numpy",
) -> dict[str, torch.Tensor]:
    """Score ``search_space_size`` latents and keep the best ``candidates_per_class`` per class.

    Latents come from ``generator.sample_w(search_space_size, seed, psi, cutoff, latent_draw)``
    (``lsmia.attacks.latents.draw_z``); each is
    synthesised, clamped to [−1, 1] (``clamp``, as the authors' code), centre-cropped to
    ``crop_fraction`` and resized to ``input_size``; its score for a class is the
    target's softmax for that class averaged over the image and its horizontal mirror. Per class the
    top ``candidates_per_class`` distinct latents are kept (one latent may serve several classes).

    Returns (CPU tensors) ``w`` ``C×k×num_ws×w_dim`` (the full truncated latents that were scored;
    the optimisation stage starts from their first layer, broadcast), ``classes`` ``C``,
    ``confidence`` ``C×k`` (descending per class) and ``indices`` ``C×k`` (positions in the search
    space).
    """
    target = prepare_target(target, device)
    latents = generator.sample_w(search_space_size, seed, psi, cutoff, latent_draw).to(device)
    scores = []
    for start in tqdm(
        range(0, search_space_size, batch_size), desc="sample", file=sys.stderr, mininterval=10
    ):
        images = generator.synthesise(latents[start : start + batch_size])
        if clamp:
            images = images.clamp(-1, 1)
        view = target_view(images, crop_fraction, input_size)
        scores.append(flip_averaged_softmax(target, view, precision))
    probabilities = torch.cat(scores)
    classes = check_classes(classes, probabilities.shape[1], "sample_stage")
    confidence, indices = top_k_per_row(
        probabilities[:, classes.to(device)].T.cpu(), candidates_per_class, "sample_stage"
    )
    log.info("sampling: mean kept confidence %.4f", confidence.mean().item())
    return {
        "w": latents.cpu()[indices],
        "classes": classes,
        "confidence": confidence,
        "indices": indices,
    }
