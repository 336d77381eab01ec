"""Shared steps of raw-dataset preparation: folder listing, decoding, splitting, packing.

Packed rows are written in the reference code's subset order: the training images in the order
of the seeded permutation, then the test images likewise. ``PackedDataset(path, "train").rows`` is
therefore the reference's ``Subset(train_idx)`` order, and ``limit_training_set`` on it picks the
same images as the reference's ``training_set_size``.
"""

from __future__ import annotations

import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from lsmia.io import staging_dir
from lsmia.data.splits import seeded_split

# torchvision.datasets.folder.IMG_EXTENSIONS, compared case-insensitively as ImageFolder does
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
ON_CORRUPT = ("fail", "skip")
log = logging.getLogger("lsmia.data")


def image_folder(root: str | os.PathLike) -> list[tuple[str, list[Path]]]:
    """``[(class name, image paths)]`` in ``torchvision.datasets.ImageFolder`` order: class folders
    sorted by name; within each, ``os.walk`` directories sorted and file names sorted.

    Symbolic links to folders are followed, but every real folder is read once: a link to a
    folder of the tree itself or to one already read (a loop, or a second way into a class) is
    skipped with a warning naming it, so no image is packed twice or lands in both splits."""
    root = Path(root)
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    tree = {_folder_key(root): root}  # real folder -> where it lies in the tree
    tree.update((_folder_key(Path(directory)), Path(directory)) for name in classes
                if not (root / name).is_symlink() for directory, _, _ in os.walk(root / name))
    seen: set[tuple[int, int]] = set()
    listing = []
    for name in classes:
        files = []
        if _first_visit(root / name, tree, seen):
            for directory, _, names in sorted(_walk_once(root / name, tree, seen)):
                files += [Path(directory) / file for file in sorted(names)
                          if file.lower().endswith(IMAGE_EXTENSIONS)]
        listing.append((name, files))
    return listing


def _walk_once(top: Path, tree: dict, seen: set):
    """``os.walk(top, followlinks=True)``, entering each real folder once."""
    for directory, subdirs, names in os.walk(top, followlinks=True):
        subdirs[:] = [sub for sub in sorted(subdirs) if _first_visit(Path(directory) / sub, tree, seen)]
        yield directory, subdirs, names


def _folder_key(folder: Path) -> tuple[int, int]:
    info = folder.stat()
    return info.st_dev, info.st_ino


def _first_visit(folder: Path, tree: dict, seen: set) -> bool:
    key = _folder_key(folder)
    if key in seen or tree.get(key, folder) != folder:
        log.warning("%s: skipped; it links to %s, a folder read elsewhere (images are packed once)",
                    folder, folder.resolve())
        return False
    seen.add(key)
    return True


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully as RGB; a ValueError naming the file if it cannot be read.

    16-bit grey images are scaled to 8 bits (Pillow's ``convert`` would clip them to white);
    32-bit integer or float images, whose range is unknown, are refused."""
    try:
        with Image.open(path) as image:
            if image.mode.startswith("I;16"):
                image.load()
                return _scaled_16_bit(np.asarray(image))
            if image.mode not in ("I", "F"):
                return image.convert("RGB")
            mode = image.mode
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: unreadable image ({type(err).__name__}: {err})") from err
    raise ValueError(f"{path}: a 32-bit {'float' if mode == 'F' else 'integer'} image (mode "
                     f"{mode!r}) has no known range; save it with 8 or 16 bits per channel")


def _scaled_16_bit(pixels: np.ndarray) -> Image.Image:
    scaled = (pixels.astype(np.uint32) * 255 + 32767) // 65535  # round(v · 255 / 65535)
    return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")


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


def decode_all(items: Sequence[Any], load: Callable[[Any], np.ndarray], image_size: int,
               staging: Path, on_corrupt: str, workers: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``load(item)`` for every item (``workers`` threads) into a staging memmap.

    Returns ``(images, readable)``: ``readable[i]`` is False for an item skipped as unreadable
    (``load`` raised ValueError); with ``on_corrupt="fail"`` the first such error (in item order)
    propagates. Threads, not processes: Pillow releases the GIL while it decodes, converts,
    resizes and warps, and a thread pool neither re-imports the caller's ``__main__`` (a Snakemake
    script cannot be re-imported) nor copies images between processes."""
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"on_corrupt: expected one of {ON_CORRUPT}, got {on_corrupt!r}")
    images = np.lib.format.open_memmap(staging, mode="w+", dtype=np.uint8,
                                       shape=(len(items), image_size, image_size, 3))
    readable = np.ones(len(items), dtype=bool)

    def store(position: int) -> None:
        try:
            images[position] = load(items[position])
        except ValueError:
            if on_corrupt == "fail":
                raise
            readable[position] = False

    workers = workers or len(os.sched_getaffinity(0))
    progress = dict(total=len(items), desc="decode", file=sys.stderr, mininterval=10)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for _ in tqdm(pool.map(store, range(len(items))), **progress):
            pass
    return images, readable


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
    with staging_dir(out_dir) as tmp:
        decoded, readable = decode_all(items, load, image_size, tmp / "decoded.npy",
                                       on_corrupt, workers)
        kept = np.flatnonzero(readable)
        lost = sorted(set(range(len(identities))) - set(labels[kept].tolist()))
        if lost:
            raise ValueError(f"identities {[identities[i] for i in lost[:10]]} have no readable "
                             f"image left after skipping corrupt files")
        train, test = seeded_split(len(kept), test_fraction, seed)
        order = kept[np.concatenate([train, test])]
        images = np.lib.format.open_memmap(tmp / "ordered.npy", mode="w+", dtype=np.uint8,
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

