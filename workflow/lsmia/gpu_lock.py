"""One GPU per job on a multi-GPU workstation, where no scheduler assigns devices.

Snakemake's ``--resources gpu=N`` only limits how many GPU jobs run at once; it does not say which
device each job should use. :func:`acquire_gpu` takes an exclusive lock file per device
(``fcntl.flock``; the kernel drops it when the process dies) and pins the process to the locked
device through ``CUDA_VISIBLE_DEVICES``. Enter it before anything initialises CUDA.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

DEFAULT_LOCK_DIR = Path("/tmp/lsmia-gpu-locks")
LOCK_DIR_VARIABLE = "LSMIA_GPU_LOCK_DIR"
POLL_SECONDS = 0.5


def visible_gpus() -> list[str]:
    """UUIDs of the GPUs that ``nvidia-smi`` lists (no CUDA initialisation); empty without one."""
    if shutil.which("nvidia-smi") is None:
        return []
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def assigned_by_scheduler() -> bool:
    """True when the devices are already chosen: ``CUDA_VISIBLE_DEVICES`` set, or inside Slurm."""
    return "CUDA_VISIBLE_DEVICES" in os.environ or "SLURM_JOB_ID" in os.environ


def lock_directory(lock_dir: str | os.PathLike | None = None) -> Path:
    """``lock_dir``, else ``$LSMIA_GPU_LOCK_DIR``, else ``/tmp/lsmia-gpu-locks``; created if missing."""
    path = Path(lock_dir or os.environ.get(LOCK_DIR_VARIABLE) or DEFAULT_LOCK_DIR)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):
            path.chmod(0o1777)  # shared by every user of the workstation, like /tmp
    return path


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on ``path``, or None if someone holds it."""
    fd = _open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _open_lock_file(path: Path) -> int:
    """Open ``path`` read-only, creating it (mode 0666, whatever the umask) only if missing.

    An existing file is opened without ``O_CREAT``: with ``fs.protected_regular`` (the systemd
    default) ``O_CREAT`` on another user's file in a sticky world-writable folder fails even
    when its mode allows reading."""
    while True:
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            pass
        except PermissionError as err:
            raise PermissionError(
                f"{path}: cannot open this GPU lock file ({err.strerror}); it belongs to "
                f"uid {path.stat().st_uid} with mode {path.stat().st_mode & 0o777:o}. Ask its "
                f"owner to remove it or make it readable (chmod 666), or set {LOCK_DIR_VARIABLE}"
            ) from err
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue  # another job created it in between: open it as an existing file
        os.fchmod(fd, 0o666)  # the umask (077 for some users) would lock everyone else out
        return fd


def _lock_first_free(devices: Sequence[str], lock_files: Sequence[Path]) -> tuple[str, int] | None:
    """The first device whose lock file could be taken, with the descriptor holding the lock."""
    for device, path in zip(devices, lock_files):
        fd = _try_lock(path)
        if fd is not None:
            return device, fd
    return None


@contextlib.contextmanager
def acquire_gpu(
    lock_dir: str | os.PathLike | None = None,
    devices: Sequence[str] | None = None,
    timeout: float | None = None,
) -> Iterator[str | None]:
    """Lock one free GPU and set ``CUDA_VISIBLE_DEVICES`` to it for the block; yield its id.

    Does nothing (yields None) when a scheduler already assigned devices (see
    :func:`assigned_by_scheduler`) or fewer than two GPUs are visible. ``devices`` replaces the
    detected list (UUIDs from :func:`visible_gpus`; tests pass fake ids). Waits for a device to
    become free, at most ``timeout`` seconds when given, then raises ``TimeoutError``.
    """
    if assigned_by_scheduler():
        yield None
        return
    candidates = list(visible_gpus() if devices is None else devices)
    if len(candidates) < 2:
        yield None
        return
    directory = lock_directory(lock_dir)
    # Lock files are named by position; the ids (UUIDs) may contain characters unfit for names.
    lock_files = [directory / f"gpu{index}.lock" for index in range(len(candidates))]
    deadline = None if timeout is None else time.monotonic() + timeout
    while (locked := _lock_first_free(candidates, lock_files)) is None:
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(
                f"all {len(candidates)} GPUs stayed locked for {timeout} s "
                f"(lock files in {directory}); is another job holding them?"
            )
        time.sleep(POLL_SECONDS)
    device, fd = locked
    os.environ["CUDA_VISIBLE_DEVICES"] = device
    try:
        yield device
    finally:
        del os.environ["CUDA_VISIBLE_DEVICES"]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
