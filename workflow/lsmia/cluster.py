"""Job sizes for a cluster scheduler: wall time per attempt, capped by the partitions' limit."""

from __future__ import annotations

import os

#: Environment variable with the longest wall time (minutes) any job may ask for.
MAX_RUNTIME_ENV = "LSMIA_MAX_RUNTIME"
#: Its default: 24 h, within the time limit of most clusters' GPU partitions.
DEFAULT_MAX_RUNTIME = 1440


def max_runtime(environ=os.environ) -> int:
    """The cap on every job's wall time, from ``LSMIA_MAX_RUNTIME`` (minutes)."""
    value = environ.get(MAX_RUNTIME_ENV, str(DEFAULT_MAX_RUNTIME))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{MAX_RUNTIME_ENV}={value!r}: expected a positive number of minutes")
    return int(value)


def wall_time(minutes: int, attempt: int, resumable: bool, maximum: int) -> int:
    """Minutes an ``attempt`` (1, 2, ...) asks for: a job that resumes from its checkpoint asks for
    ``minutes`` every time (each retry continues the work); another for ``minutes × attempt``;
    neither more than ``maximum``."""
    return min(minutes if resumable else minutes * attempt, maximum)
