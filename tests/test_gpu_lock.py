"""acquire_gpu: one device per process on a multi-GPU workstation, nothing under a scheduler."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from lsmia import gpu_lock
from lsmia.gpu_lock import LOCK_DIR_VARIABLE, acquire_gpu, lock_directory

FAKE_GPUS = ["GPU-aaaa", "GPU-bbbb"]

# A second process that takes a GPU, reports it, and holds it until its stdin closes.
HOLDER = textwrap.dedent(
    """
    import os, sys
    from lsmia.gpu_lock import acquire_gpu
    with acquire_gpu(sys.argv[1], devices=sys.argv[2].split(","), timeout=float(sys.argv[3])) as gpu:
        print(gpu, os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
        sys.stdin.read()
    """
)


@pytest.fixture(autouse=True)
def no_scheduler(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv(LOCK_DIR_VARIABLE, raising=False)


def start_holder(lock_dir: Path, timeout: float = 10.0) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir), ",".join(FAKE_GPUS), str(timeout)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def stop(holder: subprocess.Popen) -> None:
    holder.kill()
    holder.wait()
    for stream in (holder.stdin, holder.stdout, holder.stderr):
        stream.close()


def test_sets_and_restores_cuda_visible_devices(tmp_path):
    with acquire_gpu(tmp_path, devices=FAKE_GPUS) as gpu:
        assert gpu == "GPU-aaaa"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-aaaa"
        assert (tmp_path / "gpu0.lock").exists()
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    with acquire_gpu(tmp_path, devices=FAKE_GPUS) as gpu:
        assert gpu == "GPU-aaaa", "the lock must be released on exit"


def test_nested_acquisitions_get_different_devices(tmp_path):
    with acquire_gpu(tmp_path, devices=FAKE_GPUS) as first:
        saved = os.environ.pop("CUDA_VISIBLE_DEVICES")
        with acquire_gpu(tmp_path, devices=FAKE_GPUS) as second:
            assert {first, second} == set(FAKE_GPUS)
        os.environ["CUDA_VISIBLE_DEVICES"] = saved


@pytest.mark.parametrize(
    "env",
    [
        {"CUDA_VISIBLE_DEVICES": "3"},
        {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "0"},
        {"SLURM_JOB_ID": "42"},
    ],
)
def test_does_nothing_when_a_scheduler_assigned_devices(tmp_path, monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with acquire_gpu(tmp_path, devices=FAKE_GPUS) as gpu:
        assert gpu is None
        assert os.environ.get("CUDA_VISIBLE_DEVICES") == env.get("CUDA_VISIBLE_DEVICES")
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == env.get("CUDA_VISIBLE_DEVICES")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("devices", [[], ["GPU-only"]])
def test_does_nothing_with_fewer_than_two_gpus(tmp_path, devices):
    with acquire_gpu(tmp_path, devices=devices) as gpu:
        assert gpu is None
        assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_two_processes_contend_for_two_gpus(tmp_path):
    holders = [start_holder(tmp_path), start_holder(tmp_path)]
    try:
        reports = [holder.stdout.readline().split() for holder in holders]
        assert sorted(gpu for gpu, _ in reports) == FAKE_GPUS
        assert all(gpu == visible for gpu, visible in reports)

        with (
            pytest.raises(TimeoutError, match="2 GPUs stayed locked"),
            acquire_gpu(tmp_path, devices=FAKE_GPUS, timeout=0.2),
        ):
            pass

        # A lock dies with its process, even one killed without cleaning up.
        freed = dict(zip((gpu for gpu, _ in reports), holders))["GPU-bbbb"]
        stop(freed)
        with acquire_gpu(tmp_path, devices=FAKE_GPUS, timeout=5) as gpu:
            assert gpu == "GPU-bbbb"
    finally:
        for holder in holders:
            stop(holder)


def test_waits_for_a_device_to_be_freed(tmp_path):
    holders = [start_holder(tmp_path), start_holder(tmp_path)]
    try:
        for holder in holders:
            holder.stdout.readline()
        waiter = start_holder(tmp_path, timeout=20)
        time.sleep(0.7)
        assert waiter.poll() is None, "the third process must wait while both GPUs are held"
        holders[0].stdin.close()
        holders[0].wait(timeout=10)
        gpu, visible = waiter.stdout.readline().split()
        assert gpu == visible and gpu in FAKE_GPUS
        stop(waiter)
    finally:
        for holder in holders:
            stop(holder)


def test_lock_directory_comes_from_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(LOCK_DIR_VARIABLE, str(tmp_path / "from-env"))
    assert lock_directory(tmp_path / "explicit") == tmp_path / "explicit"
    assert lock_directory() == tmp_path / "from-env"
    assert (tmp_path / "from-env").is_dir()


def test_lock_files_are_created_readable_by_every_user_despite_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        with acquire_gpu(tmp_path, devices=["GPU-a", "GPU-b"], timeout=5):
            pass
    finally:
        os.umask(previous)
    assert (tmp_path / "gpu0.lock").stat().st_mode & 0o777 == 0o666


def _protected_regular(monkeypatch):
    """Simulate fs.protected_regular: O_CREAT on an existing (another user's) file fails."""
    real_open = os.open

    def open_like_the_kernel(path, flags, mode=0o777):
        if flags & os.O_CREAT and not flags & os.O_EXCL and os.path.exists(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(gpu_lock.os, "open", open_like_the_kernel)


def test_existing_lock_files_open_under_protected_regular(tmp_path, monkeypatch):
    for index in range(2):
        (tmp_path / f"gpu{index}.lock").touch(mode=0o644)  # made by another user's job
    _protected_regular(monkeypatch)
    with acquire_gpu(tmp_path, devices=["GPU-a", "GPU-b"], timeout=5) as device:
        assert device == "GPU-a"


def test_unreadable_lock_file_is_named_with_its_owner(tmp_path, monkeypatch):
    (tmp_path / "gpu0.lock").touch()

    def refuse(path, flags, mode=0o777):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(gpu_lock.os, "open", refuse)
    with pytest.raises(PermissionError, match=r"gpu0\.lock: cannot open this GPU lock file .* uid"):
        with acquire_gpu(tmp_path, devices=["GPU-a", "GPU-b"], timeout=5):
            pass
