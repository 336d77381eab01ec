"""Fetch NVlabs' stylegan2-ada-pytorch at a pinned commit and the FFHQ generator pickle."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from lsmia.weights import fetch


def fetch_stylegan2(*, repository: str, commit: str, checkout, pickle_url: str,
                    pickle_sha256: str | None, pickle) -> None:
    """Clone ``repository`` into ``checkout`` at ``commit`` (needs git and internet)."""
    checkout = Path(checkout)
    partial = checkout.with_name(checkout.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(["git", "clone", "--quiet", repository, str(partial)], check=True)
    subprocess.run(["git", "-C", str(partial), "checkout", "--quiet", commit], check=True)
    shutil.rmtree(checkout, ignore_errors=True)
    partial.rename(checkout)
    fetch(pickle_url, pickle, pickle_sha256)
