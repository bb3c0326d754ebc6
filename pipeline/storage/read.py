"""``read_table``: every column of every partition of a table, as one pandas frame.

pyarrow's dataset reader takes the schema of one file; partitions written for different prompts
have different columns, so each file is conformed to the table's ``_schema.json`` instead: every
column the table ever had, in the same order and types whatever subset of days is read (a saved
query keeps working on one quiet day); columns a file lacks are null.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pandas as pd

from pipeline.storage.layout import (
    PARTITION_KEY,
    as_date,
    is_parquet,
    parse_partition_name,
    partition_name,
    partition_prefix,
    table_prefix,
)
from pipeline.storage.layout import TABLES as TABLES_ROOT
from pipeline.storage.schema_store import load_schema
from pipeline.storage.store import Store, open_store
from pipeline.tables.build import to_pandas
from pipeline.tables.catalog import TABLES


def _conform(table: pa.Table, target: pa.Schema) -> pa.Table:
    arrays, fields = [], []
    for f in target:
        if f.name in table.column_names:
            col = table.column(f.name)
            arrays.append(col if col.type == f.type else col.cast(f.type))
        else:
            arrays.append(pa.nulls(table.num_rows, f.type))
        fields.append(f)
    for f in table.schema:  # columns the schema file does not know (kept, never dropped)
        if f.name not in target.names:
            arrays.append(table.column(f.name))
            fields.append(f)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def partition_days(data_dir: str | os.PathLike[str] | Store, table: str) -> list[dt.date]:
    """The days the table has a partition for, oldest first."""
    names = open_store(data_dir).list_dirs(table_prefix(table))
    return sorted(day for day in map(parse_partition_name, names) if day is not None)


def parquet_files(
    store: Store, table: str, days: Iterable[dt.date] | None = None
) -> list[tuple[dt.date, str]]:
    """``(day, path)`` of the table's Parquet files (paths in ``store.parquet_source``'s
    filesystem), of every partition or of ``days``', oldest first."""
    _, root = store.parquet_source(table_prefix(table))
    chosen = partition_days(store, table) if days is None else sorted(days)
    return [
        (day, f"{root}/{partition_name(day)}/{name}")
        for day in chosen
        for name in sorted(store.list_files(partition_prefix(table, day)))
        if is_parquet(name)
    ]


# A bucket partition is one object replaced whole: a read that opened it (its size) before a
# rewrite and fetched its bytes after fails (no footer where the old size put it). Read again.
_READ_ATTEMPTS = 4


def _read_parquet(fs: pa.fs.FileSystem, path: str) -> pa.Table:
    # ParquetFile, not read_table: reading one file needs no pyarrow.dataset (a slow import).
    for attempt in range(_READ_ATTEMPTS):
        try:
            with fs.open_input_file(path) as source:
                return pq.ParquetFile(source).read()
        except (OSError, pa.ArrowInvalid):
            if attempt == _READ_ATTEMPTS - 1 or isinstance(fs, pa.fs.LocalFileSystem):
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def read_arrow(
    name: str,
    data_dir: str | os.PathLike[str] | Store,
    days: Iterable[dt.date | str] | None = None,
) -> pa.Table:
    """The table as Arrow, with a ``created_date`` (date32) column, oldest partition first.
    FileNotFoundError when the data dir holds no table at all (a mistyped path is no empty
    table)."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; one of {', '.join(TABLES)}")
    store = open_store(data_dir)
    files = parquet_files(store, name, None if days is None else {as_date(d) for d in days})
    if not files and not store.list_dirs(TABLES_ROOT):
        raise FileNotFoundError(f"no tables under {store.describe()}: nothing was synced there")
    return read_files(store, name, files)


def read_files(store: Store, name: str, files: list[tuple[dt.date, str]]) -> pa.Table:
    """``(day, path)`` files of table ``name`` (as :func:`parquet_files` gives them) as one
    Arrow table: :func:`read_arrow` of just those."""
    schema = load_schema(store, name)
    fs, _ = store.parquet_source(table_prefix(name))
    tables = [(day, _read_parquet(fs, path)) for day, path in files]
    target = schema.arrow_schema(schema.data_columns())
    out = []
    for day, t in tables:
        t = _conform(t.drop_columns([c for c in t.column_names if c == PARTITION_KEY]), target)
        out.append(t.append_column(PARTITION_KEY, pa.array([day] * t.num_rows, pa.date32())))
    if not out:
        empty = target.empty_table()
        return empty.append_column(PARTITION_KEY, pa.array([], pa.date32()))
    return pa.concat_tables(out, promote_options="permissive")


def read_table(
    name: str, data_dir: str | os.PathLike[str] | Store, days: Iterable[dt.date | str] | None = None
) -> pd.DataFrame:
    """Every column of every partition (or of ``days``) of table ``name``, with
    ``created_date``; ints and bools are nullable pandas dtypes, timestamps UTC."""
    return to_pandas(read_arrow(name, data_dir, days))
