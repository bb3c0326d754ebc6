"""The six tables built in memory from job dicts, as Arrow tables or pandas frames (tests,
notebooks, small batches); a write streams them in chunks instead (``pipeline.storage``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:  # pandas is imported when a frame is made: build workers never need it
    import pandas as pd

from pipeline.tables.accumulators import make_accumulator
from pipeline.tables.catalog import TABLES, new_schema
from pipeline.tables.rows import JobRows


def _pandas_type(t: pa.DataType) -> Any:
    import pandas as pd

    if pa.types.is_integer(t):
        return pd.Int64Dtype()
    if pa.types.is_boolean(t):
        return pd.BooleanDtype()
    return None


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas with nullable ints and bools (an int column with nulls stays int)."""
    return table.to_pandas(types_mapper=_pandas_type)


def build_tables(
    jobs: Iterable[Mapping[str, Any]], *, fetched_at: dt.datetime | int | None = None
) -> dict[str, pa.Table]:
    """The six tables as Arrow tables, in memory (one chunk per table)."""
    chunks: dict[str, list[pa.Table]] = {t: [] for t in TABLES}
    accs = {
        t: make_accumulator(new_schema(t), chunks[t].append, max_rows=2**62, max_bytes=2**62)
        for t in TABLES
    }
    rows = JobRows(accs, fetched_at)
    for job in jobs:
        rows.add(job)
    out = {}
    for t, acc in accs.items():
        acc.flush()
        out[t] = chunks[t][0] if chunks[t] else acc.empty_table()
    return out


def build_frames(
    jobs: Iterable[Mapping[str, Any]], *, fetched_at: dt.datetime | int | None = None
) -> dict[str, pd.DataFrame]:
    """The six tables as pandas frames, for in-memory use (tests, notebooks, small batches)."""
    return {t: to_pandas(tbl) for t, tbl in build_tables(jobs, fetched_at=fetched_at).items()}
