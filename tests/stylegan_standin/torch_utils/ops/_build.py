"""Simulated custom-op build shared by the stand-in ops."""

import os
import warnings


def try_build(name):
    """A fake compiled plugin when STANDIN_CUSTOM_OPS=built, else None with the fallback warning."""
    if os.environ.get("STANDIN_CUSTOM_OPS") == "built":
        return object()
    warnings.warn(
        f"Failed to build CUDA kernels for {name}. Falling back to slow reference implementation."
    )
    return None
