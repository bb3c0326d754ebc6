"""What a day's write left in each table's partition (:class:`TableWriteResult`,
:class:`DayWriteResult`), with a preview of its first rows for logs and Dagster metadata."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pandas as pd

from pipeline.storage.layout import is_parquet
from pipeline.storage.store import FileInfo, Store
from pipeline.tables.build import to_pandas

PREVIEW_ROWS = 5
_PREVIEW_CHARS = 200


class TableWriteResult:
    """What one table's partition now holds.

    ``schema`` and ``preview_rows`` of a partition found already built (``built_day``) are read
    from its files on first use: a re-sync that only reports row counts opens no Parquet file.
    ``path`` says where the partition lives (a directory or an ``s3://`` prefix).
    """

    def __init__(
        self,
        table: str,
        rows: int,
        files: int,
        store: Store,
        prefix: str,
        schema: pa.Schema | None = None,
        preview_rows: list[dict[str, Any]] | None = None,
    ) -> None:
        self.table = table
        self.rows = rows
        self.files = files
        self.store = store
        self.prefix = prefix
        self.path = store.describe(prefix)
        self._schema = schema
        self._preview_rows = preview_rows
        # The partition's Parquet files (as ``Store.list_files`` gives them) when this result
        # was made: the ones a write made live, or those found built; None when not known.
        self.live_files: dict[str, FileInfo] | None = None

    def __repr__(self) -> str:
        return f"TableWriteResult({self.table!r}, rows={self.rows}, files={self.files})"

    @property
    def schema(self) -> pa.Schema:
        if self._schema is None:
            self._describe()
        assert self._schema is not None
        return self._schema

    @property
    def preview_rows(self) -> list[dict[str, Any]]:
        if self._preview_rows is None:
            self._describe()
        assert self._preview_rows is not None
        return self._preview_rows

    def _describe(self) -> None:
        """The schema and first rows, read back from the partition's files."""
        fs, root = self.store.parquet_source(self.prefix)
        names = sorted(n for n in self.store.list_files(self.prefix) if is_parquet(n))
        files = [pq.ParquetFile(fs.open_input_file(f"{root}/{n}")) for n in names]
        self._schema = pa.unify_schemas([f.schema_arrow for f in files])
        preview: list[dict[str, Any]] = []
        for f in files:
            if len(preview) >= PREVIEW_ROWS:
                break
            head = f.iter_batches(batch_size=PREVIEW_ROWS - len(preview))
            batch = next(head, None)
            if batch is not None:
                preview += [short_values(row) for row in preview_rows(batch)]
        self._preview_rows = preview

    @property
    def preview(self) -> pd.DataFrame:
        """The first rows (long strings cut) as pandas, made on demand: reporting a day, even
        an unchanged one, never needs pandas (a slow import)."""
        return to_pandas(pa.Table.from_pylist(self.preview_rows, schema=self.schema))

    @property
    def preview_markdown(self) -> str:
        """The preview as a Markdown table (JSON-ish cells, long values cut)."""
        cols = self.schema.names
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for row in self.preview_rows:
            cells = [_md_cell(row.get(c)) for c in cols]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


@dataclass(frozen=True)
class DayWriteResult:
    """The outcome of :func:`write_day`, for logs and Dagster metadata."""

    day: dt.date
    jobs: int
    tables: dict[str, TableWriteResult]
    # What the partitions were built from, when the caller knows: its listing and landed files.
    source: tuple[Any, dict[str, FileInfo]] | None = None
    # False for partitions found already built (``built_day``), True for a write.
    written: bool = True

    @property
    def rows(self) -> dict[str, int]:
        return {t: r.rows for t, r in self.tables.items()}

    @property
    def paths(self) -> dict[str, str]:
        return {t: r.path for t, r in self.tables.items()}


def short_values(row: dict[str, Any]) -> dict[str, Any]:
    """The row with long strings cut, as previews show it."""
    return {k: _short(v) for k, v in row.items()}


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _PREVIEW_CHARS:
        return value[:_PREVIEW_CHARS] + "…"
    return value


_UTC_MS = pa.timestamp("ms", tz="UTC")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def preview_rows(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """``table.to_pylist()``, except that UTC timestamps are made here: pyarrow imports pandas (a
    slow import) to convert them, and reporting an unchanged day needs nothing else from it."""
    columns = {}
    for column_field, column in zip(table.schema, table.columns, strict=True):
        if column_field.type == _UTC_MS:
            ms = column.cast(pa.int64()).to_pylist()
            columns[column_field.name] = [
                None if v is None else _EPOCH + dt.timedelta(milliseconds=v) for v in ms
            ]
        else:
            columns[column_field.name] = column.to_pylist()
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _md_cell(value: Any) -> str:
    text = "" if value is None or value != value else str(value)
    text = text if len(text) <= 60 else text[:60] + "…"
    return text.replace("|", "\\|").replace("\n", " ")
