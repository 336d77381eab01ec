"""Atomic file output (a killed job never leaves a file that a later run would trust) and hashing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


STALE_AFTER_SECONDS = 24 * 3600  # temporaries of another host are stale after a day


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the mode a plain ``open`` would give (0666 less the umask), not ``mkstemp``'s
    0600, so a group sharing the results folder can read it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            tmp_path.chmod(0o666 & ~current_umask())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; it replaces ``path`` only if the block succeeds
    (mode 0777 less the umask, like ``mkdir``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".part", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o777 & ~current_umask())
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def staging_dir(target: str | os.PathLike) -> Iterator[Path]:
    """A scratch folder beside ``target`` (``.<name>.staging.<host>~<pid>.*``), removed at exit.

    Only one job makes ``target`` at a time (Snakemake's rule), so every staging folder of it
    found on entry was left by a killed job and is removed first."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target, exclusive=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target, "staging."), dir=target.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temporaries(target: str | os.PathLike, exclusive: bool = False) -> list[Path]:
    """Remove what killed writers of ``target`` left beside it; return what was removed.

    Temporaries are named after their writer (``<host>~<pid>``): stale when that process is gone
    from this host, or (another host) older than ``STALE_AFTER_SECONDS``; with ``exclusive`` (the
    caller is the only writer of ``target``) every one is stale."""
    target = Path(target)
    owner = re.compile(rf"^\.{re.escape(target.name)}\.(?:staging\.)?(?P<host>[^~/]+)~(?P<pid>\d+)\.")
    removed = []
    try:
        siblings = list(os.scandir(target.parent))
    except FileNotFoundError:
        return removed
    for entry in siblings:
        match = owner.match(entry.name)
        if match and (exclusive or _writer_gone(match["host"], int(match["pid"]), entry)):
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _writer_gone(host: str, pid: int, entry: os.DirEntry) -> bool:
    if host != socket.gethostname():
        try:
            return time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_SECONDS
        except FileNotFoundError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def _temporary_prefix(target: Path, kind: str = "") -> str:
    return f".{target.name}.{kind}{socket.gethostname()}~{os.getpid()}."


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (threads may be running)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def load_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, naming the file if it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file, so readers never see a partial file."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
