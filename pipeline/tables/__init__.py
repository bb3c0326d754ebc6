"""Flattening complete Cloudglue jobs into keyed pandas frames (pure functions)."""

from pipeline.tables.flatten import rebuild_entities
from pipeline.tables.frames import (
    FIXED_COLUMNS,
    TABLE_DESCRIPTIONS,
    TABLE_NAMES,
    TABLES,
    build_frames,
    build_tables,
)

__all__ = [
    "FIXED_COLUMNS",
    "TABLES",
    "TABLE_DESCRIPTIONS",
    "TABLE_NAMES",
    "build_frames",
    "build_tables",
    "rebuild_entities",
]
