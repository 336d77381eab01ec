"""What a resumable job shares: the SIGTERM flag, the preemption exception and its exit code, and
a fingerprinted state file written atomically.

A job that can resume (training, the attack's optimisation) runs its loop inside
:func:`sigterm_flag`, checks the flag at safe points, saves its state with :func:`save_state` and,
when the flag is set, raises :class:`Preempted`; ``lsmia.jobkit`` turns that into
``PREEMPTED_EXIT`` and Snakemake's retry resumes from the state (:func:`load_state`), which is
used only if its fingerprint (a digest of everything that decides the result) matches.

torch is imported only when a state is saved or loaded, so table and figure jobs never load it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path
from typing import Iterator

from lsmia.io import torch_save

log = logging.getLogger("lsmia.resumable")

#: Exit status of a job that stopped on SIGTERM after writing its state (EX_TEMPFAIL): Snakemake
#: marks it failed, and its retry resumes from the state.
PREEMPTED_EXIT = 75


class Preempted(RuntimeError):
    """The job stopped on SIGTERM with its state on disk; rerun it to resume."""

    exit_code = PREEMPTED_EXIT


@contextlib.contextmanager
def sigterm_flag(on_signal: str) -> Iterator[threading.Event]:
    """An event that SIGTERM sets (logging ``on_signal``) while the block runs; the previous
    handler comes back afterwards. Only the main thread can catch signals: elsewhere the event is
    never set."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_sigterm(signum, frame):
        log.warning("SIGTERM received: %s", on_signal)
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def hash_tensor(digest, tensor) -> None:
    """Add the bytes of ``tensor``'s values (on CPU, contiguous) to the hashlib ``digest``."""
    import torch

    values = tensor.detach().to("cpu", memory_format=torch.contiguous_format).reshape(-1)
    digest.update(values.view(torch.uint8).numpy())


def save_state(path: str | Path, fingerprint: str, payload: dict, *,
               header: dict | None = None) -> None:
    """Write ``header``, ``fingerprint`` and ``payload`` as one torch file, atomically."""
    torch_save({**(header or {}), "fingerprint": fingerprint, **payload}, path)


def load_state(path: str | Path, fingerprint: str, *, what: str,
               header: dict | None = None) -> dict | None:
    """The state at ``path`` if it was made for ``fingerprint`` (and carries ``header``); ``None``
    (with a warning) if it was made for other inputs, or if there is none.

    Raises ``ValueError`` naming ``path`` and ``what`` if the file cannot be read, or is not a
    mapping with ``header["format"]`` (when given): such a file is not deleted silently."""
    path = Path(path)
    if not path.is_file():
        return None
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: cannot read the {what} ({err}); delete it to start over") \
            from err
    header = header or {}
    if not isinstance(state, dict) or state.get("format") != header.get("format"):
        raise ValueError(f"{path}: not an lsmia {what}; delete it to start over")
    stale = [key for key, value in header.items() if state.get(key) != value]
    if stale or state.get("fingerprint") != fingerprint:
        log.warning("%s: this %s was made for other inputs or settings; starting over", path, what)
        return None
    return state
