"""Inputs of the embedding-geometry figure: penultimate features of a few classes and the
last-layer weight templates of a trained target model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from lsmia.data.augment import eval_transform
from lsmia.data.packed import PackedDataset
from lsmia.models import penultimate


def classifier_weights(model: nn.Module) -> np.ndarray:
    """The last layer's weight matrix (C×D), one template per class."""
    classifier = model.get_classifier()
    weight = getattr(classifier, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise TypeError(
            f"{type(model).__name__}.get_classifier() is {type(classifier).__name__}, "
            "not a linear layer with a C×D weight"
        )
    return weight.detach().float().cpu().numpy()


@torch.no_grad()
def class_features(
    model: nn.Module,
    dataset: PackedDataset,
    classes: Sequence[int],
    input_size: int,
    device: torch.device,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(features N×D, labels N, weights C×D)`` for every image of ``classes`` in ``dataset``,
    ready for ``figures.embeddings_figure``."""
    positions = np.flatnonzero(np.isin(dataset.labels, list(classes)))
    missing = sorted(set(classes) - set(dataset.labels[positions].tolist()))
    if missing:
        raise ValueError(
            f"{dataset.path}: no images of classes {missing} in split {dataset.split!r}"
        )
    model.eval()
    features, labels = [], []
    for start in range(0, len(positions), batch_size):
        images, batch_labels = dataset.batch(positions[start : start + batch_size])
        images = eval_transform(images.to(device), input_size)
        if device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        batch_features = penultimate(model, images)
        features.append(batch_features.float().cpu().numpy())
        labels.append(batch_labels.numpy())
    return np.concatenate(features), np.concatenate(labels), classifier_weights(model)
