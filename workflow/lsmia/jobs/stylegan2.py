"""Fetch NVlabs' stylegan2-ada-pytorch at a pinned commit and the FFHQ generator pickle."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from lsmia.weights import fetch


def fetch_stylegan2(*, repository: str, commit: str, checkout, pickle_url: str,
                    pickle_sha256: str | None, pickle) -> None:
    """Clone ``repository`` into ``checkout`` at ``commit``, then download the pickle (internet)."""
    clone_at_commit(repository, commit, checkout)
    fetch(pickle_url, pickle, pickle_sha256)


def fetch_stylegan2_rule(spec: dict, checkout, pickle, log_path) -> None:
    """The local rule ``fetch_stylegan2`` (a ``run:`` block, not a ``script:``: Snakemake reruns a
    script rule whose script file is newer than its outputs, and would delete an existing checkout
    and pickle first, e.g. after a ``git pull``)."""
    from lsmia.jobkit import logged_run

    with logged_run(log_path):
        fetch_stylegan2(repository=spec["repository"], commit=spec["commit"], checkout=checkout,
                        pickle_url=spec["pickle_url"], pickle_sha256=spec.get("pickle_sha256"),
                        pickle=pickle)


def clone_at_commit(repository: str, commit: str, checkout) -> None:
    """``git clone`` + ``git checkout commit``, atomically (``checkout`` appears only when done).

    A commit on no branch or tag of the clone is asked for by hash (``git fetch origin <commit>``;
    GitHub serves commits that some ref of the repository reaches). A commit found nowhere is a
    ``RuntimeError`` naming it and the repository.
    """
    checkout = Path(checkout)
    partial = checkout.with_name(checkout.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    _git("clone", "--quiet", repository, str(partial))
    if not _has_commit(partial, commit):
        subprocess.run(["git", "-C", str(partial), "fetch", "--quiet", "origin", commit],
                       capture_output=True, text=True, check=False)
    if not _has_commit(partial, commit):
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(
            f"stylegan2.commit {commit} is not a commit of {repository}: looked on every branch "
            f"and tag of a fresh clone, then asked the server for it by hash (git fetch origin "
            f"{commit}). Set stylegan2.commit to a commit of that repository (the head of NVlabs' "
            "main is d72cc7d041b42ec8e806021a205ed9349f87c6a4), or stylegan2.repository to the one "
            "that has it."
        )
    _git("-C", str(partial), "checkout", "--quiet", commit)
    shutil.rmtree(checkout, ignore_errors=True)
    partial.rename(checkout)


def _has_commit(repo: Path, commit: str) -> bool:
    found = subprocess.run(["git", "-C", str(repo), "cat-file", "-e", f"{commit}^{{commit}}"],
                           capture_output=True, check=False)
    return found.returncode == 0


def _git(*args: str) -> None:
    result = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({result.returncode}): "
                           f"{result.stderr.strip()}")
