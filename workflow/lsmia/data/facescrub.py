"""FaceScrub (cropped faces) → packed dataset, with the reference code's class order and split.

Raw layout: ``raw_dir/actors/faces/<name>/*`` and ``raw_dir/actresses/faces/<name>/*``.
Classes: the actors' folders sorted by name, then the actresses' (two ImageFolders concatenated);
images within a class as ImageFolder lists them. Split: ``seeded_split`` (seed 42, 90/10) over all
image indices in that order. Each image is resized like the reference's ``Resize(224)`` (shorter
side to ``image_size``, PIL bilinear) and centre-cropped to a square, which changes nothing for
square crops and keeps non-square ones at a fixed size.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from lsmia.data.images import image_folder, open_rgb, pack_split, resize_center_crop

GROUPS = ("actors", "actresses")
DOWNLOAD_HINT = (
    "FaceScrub is not downloadable automatically: get the list files from "
    "http://vintage.winklerbros.net/facescrub.html, download and crop the faces (the release's "
    "script writes <group>/faces/<name>/<file>), and place them as {raw}/actors/faces/<name>/*.jpg "
    "and {raw}/actresses/faces/<name>/*.jpg"
)


def check_raw_facescrub(raw_dir: str | os.PathLike) -> list[str]:
    """Problems that would stop preparation (empty when the raw layout looks complete)."""
    raw_dir = Path(raw_dir)
    problems = []
    for group in GROUPS:
        faces = raw_dir / group / "faces"
        if not faces.is_dir():
            problems.append(f"{faces}: missing. " + DOWNLOAD_HINT.format(raw=raw_dir))
            continue
        listing = image_folder(faces)
        if not listing:
            problems.append(f"{faces}: no identity folders. " + DOWNLOAD_HINT.format(raw=raw_dir))
        empty = [name for name, files in listing if not files]
        if empty:
            problems.append(f"{faces}: identity folders without images: {empty[:5]}"
                            + (f" and {len(empty) - 5} more" if len(empty) > 5 else ""))
    return problems


def facescrub_listing(raw_dir: str | os.PathLike) -> tuple[list[Path], list[int], list[str]]:
    """``(paths, labels, identities)`` in the reference order (actors, then actresses)."""
    paths, labels, identities = [], [], []
    for group in GROUPS:
        for name, files in image_folder(Path(raw_dir) / group / "faces"):
            paths += files
            labels += [len(identities)] * len(files)
            identities.append(name)
    return paths, labels, identities


def load_facescrub_image(image_size: int, path: Path) -> np.ndarray:
    return resize_center_crop(open_rgb(path), image_size)


def prepare_facescrub(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                      image_size: int = 224, test_fraction: float = 0.1, seed: int = 42,
                      on_corrupt: str = "fail", workers: int | None = None) -> Path:
    """Pack FaceScrub into ``out_dir``; see the module docstring for order, split and resizing."""
    raw_dir = Path(raw_dir)
    problems = check_raw_facescrub(raw_dir)
    if problems:
        raise FileNotFoundError("FaceScrub raw data incomplete:\n- " + "\n- ".join(problems))
    paths, labels, identities = facescrub_listing(raw_dir)
    settings = {"dataset": "facescrub", "raw_dir": str(raw_dir), "image_size": image_size,
                "resize": "shorter side, PIL bilinear, centre crop", "test_fraction": test_fraction,
                "seed": seed, "on_corrupt": on_corrupt, "groups": list(GROUPS)}
    sources = [str(path.relative_to(raw_dir)) for path in paths]
    return pack_split(out_dir, paths, sources, labels, identities,
                      partial(load_facescrub_image, image_size), image_size=image_size,
                      test_fraction=test_fraction, seed=seed, on_corrupt=on_corrupt,
                      settings=settings, workers=workers)
