"""``read_table``: every column of every partition of a table, as one pandas frame.

pyarrow's dataset reader takes the schema of one file; partitions written for different prompts
have different columns, so each file is conformed to the table's ``_schema.json`` instead (the
same names, order and types run to run). The frame has the fixed columns plus every column present
in any file read; columns a file lacks are null.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pandas as pd

from pipeline.storage.layout import PARTITION_KEY, as_date, partitions
from pipeline.storage.schema_store import load_schema
from pipeline.tables.frames import FIXED_COLUMNS, TABLES, to_pandas


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


def read_arrow(
    name: str, data_dir: str | os.PathLike[str], days: Iterable[dt.date | str] | None = None
) -> pa.Table:
    """The table as Arrow, with a ``created_date`` (date32) column, oldest partition first."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; one of {', '.join(TABLES)}")
    schema = load_schema(data_dir, name)
    wanted = None if days is None else {as_date(d) for d in days}
    files = [
        (day, path)
        for day, directory in partitions(data_dir, name)
        if wanted is None or day in wanted
        for path in sorted(directory.glob("*.parquet"))
    ]
    tables = [(day, pq.read_table(path)) for day, path in files]
    present = {n for _, t in tables for n in t.column_names}
    fixed = {n for n, _ in FIXED_COLUMNS[name]}
    names = schema.ordered(n for n in schema.columns if n in present or n in fixed)
    target = schema.arrow_schema(names)
    out = []
    for day, t in tables:
        t = _conform(t, target)
        out.append(t.append_column(PARTITION_KEY, pa.array([day] * t.num_rows, pa.date32())))
    if not out:
        empty = target.empty_table()
        return empty.append_column(PARTITION_KEY, pa.array([], pa.date32()))
    return pa.concat_tables(out, promote_options="permissive")


def read_table(
    name: str, data_dir: str | os.PathLike[str], days: Iterable[dt.date | str] | None = None
) -> pd.DataFrame:
    """Every column of every partition (or of ``days``) of table ``name``, with
    ``created_date``; ints and bools are nullable pandas dtypes, timestamps UTC."""
    return to_pandas(read_arrow(name, data_dir, days))
