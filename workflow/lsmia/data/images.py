"""Shared steps of raw-dataset preparation: folder listing, decoding, splitting, packing.

Packed rows are written in the reference code's subset order: the training images in the order
of the seeded permutation, then the test images likewise. ``PackedDataset(path, "train").rows`` is
therefore the reference's ``Subset(train_idx)`` order, and ``limit_training_set`` on it picks the
same images as the reference's ``training_set_size``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from lsmia.data.splits import seeded_split

# torchvision.datasets.folder.IMG_EXTENSIONS, compared case-insensitively as ImageFolder does
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
ON_CORRUPT = ("fail", "skip")


def image_folder(root: str | os.PathLike) -> list[tuple[str, list[Path]]]:
    """``[(class name, image paths)]`` in ``torchvision.datasets.ImageFolder`` order: class folders
    sorted by name; within each, ``os.walk`` directories sorted and file names sorted."""
    root = Path(root)
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    listing = []
    for name in classes:
        files = []
        for directory, _, names in sorted(os.walk(root / name, followlinks=True)):
            files += [Path(directory) / file for file in sorted(names)
                      if file.lower().endswith(IMAGE_EXTENSIONS)]
        listing.append((name, files))
    return listing


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully as RGB; a ValueError naming the file if it cannot be read."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: unreadable image ({type(err).__name__}: {err})") from err


def resize_center_crop(image: Image.Image, size: int,
                       resample: int = Image.Resampling.BILINEAR) -> np.ndarray:
    """torchvision ``Resize(size)`` (shorter side to ``size``) then ``CenterCrop(size)`` on a PIL
    image, as uint8 ``size×size×3``. For square inputs this is the reference's ``Resize(224)``."""
    width, height = image.size
    if width <= height:
        new_size = (size, int(size * height / width))
    else:
        new_size = (int(size * width / height), size)
    if new_size != image.size:
        image = image.resize(new_size, resample=resample)
    left = int(round((new_size[0] - size) / 2.0))
    top = int(round((new_size[1] - size) / 2.0))
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _load_or_none(load: Callable[[Any], np.ndarray], skip: bool, item: Any):
    try:
        return load(item)
    except ValueError:
        if skip:
            return None
        raise


def decode_all(items: Sequence[Any], load: Callable[[Any], np.ndarray], image_size: int,
               staging: Path, on_corrupt: str, workers: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``load(item)`` for every item (in order, ``workers`` processes) into a staging memmap.

    Returns ``(images, readable)``: ``readable[i]`` is False for an item skipped as unreadable
    (``load`` raised ValueError); with ``on_corrupt="fail"`` that error propagates."""
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"on_corrupt: expected one of {ON_CORRUPT}, got {on_corrupt!r}")
    images = np.lib.format.open_memmap(staging, mode="w+", dtype=np.uint8,
                                       shape=(len(items), image_size, image_size, 3))
    readable = np.ones(len(items), dtype=bool)
    job = partial(_load_or_none, load, on_corrupt == "skip")
    workers = workers or len(os.sched_getaffinity(0))
    progress = dict(total=len(items), desc="decode", file=sys.stderr, mininterval=10)
    if workers == 1:
        _store(map(job, items), images, readable, progress)
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            _store(pool.imap(job, items, chunksize=32), images, readable, progress)
    return images, readable


def _store(results, images, readable, progress):
    for position, image in enumerate(tqdm(results, **progress)):
        if image is None:
            readable[position] = False
        else:
            images[position] = image


def pack_split(out_dir: str | os.PathLike, items: Sequence[Any], sources: Sequence[str],
               labels: Sequence[int], identities: Sequence[str],
               load: Callable[[Any], np.ndarray], *, image_size: int, test_fraction: float,
               seed: int, on_corrupt: str, settings: dict, workers: int | None = None) -> Path:
    """Decode, split the readable images with ``seeded_split`` and write a packed dataset.

    ``load(items[i])`` gives image i (uint8 ``image_size``²×3), ``sources[i]`` names its file and
    ``labels[i]`` indexes ``identities``. Unreadable images are dropped before splitting when
    ``on_corrupt == "skip"`` (the split then covers the readable images only) and listed in the
    manifest; with ``"fail"`` the first one stops preparation with its path."""
    from lsmia.data.packed import write_packed  # torch: not for the raw-data check while planning

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels, dtype=np.int64)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.staging.", dir=out_dir.parent) as tmp:
        decoded, readable = decode_all(items, load, image_size, Path(tmp) / "decoded.npy",
                                       on_corrupt, workers)
        kept = np.flatnonzero(readable)
        lost = sorted(set(range(len(identities))) - set(labels[kept].tolist()))
        if lost:
            raise ValueError(f"identities {[identities[i] for i in lost[:10]]} have no readable "
                             f"image left after skipping corrupt files")
        train, test = seeded_split(len(kept), test_fraction, seed)
        order = kept[np.concatenate([train, test])]
        images = np.lib.format.open_memmap(Path(tmp) / "ordered.npy", mode="w+", dtype=np.uint8,
                                           shape=(len(order),) + decoded.shape[1:])
        for start in range(0, len(order), 1024):
            chunk = order[start:start + 1024]
            images[start:start + len(chunk)] = decoded[chunk]
        index = pd.DataFrame({
            "label": labels[order],
            "identity": [identities[label] for label in labels[order]],
            "split": ["train"] * len(train) + ["test"] * len(test),
            "source": [sources[i] for i in order],
        })
        skipped = [sources[i] for i in np.flatnonzero(~readable)]
        return write_packed(out_dir, images, index, settings, skipped=skipped)

