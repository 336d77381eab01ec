"""What produced an output: git commit, library versions, threads, seed, host and time."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

_LIBRARIES = ("torch", "torchvision", "timm", "numpy", "torchmetrics", "snakemake", "lsmia")


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the checkout this package lives in, with ``+dirty`` for local changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that decide numerical results."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def provenance(seed: int | None = None, **extra) -> dict:
    """A record to store next to every output (CPU results are bit-reproducible for a given
    number of torch threads, so that is recorded too)."""
    import torch

    record = {
        "git_commit": git_commit(),
        "versions": library_versions(),
        "torch_threads": torch.get_num_threads(),
        "host": platform.node(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if seed is not None:
        record["seed"] = seed
    record.update(extra)
    return record
