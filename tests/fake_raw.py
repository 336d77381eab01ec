"""Tiny fake raw-dataset layouts (FaceScrub, CelebA) for tests: generated JPEGs and text files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CORRUPT_BYTES = b"this is not an image"


def _write_jpeg(path: Path, rng: np.random.Generator, size: tuple[int, int]) -> None:
    """A smooth random-colour picture (so JPEG artefacts stay small), ``size`` = (width, height)."""
    width, height = size
    base = rng.integers(0, 256, size=3)
    ramp = np.linspace(0, 60, width, dtype=np.float64)[None, :, None]
    pixels = np.clip(base[None, None, :] + ramp + rng.normal(0, 4, (height, width, 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, quality=95)


def make_fake_facescrub(root: str | Path, actors: int = 3, actresses: int = 2, images: int = 4,
                        size: tuple[int, int] = (40, 40), corrupt: int = 0, seed: int = 0) -> Path:
    """``root/{actors,actresses}/faces/<Name>/<Name>_<k>.jpeg``; names are deliberately created
    out of sorted order, and a non-image file is added to each folder (ImageFolder ignores it).
    The first ``corrupt`` images of the first actor are replaced by bytes that are no image."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for group, count, prefix in (("actors", actors, "Actor"), ("actresses", actresses, "Actress")):
        for k in reversed(range(count)):
            name = f"{prefix}_{chr(ord('A') + k)}{k}"
            folder = root / group / "faces" / name
            for j in range(images):
                _write_jpeg(folder / f"{name}_{j}.jpeg", rng, size)
            (folder / "notes.txt").write_text("not an image\n")
    first_actor = root / "actors" / "faces" / "Actor_A0"
    for j in range(corrupt):
        (first_actor / f"Actor_A0_{j}.jpeg").write_bytes(CORRUPT_BYTES)
    return root


def make_fake_celeba(root: str | Path, identities: int = 6, images_per_identity=None,
                     wild_size: tuple[int, int] = (90, 110), corrupt: int = 0, seed: int = 0) -> Path:
    """A CelebA layout: ``img_celeba/`` (in the wild), ``img_align_celeba/`` (178×218),
    ``identity_CelebA.txt``, ``list_landmarks_celeba.txt`` and ``list_eval_partition.txt``.

    ``images_per_identity`` (list, one count per identity id 1..K) defaults to ``[k + 1, ...]``;
    files are interleaved across identities, as in the real release. The first ``corrupt``
    files are replaced by bytes that are no image (in both image folders)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    counts = list(images_per_identity or [k + 1 for k in range(identities)])
    remaining = {identity + 1: count for identity, count in enumerate(counts)}
    sequence = []
    while any(remaining.values()):
        for identity in list(remaining):
            if remaining[identity]:
                sequence.append(identity)
                remaining[identity] -= 1
    identity_lines, landmark_lines, partition_lines = [], [], []
    width, height = wild_size
    for number, identity in enumerate(sequence, start=1):
        name = f"{number:06d}.jpg"
        _write_jpeg(root / "img_celeba" / name, rng, wild_size)
        _write_jpeg(root / "img_align_celeba" / name, rng, (178, 218))
        centre = np.array([width / 2 + rng.integers(-5, 6), height / 2 + rng.integers(-5, 6)])
        points = centre + np.array([[-12, -10], [12, -10], [0, 3], [-10, 15], [10, 15]])
        landmark_lines.append(name + " " + " ".join(str(int(v)) for v in points.reshape(-1)))
        identity_lines.append(f"{name} {identity}")
        partition_lines.append(f"{name} {number % 3}")
    (root / "identity_CelebA.txt").write_text("\n".join(identity_lines) + "\n")
    header = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y " \
             "leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    (root / "list_landmarks_celeba.txt").write_text(
        f"{len(sequence)}\n{header}\n" + "\n".join(landmark_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(partition_lines) + "\n")
    for number in range(1, corrupt + 1):
        for folder in ("img_celeba", "img_align_celeba"):
            (root / folder / f"{number:06d}.jpg").write_bytes(CORRUPT_BYTES)
    return root
