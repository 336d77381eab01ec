"""Device choice, seeding and mixed precision, the same way in every job."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cpu``/``cuda``/``cuda:N`` are taken as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        from lsmia.cuda_check import require_cuda_if_asked

        require_cuda_if_asked(name, gpu_rule=False)  # raises, naming the cause, if CUDA is unusable
    return device


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator seeded likewise."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


#: ``fp32`` (the authors' precision, no autocast) or ``bf16`` (autocast on CUDA, opt-in)
PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device, precision: str = "fp32"):
    """bf16 autocast on CUDA when ``precision`` is ``bf16``; otherwise (``fp32``, or any precision
    on CPU) a no-op context, so results stay float32 and bit-reproducible on CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: {precision!r} is not one of {list(PRECISIONS)}")
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
