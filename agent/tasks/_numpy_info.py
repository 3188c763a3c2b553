"""NumPy build facts reported with every NumPy benchmark."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def numpy_hardware_info() -> dict[str, Any]:
    info: dict[str, Any] = {"numpy_version": np.__version__, "logical_cpus": os.cpu_count()}
    try:
        config = np.show_config(mode="dicts")  # type: ignore[func-returns-value]
        blas = config["Build Dependencies"]["blas"]
        info["blas"] = {"name": blas.get("name"), "version": blas.get("version")}
    except (TypeError, KeyError, AttributeError):
        # Older NumPy prints its config instead of returning it; the BLAS name is then unknown.
        pass
    return info
