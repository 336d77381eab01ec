"""What every Snakemake script does around its one library call: log file, threads, exit codes."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from typing import Iterator

from lsmia.cuda_check import require_cuda_if_asked
from lsmia.gpu_lock import acquire_gpu
from lsmia.runtime import set_threads

#: Exit status of a job that stopped on SIGTERM after writing its checkpoint (EX_TEMPFAIL):
#: Snakemake marks it failed, and its retry resumes from the checkpoint.
PREEMPTED_EXIT = 75


@contextlib.contextmanager
def logged(snakemake) -> Iterator[logging.Logger]:
    """Send stdout, stderr and logging to the rule's log; use the rule's threads; a GPU rule
    (``resources: gpu``) takes a free GPU of its own on a multi-GPU workstation, and a job that
    asked for a GPU it cannot use stops before any work (``lsmia.cuda_check``).

    A ``Preempted`` exception (SIGTERM after a checkpoint) ends the job with ``PREEMPTED_EXIT``.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    stream = open(log_path, "a", buffering=1) if log_path else sys.stderr
    logger = logging.getLogger("lsmia")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    set_threads(snakemake.threads)
    gpu_rule = bool(getattr(snakemake.resources, "gpu", 0))
    gpu = acquire_gpu() if gpu_rule else contextlib.nullcontext()
    try:
        with gpu, contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            try:
                require_cuda_if_asked(getattr(snakemake.params, "device", None), gpu_rule)
                yield logger
            except BaseException as err:  # noqa: BLE001 - logged, then re-raised or mapped
                if type(err).__name__ == "Preempted":
                    logger.warning("preempted: %s; checkpoint written, exiting %d", err, PREEMPTED_EXIT)
                    stream.flush()
                    sys.exit(PREEMPTED_EXIT)
                traceback.print_exc(file=stream)
                raise
    finally:
        logger.removeHandler(handler)
        if stream is not sys.stderr:
            stream.close()
