"""``tables/<table>/_schema.json``: the persisted, append-only column registry.

Registration is a read-modify-write of the stored schema (``Store.update``: under a lock on a
local disk, conditional writes in a bucket): new columns are added on top of what is stored, so
concurrent writers of different days agree on every column's name and kind (the first to
register wins; the others adopt it). A fixed column added to a table since its schema file was
written (``entity_values.value_integer``) is added to the file by the next write of any day.
"""

from __future__ import annotations

import contextlib
import json
import os

from pipeline.storage.layout import schema_key
from pipeline.storage.store import Store, open_store
from pipeline.tables.accumulators import Register, register_in_memory
from pipeline.tables.catalog import new_schema
from pipeline.tables.schema import TableSchema


def load_schema(data_dir: str | os.PathLike[str] | Store, table: str) -> TableSchema:
    """The table's schema: fixed columns plus everything registered so far."""
    schema = new_schema(table)
    with contextlib.suppress(FileNotFoundError):
        schema.merge_dict(json.loads(open_store(data_dir).read_bytes(schema_key(table))))
    return schema


# In a bucket, where each read is a request: a writing process's schemas by data dir and table,
# reused from one day to the next, and the tables whose schema file it knows is stored. Safe
# because every registration merges the stored schema first (see below), so a column another
# process registered meanwhile is adopted before anything is added.
_writer_schemas: dict[tuple[str, str], TableSchema] = {}
_stored: set[tuple[str, str]] = set()


def writer_schema(data_dir: str | os.PathLike[str] | Store, table: str) -> TableSchema:
    """The schema a writer starts from (kept current by its own registrations)."""
    store = open_store(data_dir)
    if store.is_local:
        return load_schema(store, table)
    key = (store.url, table)
    if key not in _writer_schemas:
        _writer_schemas[key] = load_schema(store, table)
    return _writer_schemas[key]


def ensure_stored(store: Store, schema: TableSchema, register: Register) -> None:
    """Store the schema file of a table that has none yet."""
    key = (store.url, schema.table)
    if key not in _stored:
        register(schema, [], [])
        if not store.is_local:
            _stored.add(key)


def _names(stored: dict) -> set[str]:
    return {c["name"] for c in stored.get("columns", [])}


def persistent_register(data_dir: str | os.PathLike[str] | Store) -> Register:
    """A ``register`` callback that persists new columns (see the module docstring)."""
    store = open_store(data_dir)

    def register(
        schema: TableSchema,
        paths: list[tuple[str, tuple[str, ...], str]],
        variants: list[tuple[str, str]],
    ) -> None:
        agreed: list[TableSchema] = []

        def change(stored: bytes | None) -> bytes | None:
            # A fresh copy per attempt: a bucket retries on a concurrent write, and the stored
            # columns must win over ours, which a half-registered schema would shadow.
            trial = new_schema(schema.table)
            trial.merge_dict(schema.to_dict())
            if stored is not None:
                trial.merge_dict(json.loads(stored))
            register_in_memory(trial, paths, variants)
            agreed[:] = [trial]
            if stored is not None and _names(json.loads(stored)) == set(trial.columns):
                return None
            return json.dumps(trial.to_dict(), indent=1, ensure_ascii=False).encode()

        store.update(schema_key(schema.table), change)
        schema.merge_dict(agreed[0].to_dict())

    return register
