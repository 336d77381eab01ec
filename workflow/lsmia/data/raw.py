"""Dispatch to the raw-release preparation of each data source."""

from __future__ import annotations

from pathlib import Path

from lsmia.config import entry_with_defaults

DOWNLOADS = {
    "facescrub": "the FaceScrub release (cropped faces: actors/faces/<name>/, actresses/faces/<name>/)",
    "celeba": "CelebA (img_celeba/ or img_align_celeba/, identity_CelebA.txt, "
    "list_landmarks_celeba.txt, list_eval_partition.txt)",
}


def missing_raw_data(source: str, raw_dir: str, crop: str | None) -> str | None:
    """A message naming what to download and where to put it, or None if the layout is complete
    (``crop``: a CelebA entry's, which decides whether landmarks are needed; None for FaceScrub)."""
    if source == "facescrub":
        from lsmia.data.facescrub import check_raw_facescrub

        problems = check_raw_facescrub(raw_dir)
    elif source == "celeba":
        from lsmia.data.celeba import check_raw_celeba

        problems = check_raw_celeba(raw_dir, crop)
    else:
        raise ValueError(f"source {source!r} has no raw release; expected facescrub or celeba")
    if not problems:
        return None
    listing = "\n".join(f"  - {p}" for p in problems)
    return (
        f"raw {source} data is incomplete under {Path(raw_dir).resolve()}:\n{listing}\n"
        f"Download {DOWNLOADS[source]} and put it there (layout: README.md, 'Raw data layout'), "
        f"or point datasets.<name>.raw_dir at it."
    )


def prepare_raw(source: str, raw_dir: str, out_dir: str, spec: dict, workers: int = 1,
                identity_needs: dict[str, int] | None = None) -> None:
    """Prepare a FaceScrub or CelebA packed dataset as the dataset's config entry says.

    ``identity_needs`` (config key -> identities it needs, ``lsmia.config.identity_needs``) is
    checked against the identities of the raw release before anything is decoded."""
    spec = entry_with_defaults("dataset", spec)
    if identity_needs:
        count = _identity_count(source, raw_dir, spec)
        short = {key: need for key, need in identity_needs.items() if need > count}
        if short:
            raise ValueError(f"{raw_dir} has {count} identities; config keys ask for more: "
                             + ", ".join(f"'{key}' needs {need}" for key, need in short.items()))
    common = dict(
        image_size=spec["image_size"],
        test_fraction=spec["test_fraction"],
        seed=spec["split_seed"],
        on_corrupt=spec["on_corrupt"],
        workers=workers,
    )
    if source == "facescrub":
        from lsmia.data.facescrub import prepare_facescrub

        prepare_facescrub(raw_dir, out_dir, **common)
    elif source == "celeba":
        from lsmia.data.celeba import prepare_celeba

        prepare_celeba(
            raw_dir, out_dir, identities=spec["identities"], crop=spec["crop"],
            face_factor=spec["face_factor"], **common,
        )
    else:
        raise ValueError(f"source {source!r} has no raw release; expected facescrub or celeba")


def _identity_count(source: str, raw_dir: str, spec: dict) -> int:
    if source == "facescrub":
        from lsmia.data.facescrub import facescrub_listing

        return len(facescrub_listing(raw_dir)[2])
    return spec["identities"]


def missing_raw_releases(datasets: dict, data_root: str | Path) -> dict[str, str]:
    """{data set: what is missing} for every raw release not yet packed.

    ``datasets`` is the config's ``datasets``; one whose ``<data_root>/<name>/private/manifest.json``
    exists is packed and needs its raw release no more.
    """
    missing = {}
    for name, spec in datasets.items():
        packed = Path(data_root) / name / "private" / "manifest.json"
        if spec["source"] not in DOWNLOADS or packed.exists():
            continue
        crop = entry_with_defaults("dataset", spec).get("crop")
        problem = missing_raw_data(spec["source"], spec["raw_dir"], crop)
        if problem:
            missing[name] = problem
    return missing


def raw_data_report(missing: dict[str, str]) -> str:
    """One message for everything :func:`missing_raw_releases` found, data set by data set."""
    parts = [f"data set '{name}': {problem}" for name, problem in missing.items()]
    return f"raw data missing for {len(missing)} data set(s):\n" + "\n".join(parts)
