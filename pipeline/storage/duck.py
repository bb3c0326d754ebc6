"""A table's Parquet as a DuckDB view, wherever the data dir is.

Either way a view has every column of the table's ``_schema.json`` (every column the table ever
had, typed by its kind), whatever subset of days its files hold, so a saved query keeps working
on any days. On a local disk DuckDB reads the files itself (``read_parquet`` with
``union_by_name``, put under an empty row of every column). In a bucket (DuckDB's httpfs
extension matching our DuckDB does not install offline) the files go through the store's pyarrow
filesystem: a few given files (the checks') are read whole; a whole table is scanned lazily as a
pyarrow dataset typed by the schema.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pipeline.storage.layout import PARTITION_KEY, parse_partition_name, table_prefix
from pipeline.storage.read import parquet_files, read_files
from pipeline.storage.schema_store import load_schema
from pipeline.storage.store import Store
from pipeline.tables.schema import DUCKDB_TYPES

if TYPE_CHECKING:
    import duckdb


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _no_rows_of_every_column(store: Store, table: str) -> str:
    """A ``SELECT`` of no rows with every column of the table's schema and ``created_date``,
    typed: the first side of a ``UNION ALL BY NAME`` fixes the view's columns and order."""
    schema = load_schema(store, table)
    columns = [
        f"NULL::{DUCKDB_TYPES[schema.columns[name].kind]} AS {_sql_name(name)}"
        for name in schema.data_columns()
    ]
    columns.append(f"NULL::DATE AS {PARTITION_KEY}")
    return f"(SELECT {', '.join(columns)} LIMIT 0)"


def _paths(store: Store, table: str, days: Iterable[dt.date] | None) -> list[str]:
    return [path for _, path in parquet_files(store, table, days)]


def local_view_sql(
    store: Store, table: str, view: str, paths: list[str] | None = None, *, kind: str
) -> str | None:
    """The ``CREATE`` statement of a local table's view (for the duckdb shell too) over
    ``paths``, else every partition (a glob, so partitions written later show up), with every
    column of the schema; None when there is no file."""
    if paths is None:
        if not _paths(store, table, None):
            return None
        _, root = store.parquet_source(table_prefix(table))
        source = _sql_text(f"{root}/**/*.parquet")
    elif not paths:
        return None
    else:
        source = "[" + ", ".join(_sql_text(p) for p in paths) + "]"
    return (
        f"CREATE OR REPLACE {kind} {view} AS {_no_rows_of_every_column(store, table)} "
        f"UNION ALL BY NAME SELECT * FROM read_parquet({source}, hive_partitioning=true, "
        "union_by_name=true);"
    )


def create_view(
    con: duckdb.DuckDBPyConnection,
    view: str,
    store: Store,
    table: str,
    *,
    paths: list[str] | None = None,
    temporary: bool = True,
) -> bool:
    """Bind ``view`` to the table's Parquet files ``paths`` (in ``store.parquet_source``'s
    filesystem; default: every partition's) with its hive ``created_date`` (DATE); False, and no
    view, when there is no file."""
    kind = "TEMP VIEW" if temporary else "VIEW"
    if store.is_local:
        sql = local_view_sql(store, table, view, paths, kind=kind)
        if sql is not None:
            con.execute(sql)
        return sql is not None
    if paths is not None:  # a few partitions (the checks'): read them whole
        if not paths:
            return False
        files = [(parse_partition_name(p.rsplit("/", 2)[-2]), p) for p in paths]
        con.register(f"_{view}_arrow", read_files(store, table, files))
        con.execute(f"CREATE OR REPLACE {kind} {view} AS SELECT * FROM _{view}_arrow")
        return True
    import pyarrow as pa
    import pyarrow.dataset as ds

    files = _paths(store, table, None)
    if not files:
        return False
    fs, root = store.parquet_source(table_prefix(table))
    key = pa.schema([(PARTITION_KEY, pa.date32())])
    schema = load_schema(store, table)
    columns = schema.arrow_schema(list(schema.columns))
    dataset = ds.dataset(
        files,
        schema=pa.unify_schemas([columns, key]),
        filesystem=fs,
        format="parquet",
        partitioning=ds.partitioning(key, flavor="hive"),
        partition_base_dir=root,
    )
    con.register(f"_{view}_arrow", dataset)
    con.execute(f"CREATE OR REPLACE {kind} {view} AS SELECT * FROM _{view}_arrow")
    return True
