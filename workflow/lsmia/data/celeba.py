"""CelebA, the ``identities`` most frequent identities → packed dataset (reference selection/split).

Selection as in the reference code: count images per identity over ``identity_CelebA.txt``, sort
by count descending (a stable sort, so ties keep the order in which identities first appear in
the file), keep the first ``identities`` and relabel them 0..K−1 in that order. The images are
those of the selected identities in the file's order (file-name order), split by ``seeded_split``
(seed 42, 90/10) over their indices.

Crops: ``crop="landmarks"`` (the paper's) makes HQ crops from ``img_celeba/`` and
``list_landmarks_celeba.txt`` (see ``face_crop``); ``crop="aligned"`` uses the 178×218
``img_align_celeba/`` release, resized (shorter side, bilinear) and centre-cropped to a square, as
the reference's ``Resize`` + ``CenterCrop`` would.
"""

from __future__ import annotations

import os
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from lsmia.data.face_crop import align_crop
from lsmia.data.images import open_rgb, pack_split, resize_center_crop

IDENTITY_FILE = "identity_CelebA.txt"
LANDMARK_FILE = "list_landmarks_celeba.txt"
CROPS = {"landmarks": "img_celeba", "aligned": "img_align_celeba"}
DOWNLOAD_HINT = (
    "download CelebA from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive: "
    "Img/img_celeba.7z or Img/img_align_celeba.zip, Anno/identity_CelebA.txt, "
    "Anno/list_landmarks_celeba.txt) and place the files directly under {raw}"
)


def check_raw_celeba(raw_dir: str | os.PathLike, crop: str = "landmarks") -> list[str]:
    """Problems that would stop preparation with ``crop`` (empty when all files are present)."""
    if crop not in CROPS:
        return [f"crop: expected one of {sorted(CROPS)}, got {crop!r}"]
    raw_dir = Path(raw_dir)
    needed = [IDENTITY_FILE] + ([LANDMARK_FILE] if crop == "landmarks" else [])
    problems = [f"{raw_dir / name}: missing; " + DOWNLOAD_HINT.format(raw=raw_dir)
                for name in needed if not (raw_dir / name).is_file()]
    images = raw_dir / CROPS[crop]
    if not images.is_dir() or _is_empty(images):
        problems.append(f"{images}: missing or empty (needed for crop={crop!r}); "
                        + DOWNLOAD_HINT.format(raw=raw_dir))
    return problems


def _is_empty(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return next(entries, None) is None


def read_identities(path: Path) -> pd.DataFrame:
    """``file, identity`` rows of ``identity_CelebA.txt``, in file order."""
    table = pd.read_csv(path, sep=r"\s+", header=None, dtype=str)
    if table.shape[1] != 2 or not table[1].str.fullmatch(r"\d+").all():
        raise ValueError(f"{path}: expected lines '<file> <integer identity>'")
    return pd.DataFrame({"file": table[0], "identity": table[1].astype(np.int64)})


def read_landmarks(path: Path) -> dict[str, np.ndarray]:
    """file → 5×2 (x, y) landmarks from ``list_landmarks_celeba.txt`` (two header lines)."""
    table = pd.read_csv(path, sep=r"\s+", header=None, skiprows=2)
    if table.shape[1] != 11:
        raise ValueError(f"{path}: expected 11 columns (file, 5 × (x, y)) after two header lines, "
                         f"found {table.shape[1]}")
    points = table.iloc[:, 1:].to_numpy(dtype=np.float64).reshape(-1, 5, 2)
    return dict(zip(table[0], points))


def select_identities(identity_per_image: pd.Series, count: int) -> list[int]:
    """The ``count`` most frequent identities, most frequent first (ties: first appearance)."""
    counts = Counter(identity_per_image.tolist())  # keys in order of first appearance
    if not 0 < count <= len(counts):
        raise ValueError(f"identities: expected 1..{len(counts)} (identities listed), got {count}")
    ranked = sorted(counts.items(), key=lambda item: item[1], reverse=True)
    return [int(identity) for identity, _ in ranked[:count]]


def load_landmark_crop(image_size: int, face_factor: float, item: tuple[Path, np.ndarray]) -> np.ndarray:
    path, landmarks = item
    return align_crop(open_rgb(path), landmarks, image_size, face_factor)


def load_aligned(image_size: int, path: Path) -> np.ndarray:
    return resize_center_crop(open_rgb(path), image_size)


def prepare_celeba(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                   identities: int = 1000, crop: str = "landmarks", face_factor: float = 0.65,
                   image_size: int = 224, test_fraction: float = 0.1, seed: int = 42,
                   on_corrupt: str = "fail", workers: int | None = None) -> Path:
    """Pack CelebA into ``out_dir``; see the module docstring for selection, split and crops."""
    raw_dir = Path(raw_dir)
    problems = check_raw_celeba(raw_dir, crop)
    if problems:
        raise FileNotFoundError("CelebA raw data incomplete:\n- " + "\n- ".join(problems))
    table = read_identities(raw_dir / IDENTITY_FILE)
    chosen = select_identities(table["identity"], identities)
    label_of = {identity: label for label, identity in enumerate(chosen)}
    table = table[table["identity"].isin(label_of)].reset_index(drop=True)
    files = [raw_dir / CROPS[crop] / name for name in table["file"]]
    if crop == "landmarks":
        landmarks = read_landmarks(raw_dir / LANDMARK_FILE)
        missing = [name for name in table["file"] if name not in landmarks]
        if missing:
            raise ValueError(f"{raw_dir / LANDMARK_FILE}: no landmarks for {missing[:5]} "
                             f"({len(missing)} files)")
        items = [(path, landmarks[path.name]) for path in files]
        load = partial(load_landmark_crop, image_size, face_factor)
    else:
        items, load = files, partial(load_aligned, image_size)
    settings = {"dataset": "celeba", "raw_dir": str(raw_dir), "identities": identities,
                "crop": crop, "face_factor": face_factor if crop == "landmarks" else None,
                "image_size": image_size, "test_fraction": test_fraction, "seed": seed,
                "on_corrupt": on_corrupt, "celeba_ids_by_label": chosen}
    sources = [f"{CROPS[crop]}/{name}" for name in table["file"]]
    return pack_split(out_dir, items, sources, table["identity"].map(label_of).to_list(),
                      [str(identity) for identity in chosen], load, image_size=image_size,
                      test_fraction=test_fraction, seed=seed, on_corrupt=on_corrupt,
                      settings=settings, workers=workers)
