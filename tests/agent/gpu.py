"""Whether this machine has a GPU that torch can use, as the agent's job processes will see it."""

from __future__ import annotations

import functools
import importlib.util


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


@functools.cache
def gpu_present() -> bool:
    if not torch_installed():
        return False
    import torch  # type: ignore[import-not-found]

    return bool(torch.cuda.is_available() or torch.backends.mps.is_available())


@functools.cache
def mps_present() -> bool:
    if not torch_installed():
        return False
    import torch  # type: ignore[import-not-found]

    return bool(torch.backends.mps.is_available())
