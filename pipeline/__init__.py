"""cloudglue-pipeline: Cloudglue extraction results as partitioned Parquet, via Dagster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.storage import read_table as read_table

__all__ = ["read_table"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import pipeline` stays cheap for the CLI and the emulator.
    if name == "read_table":
        from pipeline.storage import read_table

        return read_table
    raise AttributeError(name)
