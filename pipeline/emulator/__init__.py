"""A local Cloudglue-compatible HTTP server with a deterministic synthetic dataset.

The names are imported on first use, so that the CLI can show ``faults.FAULT_HELP`` without
loading the dataset and the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.emulator.dataset import Dataset
    from pipeline.emulator.faults import FaultConfig
    from pipeline.emulator.server import EmulatorServer
    from pipeline.emulator.stats import EmulatorStats

_MODULES = {
    "Dataset": "pipeline.emulator.dataset",
    "FaultConfig": "pipeline.emulator.faults",
    "EmulatorServer": "pipeline.emulator.server",
    "EmulatorStats": "pipeline.emulator.stats",
}

__all__ = ["Dataset", "EmulatorServer", "EmulatorStats", "FaultConfig"]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)
