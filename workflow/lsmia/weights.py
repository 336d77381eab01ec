"""Fetch pre-trained weights once (on a machine with internet) and check them by SHA-256."""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path

from lsmia.io import atomic_path, sha256_of

log = logging.getLogger("lsmia")


def check_sha256(path: str | Path, expected: str | None) -> str:
    """Return the file's SHA-256; raise if it does not start with ``expected`` (prefix allowed)."""
    actual = sha256_of(path)
    if expected and not actual.startswith(expected.lower()):
        raise ValueError(f"{path}: SHA-256 {actual} does not match the configured {expected}")
    return actual


def fetch(url: str, destination: str | Path, sha256: str | None, timeout: float = 60) -> str:
    """Download ``url`` to ``destination`` atomically and verify it; return the full SHA-256."""
    with atomic_path(destination) as tmp:
        log.info("downloading %s", url)
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
        digest = check_sha256(tmp, sha256)
    if not sha256:
        log.warning("%s has no sha256 in config; pin this one: %s", destination, digest)
    log.info("%s sha256=%s", destination, digest)
    return digest


def fetch_weights_rule(weights: dict, files: dict, log_path) -> None:
    """The local rule ``fetch_weights``: every configured file (a ``run:`` block, like
    ``lsmia.jobs.stylegan2.fetch_stylegan2_rule``, so that files already there are never fetched
    again only because the rule's code is newer)."""
    from lsmia.jobkit import logged_run

    with logged_run(log_path):
        for key, spec in weights.items():
            fetch(spec["url"], files[key], spec.get("sha256"))


def require(path: str | Path, rule: str = "fetch_weights") -> Path:
    """The path of a weights file, or an error naming the rule that fetches it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run `snakemake {rule}` on a machine with internet "
            "(compute nodes read weights only from resources/)"
        )
    return path
