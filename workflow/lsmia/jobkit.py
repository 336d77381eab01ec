"""What every Snakemake script does around its one library call: log file, threads, exit codes."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
import types
from typing import Iterator

from lsmia.gpu_lock import acquire_gpu
from lsmia.resumable import PREEMPTED_EXIT, Preempted


@contextlib.contextmanager
def logged(snakemake) -> Iterator[logging.Logger]:
    """Send stdout, stderr and logging to the rule's log; use the rule's threads; a GPU rule
    (``resources: gpu``) takes a free GPU of its own on a multi-GPU workstation, and a job that
    asked for a GPU it cannot use stops before any work (``lsmia.cuda_check``).

    ``lsmia.resumable.Preempted`` (SIGTERM after a checkpoint) ends the job with exit status
    ``PREEMPTED_EXIT`` (75), for Snakemake's retry to resume it.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    stream = open(log_path, "a", buffering=1) if log_path else sys.stderr
    logger = logging.getLogger("lsmia")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    use_threads(snakemake.threads)
    gpu_rule = bool(getattr(snakemake.resources, "gpu", 0))
    gpu = acquire_gpu() if gpu_rule else contextlib.nullcontext()
    try:
        with gpu, contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            try:
                if gpu_rule:  # torch only here: table and figure jobs never load it
                    from lsmia.cuda_check import require_cuda_if_asked

                    require_cuda_if_asked(snakemake.config["device"], gpu_rule)
                yield logger
            except Preempted as err:
                logger.warning("preempted: %s; checkpoint written, exiting %d", err, PREEMPTED_EXIT)
                stream.flush()
                sys.exit(PREEMPTED_EXIT)
            except BaseException:  # noqa: BLE001 - logged, then re-raised
                traceback.print_exc(file=stream)
                raise
    finally:
        logger.removeHandler(handler)
        if stream is not sys.stderr:
            stream.close()


def use_threads(threads: int | None) -> None:
    """Use the cores Snakemake gave the job (``threads:``), not every core of the node.

    torch is not imported for this (table and figure jobs never load it): a job that imported torch
    already gets ``torch.set_num_threads``; one that imports it later reads ``OMP_NUM_THREADS``.
    """
    if not threads:
        return
    os.environ["OMP_NUM_THREADS"] = str(int(threads))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(threads))


def logged_run(log_path: str):
    """:func:`logged` for a local rule's ``run:`` block (which has no ``snakemake`` object): one
    thread, no GPU, the rule's log."""
    job = types.SimpleNamespace(log=[log_path], threads=1, resources=types.SimpleNamespace(),
                                config={})
    return logged(job)
