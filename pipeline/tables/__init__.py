"""Complete Cloudglue jobs into the six tables, as Arrow or pandas (pure: dicts in, tables out)."""

from pipeline.tables.build import build_frames, build_tables
from pipeline.tables.catalog import FIXED_COLUMNS, TABLE_DESCRIPTIONS, TABLE_NAMES, TABLES
from pipeline.tables.flatten import rebuild_entities

__all__ = [
    "FIXED_COLUMNS",
    "TABLES",
    "TABLE_DESCRIPTIONS",
    "TABLE_NAMES",
    "build_frames",
    "build_tables",
    "rebuild_entities",
]
