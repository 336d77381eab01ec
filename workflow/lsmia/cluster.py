"""Job sizes for a cluster scheduler: threads per kind of job, wall time per attempt (capped by
the partitions' limit), and which rules ask for a GPU."""

from __future__ import annotations

import os
import re
from pathlib import Path

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


#: The workflow's rule files, whose ``resources:`` say which rules ask for a GPU.
RULES_DIR = Path(__file__).resolve().parents[1] / "rules"


def job_threads(config: dict, kind: str) -> int:
    """A rule's ``threads:``: the config's ``threads.<kind>`` (config/README.md), 1 if unset."""
    return int((config.get("threads") or {}).get(kind, 1))


def gpu_rules(rules_dir: Path = RULES_DIR) -> list[str]:
    """Names of the rules that declare ``gpu=1`` in their resources (a ``use rule A as B`` copy
    of such a rule too, unless it declares resources of its own), read from the ``*.smk`` files:
    the Slurm profile sends these to the GPU partition."""
    gpu, copies = [], []
    for path in sorted(Path(rules_dir).glob("*.smk")):
        for block in re.split(r"^(?=(?:use )?rule )", path.read_text(), flags=re.MULTILINE):
            copy = re.match(r"use rule (\w+) as (\w+)", block)
            if copy and not re.search(r"^\s+resources:", block, flags=re.MULTILINE):
                copies.append((copy[1], copy[2]))
            rule = re.match(r"rule (\w+):", block)
            if rule and re.search(r"^\s+gpu=1,?\s*$", block, flags=re.MULTILINE):
                gpu.append(rule[1])
    return gpu + [name for source, name in copies if source in gpu]
