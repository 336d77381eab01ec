"""lsmia.io: atomic outputs get the umask's mode (group-readable), and killed writers' leftovers go."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from lsmia.io import atomic_dir, atomic_path, remove_stale_temporaries, save_json, staging_dir

HOST = socket.gethostname()


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750),
                                                       (0o077, 0o600, 0o700)])
def test_outputs_get_the_modes_the_umask_allows(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    save_json({"a": 1}, tmp_path / "out.json")
    with atomic_dir(tmp_path / "packed") as folder:
        (folder / "x").write_text("x")
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "packed").stat().st_mode & 0o777 == dir_mode


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead, old = _dead_pid(), time.time() - 2 * 86400
    leftovers = {
        f".out.json.{HOST}~{dead}.abc.part": True,  # killed on this host
        f".out.json.{HOST}~{os.getpid()}.abc.part": False,  # a live writer (us)
        f".out.json.node7~{dead}.abc.part": False,  # another host, recent: may be running
        f".out.json.node8~{dead}.old.part": True,  # another host, two days old
        f".out.json.gz.{HOST}~{dead}.abc.part": False,  # another target (its owner cleans it)
    }
    for name in leftovers:
        (tmp_path / name).write_text("partial")
    os.utime(tmp_path / f".out.json.node8~{dead}.old.part", (old, old))
    (tmp_path / f".packed.staging.node7~{dead}.xyz").mkdir()
    with atomic_path(tmp_path / "out.json") as tmp:
        tmp.write_text("{}")
    for name, stale in leftovers.items():
        assert (tmp_path / name).exists() != stale, name
    with staging_dir(tmp_path / "packed") as scratch:  # one writer per target: all are stale
        assert [p.name for p in tmp_path.glob(".packed.staging.*")] == [scratch.name]
    assert not list(tmp_path.glob(".packed.*"))
    assert remove_stale_temporaries(tmp_path / "missing" / "x") == []
