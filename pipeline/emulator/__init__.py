"""A local Cloudglue-compatible HTTP server with a deterministic synthetic dataset."""

from pipeline.emulator.dataset import Dataset
from pipeline.emulator.faults import FaultConfig
from pipeline.emulator.server import EmulatorServer, EmulatorStats

__all__ = ["Dataset", "EmulatorServer", "EmulatorStats", "FaultConfig"]
