"""Features of real images, computed once per (dataset, extractor) and cached in one file that FID,
PRDC and the distances of every attack on that dataset share."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from lsmia.data.augment import to_float
from lsmia.data.packed import PackedDataset, iterate_batches
from lsmia.io import torch_save
from lsmia.metrics.extractors import FeatureExtractor
from lsmia.provenance import provenance

FORMAT = "lsmia-embeddings"


def compute_embeddings(extractor: FeatureExtractor, dataset: PackedDataset, split: str | None,
                       classes: Sequence[int] | None, batch_size: int,
                       device: torch.device | str) -> dict:
    """Features of the images of ``dataset`` in ``split`` (``None``: all its rows) whose label is in
    ``classes`` (``None``: all).

    Returns ``features`` (float32 ``N×D``, CPU), ``labels`` (int64 ``N``), ``rows`` (row numbers in
    the packed file), and ``extractor`` (its name), ``dataset`` (path), ``split``, ``images_sha256``
    (of the packed images) to check a cache against."""
    keep = np.ones(len(dataset), dtype=bool)
    if split is not None:
        keep &= (dataset.index["split"] == split).to_numpy()
    if classes is not None:
        keep &= np.isin(dataset.labels, np.asarray(list(classes), dtype=np.int64))
    if not keep.any():
        raise ValueError(f"{dataset.path}: no images in split {split!r} of classes "
                         f"{None if classes is None else list(classes)[:10]}")
    subset = PackedDataset(dataset.path, rows=dataset.rows[keep])
    features = []
    batches = iterate_batches(subset, batch_size, shuffle=False, device=device)
    for images, _ in tqdm(batches, total=-(-len(subset) // batch_size),
                          desc=f"embed {extractor.name}", file=sys.stderr, mininterval=10):
        features.append(extractor(to_float(images)).cpu())
    return {
        "format": FORMAT,
        "features": torch.cat(features),
        "labels": torch.from_numpy(subset.labels.copy()),
        "rows": torch.from_numpy(subset.rows.copy()),
        "extractor": extractor.name,
        "dataset": str(dataset.path),
        "split": split,
        "images_sha256": dataset.manifest["sha256"]["images.npy"],
    }


def save_embeddings(embeddings: dict, path: str | os.PathLike, seed: int | None = None) -> None:
    """Write the cache file atomically, with provenance."""
    torch_save({**embeddings, "provenance": provenance(seed=seed)}, path)


def load_cached_embeddings(path: str | os.PathLike, expected_extractor_name: str,
                           dataset: PackedDataset | None = None) -> dict:
    """Read a cache written by ``save_embeddings``; raise if it was made by another extractor (name
    and weights hash), or, when ``dataset`` is given, from other images."""
    cache = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(cache, dict) or cache.get("format") != FORMAT:
        raise ValueError(f"{path}: not an embeddings cache (format != {FORMAT!r})")
    if cache["extractor"] != expected_extractor_name:
        raise ValueError(f"{path}: embeddings of extractor {cache['extractor']!r}, expected "
                         f"{expected_extractor_name!r}; delete the file to recompute it")
    if dataset is not None and cache["images_sha256"] != dataset.manifest["sha256"]["images.npy"]:
        raise ValueError(f"{path}: made from other images than {dataset.path} "
                         "(images.npy hash differs); delete the file to recompute it")
    features, labels = cache["features"], cache["labels"]
    if features.dim() != 2 or len(features) != len(labels):
        raise ValueError(f"{path}: features {tuple(features.shape)} do not match "
                         f"{len(labels)} labels")
    return cache
