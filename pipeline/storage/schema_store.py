"""``<data_dir>/tables/<table>/_schema.json``: the persisted, append-only column registry.

Registration reloads the stored schema under a per-table fcntl lock, adds the new columns on
top of it and writes it back atomically, so concurrent writers of different days agree on every
column's name and kind (the first to register wins; the others adopt it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.storage.atomic import atomic_write_bytes, file_lock
from pipeline.storage.layout import schema_lock_path, schema_path, staging_root
from pipeline.tables.frames import Register, new_schema, register_in_memory
from pipeline.tables.schema import TableSchema


def _merge_stored(schema: TableSchema, path: Path) -> None:
    if path.exists():
        schema.merge_dict(json.loads(path.read_bytes()))


def load_schema(data_dir: str | os.PathLike[str], table: str) -> TableSchema:
    """The table's schema: fixed columns plus everything registered so far."""
    schema = new_schema(table)
    _merge_stored(schema, schema_path(data_dir, table))
    return schema


def persistent_register(data_dir: str | os.PathLike[str]) -> Register:
    """A ``register`` callback that persists new columns under the table's schema lock."""

    def register(
        schema: TableSchema,
        paths: list[tuple[str, tuple[str, ...], str]],
        variants: list[tuple[str, str]],
    ) -> None:
        path = schema_path(data_dir, schema.table)
        with file_lock(schema_lock_path(data_dir, schema.table)):
            _merge_stored(schema, path)
            before = len(schema.columns)
            register_in_memory(schema, paths, variants)
            if len(schema.columns) != before or not path.exists():
                data = json.dumps(schema.to_dict(), indent=1, ensure_ascii=False).encode()
                atomic_write_bytes(path, data, staging_root(data_dir))

    return register
