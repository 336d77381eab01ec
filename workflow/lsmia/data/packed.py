"""Packed datasets: one memory-mappable uint8 array, an index table and a manifest with hashes.

Layout of a packed directory::

    images.npy     uint8 N×H×W×3 (``np.save``; opened with ``mmap_mode="r"``)
    index.csv      row, label, identity, split, source (+ any extra columns of the caller)
    manifest.json  format version, counts, image size, settings, skipped files, SHA-256, provenance
    .verified.json when each data file last matched its SHA-256 (size, mtime, ctime, inode)

Every ``PackedDataset`` checks the data files against the manifest's SHA-256 before use. The
hash is recomputed only when a file's size, mtime, ctime or inode differ from the stamp in
``.verified.json`` (a write changes the ctime even when the mtime is put back), and once per
process at most; a changed byte stops the job with the file's name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from lsmia.data.prefetch import prefetched
from lsmia.io import atomic_dir, load_json, save_json, sha256_of
from lsmia.provenance import provenance

FORMAT = "lsmia-packed"
FORMAT_VERSION = 1
IMAGES_FILE = "images.npy"
INDEX_FILE = "index.csv"
MANIFEST_FILE = "manifest.json"
VERIFIED_FILE = ".verified.json"
REQUIRED_COLUMNS = ("label", "identity", "split", "source")
SPLITS = ("train", "test")


def write_packed(
    out_dir: str | os.PathLike,
    images: np.ndarray,
    index: pd.DataFrame,
    settings: dict,
    skipped: Sequence[str] | None = None,
) -> Path:
    """Validate and write a packed dataset to ``out_dir`` atomically; return its path."""
    index = _validated_index(images, index)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        np.save(tmp / IMAGES_FILE, np.ascontiguousarray(images), allow_pickle=False)
        index.to_csv(tmp / INDEX_FILE, index=False)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "num_images": int(len(index)),
            "num_classes": int(index["label"].max()) + 1,
            "image_size": [int(images.shape[1]), int(images.shape[2])],
            "counts": _counts(index),
            "settings": settings,
            "skipped": [str(path) for path in (skipped or [])],
            "sha256": {name: sha256_of(tmp / name) for name in (IMAGES_FILE, INDEX_FILE)},
            "provenance": provenance(seed=settings.get("seed")),
        }
        save_json(manifest, tmp / MANIFEST_FILE)
    _write_stamp(out_dir, manifest["sha256"])
    return out_dir


def _validated_index(images: np.ndarray, index: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise ValueError(f"images: expected a uint8 numpy array, got {type(images).__name__} "
                         f"of dtype {getattr(images, 'dtype', None)}")
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"images: expected shape N×H×W×3, got {images.shape}")
    missing = [column for column in REQUIRED_COLUMNS if column not in index.columns]
    if missing:
        raise ValueError(f"index: missing columns {missing} (needs {list(REQUIRED_COLUMNS)})")
    if "row" in index.columns:
        raise ValueError("index: must not have a 'row' column; write_packed adds it")
    if len(index) != len(images):
        raise ValueError(f"index has {len(index)} rows but images has {len(images)}")
    if len(index) == 0:
        raise ValueError("images: a packed dataset needs at least one image")
    if not pd.api.types.is_integer_dtype(index["label"]):
        raise ValueError(f"index.label: expected integers, got dtype {index['label'].dtype}")
    labels = index["label"].to_numpy()
    present = np.unique(labels)
    if present[0] != 0 or len(present) != present[-1] + 1:
        absent = sorted(set(range(int(present[-1]) + 1)) - set(present.tolist()))
        raise ValueError(f"index.label: expected contiguous labels 0..C-1; min {present[0]}, "
                         f"missing {absent[:10]}")
    bad_splits = sorted(set(index["split"]) - set(SPLITS))
    if bad_splits:
        raise ValueError(f"index.split: unexpected values {bad_splits}, expected one of {SPLITS}")
    names_per_label = index.groupby("label")["identity"].nunique()
    ambiguous = names_per_label[names_per_label != 1].index.tolist()
    if ambiguous:
        raise ValueError(f"index.identity: labels {ambiguous[:10]} have more than one identity name")
    table = index.reset_index(drop=True).copy()
    table.insert(0, "row", np.arange(len(table)))
    return table


def _counts(index: pd.DataFrame) -> dict:
    counts = {}
    for split in SPLITS:
        per_class = index.loc[index["split"] == split, "label"].value_counts()
        per_class = per_class.reindex(range(int(index["label"].max()) + 1), fill_value=0)
        counts[split] = {
            "images": int(per_class.sum()),
            "per_class_min": int(per_class.min()),
            "per_class_max": int(per_class.max()),
            "per_class_mean": round(float(per_class.mean()), 3),
        }
    return counts


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of the packed directory ``path``; a clear error if absent or not ours."""
    manifest_path = Path(path) / MANIFEST_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: no manifest; is {path} a packed dataset "
                                f"(written by lsmia.data.packed.write_packed)?")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{manifest_path}: not valid JSON ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{manifest_path}: not a packed-dataset manifest (format != {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{manifest_path}: format_version {manifest.get('format_version')}, "
                         f"this code reads {FORMAT_VERSION}; prepare the dataset again")
    return manifest


def verify_manifest(path: str | os.PathLike) -> dict:
    """Recompute the SHA-256 of every data file; raise naming the file that does not match."""
    manifest = read_manifest(path)
    for name, expected in manifest["sha256"].items():
        _check_hash(Path(path) / name, expected)
    _write_stamp(path, manifest["sha256"])
    return manifest


def ensure_verified(path: str | os.PathLike, manifest: dict) -> None:
    """Like :func:`verify_manifest`, but re-hash only files whose state differs from the stamp
    in ``.verified.json`` (or from what this process already checked); refresh the stamp."""
    path = Path(path)
    stamp = _read_stamp(path)
    hashes = manifest["sha256"]
    stale = False
    for name, expected in hashes.items():
        file = path / name
        if not file.is_file():
            raise FileNotFoundError(f"{file}: listed in the manifest but missing")
        state = [*_file_state(file), expected]
        if state == _CHECKED.get(str(file.resolve())) or state == stamp.get(name):
            continue
        _check_hash(file, expected)
        stale = True
    if stale:
        _write_stamp(path, hashes)


_CHECKED: dict[str, list] = {}  # this process's verified files: resolved path -> state + hash


def _check_hash(file: Path, expected: str) -> None:
    if not file.is_file():
        raise FileNotFoundError(f"{file}: listed in the manifest but missing")
    state = _file_state(file)
    actual = sha256_of(file)
    if actual != expected:
        raise ValueError(f"{file}: SHA-256 {actual[:12]}… does not match the manifest's "
                         f"{expected[:12]}…; the file changed after preparation (prepare the "
                         f"dataset again, or restore the file)")
    _CHECKED[str(file.resolve())] = [*state, expected]


def _file_state(file: Path) -> list[int]:
    info = file.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def _read_stamp(path: Path) -> dict:
    try:
        stamp = load_json(path / VERIFIED_FILE)
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _write_stamp(path: str | os.PathLike, hashes: dict) -> None:
    """Record the state of files whose hash matched; skipped where the folder is read-only."""
    path = Path(path)
    stamp = {name: [*_file_state(path / name), expected] for name, expected in hashes.items()}
    try:
        save_json(stamp, path / VERIFIED_FILE)
    except OSError:
        pass  # a shared read-only copy: every job re-hashes (still correct, only slower)


class PackedDataset:
    """A view of a packed directory: all rows, one split, or given rows (row numbers of the file).

    ``split`` and ``rows`` may be combined; then every row must belong to that split.
    Positions (``dataset[i]``, ``batch(positions)``) count within the selection.
    """

    def __init__(self, path: str | os.PathLike, split: str | None = None,
                 rows: Sequence[int] | np.ndarray | None = None):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        ensure_verified(self.path, self.manifest)
        table = pd.read_csv(self.path / INDEX_FILE, keep_default_na=False)
        try:
            self._images = np.load(self.path / IMAGES_FILE, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise ValueError(f"{self.path / IMAGES_FILE}: cannot be memory-mapped ({err}); "
                             "truncated? prepare the dataset again") from err
        if len(table) != len(self._images) or len(table) != self.manifest["num_images"]:
            raise ValueError(f"{self.path}: {INDEX_FILE} has {len(table)} rows, {IMAGES_FILE} "
                             f"{len(self._images)}, manifest {self.manifest['num_images']}")
        self.num_classes = int(self.manifest["num_classes"])
        names = table.drop_duplicates("label").sort_values("label")
        self.identities = names["identity"].astype(str).tolist()
        self.image_size = tuple(self.manifest["image_size"])
        selected = np.ones(len(table), dtype=bool)
        if split is not None:
            if split not in SPLITS:
                raise ValueError(f"split: expected one of {SPLITS} or None, got {split!r}")
            selected = (table["split"] == split).to_numpy()
        if rows is None:
            self.rows = np.flatnonzero(selected)
        else:
            self.rows = np.asarray(rows, dtype=np.int64).reshape(-1)
            outside = self.rows[(self.rows < 0) | (self.rows >= len(table))]
            if len(outside):
                raise IndexError(f"rows: {outside[:5].tolist()} outside 0..{len(table) - 1}")
            foreign = self.rows[~selected[self.rows]]
            if len(foreign):
                raise ValueError(f"rows: {foreign[:5].tolist()} are not in split {split!r}")
        self.split = split
        self.index = table.iloc[self.rows].reset_index(drop=True)
        self.labels = self.index["label"].to_numpy(dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int]:
        row = self.rows[position]
        image = torch.from_numpy(np.array(self._images[row])).permute(2, 0, 1).contiguous()
        return image, int(self.labels[position])

    def batch(self, positions: Sequence[int] | np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 N×3×H×W images (channels-last memory) and int64 labels for ``positions``."""
        positions = np.asarray(positions, dtype=np.int64)
        images = torch.from_numpy(self._images[self.rows[positions]]).permute(0, 3, 1, 2)
        return images, torch.from_numpy(self.labels[positions])


def iterate_batches(
    dataset: PackedDataset,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    drop_last: bool = False,
    prefetch: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(uint8 images, int64 labels)`` on ``device``; the next batch is read in a thread."""
    if batch_size <= 0:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    device = torch.device(device)
    order = torch.randperm(len(dataset), generator=generator) if shuffle else torch.arange(len(dataset))
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    chunks = [order[start:start + batch_size].numpy() for start in range(0, stop, batch_size)]
    pin = device.type == "cuda"

    def load(positions: np.ndarray):
        images, labels = dataset.batch(positions)
        if pin:
            images, labels = images.pin_memory(), labels.pin_memory()
        return images, labels

    batches = prefetched(load, chunks) if prefetch else map(load, chunks)
    for images, labels in batches:
        yield images.to(device, non_blocking=pin), labels.to(device, non_blocking=pin)

