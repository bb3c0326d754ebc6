"""Column typing: a table's columns, their kinds, and where values that do not fit go.

A column's kind is fixed when it is first registered and never changes. A value that does not
fit goes to a variant column ``<column>__v_<kind>`` (dlt's convention): an int arriving in a
``text`` column goes to ``<column>__v_bigint``, a string in a ``bigint`` column to
``<column>__v_text``, an object or array to ``<column>__v_json``. Integers beyond int64 are kept
exactly as JSON text (kind ``json``: the digits), so they stay distinguishable from strings.
Ints fit a ``double`` column when they convert exactly (``|v| <= 2**53``). Strings with lone
surrogates (not encodable as UTF-8) go to the ``json`` variant, escaped.

A new column's kind is decided from the first chunk of values that has any: ``double`` when the
values mix ints and floats, otherwise the kind of the first value. All-null columns are not
registered. Names are resolved deterministically: the snake_cased path, or when another path
already holds that name, the name plus a short hash of the path. The schema is append-only and
JSON-serialisable (``<data_dir>/tables/<table>/_schema.json``), so kinds and names stay stable
run to run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.jsonio import to_json
from pipeline.tables.flatten import INT64_MAX, INT64_MIN
from pipeline.tables.naming import column_name, short_hash

KIND_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "json": pa.string(),
    "timestamp": pa.timestamp("ms", tz="UTC"),
}

# The hive partition column every reader adds (storage.layout.PARTITION_KEY): no flattened or
# unknown field takes its name.
PARTITION_COLUMN = "created_date"

# The same kinds in DuckDB's SQL (what DuckDB reads each Arrow type above as).
DUCKDB_TYPES: dict[str, str] = {
    "text": "VARCHAR",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "json": "VARCHAR",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
}

_EXACT_FLOAT_INT = 2**53
_NONE = type(None)


def kind_of(value: Any) -> str:
    """The natural kind of a (non-null) JSON value."""
    t = type(value)
    if t is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "json"
        return "text"
    if t is bool:
        return "bool"
    if t is int:
        return "bigint" if INT64_MIN <= value <= INT64_MAX else "json"
    if t is float:
        return "double"
    return "json"


def fits(kind: str, value: Any) -> bool:
    """Whether a non-null value can be stored in a column of ``kind`` without loss."""
    if kind == "json":
        return True
    t = type(value)
    if kind == "text":
        return t is str and kind_of(value) == "text"
    if kind == "bigint" or kind == "timestamp":
        return t is int and INT64_MIN <= value <= INT64_MAX
    if kind == "double":
        return t is float or (t is int and -_EXACT_FLOAT_INT <= value <= _EXACT_FLOAT_INT)
    if kind == "bool":
        return t is bool
    return False


def propose_kind(values: Iterable[Any]) -> str | None:
    """The kind for a new column from its first values (None when all are null)."""
    first: str | None = None
    numeric = True
    has_double = False
    for v in values:
        if v is None:
            continue
        k = kind_of(v)
        if first is None:
            first = k
        if k == "double":
            has_double = True
        elif k != "bigint":
            numeric = False
    if numeric and has_double:
        return "double"
    return first


def to_arrow(kind: str, values: Sequence[Any]) -> pa.Array:
    """An Arrow array of a column whose non-null values all fit ``kind`` (pyarrow raises when
    one does not: ints beyond int64 or inexact as double, lone surrogates)."""
    if kind == "json":
        return pa.array([None if v is None else to_json(v) for v in values], pa.string())
    return pa.array(values, KIND_TYPES[kind])


_FAST_TYPES = {
    "text": {str},
    "bigint": {int},
    "timestamp": {int},
    "double": {float, int},
    "bool": {bool},
}


def misfit_types(kind: str, values: Sequence[Any]) -> list[int]:
    """Positions of the values whose type a ``kind`` column never holds (all misfits). The other
    values may still not fit (int range, lone surrogates): :func:`to_arrow` raises on those."""
    own = _FAST_TYPES[kind]
    return [i for i, v in enumerate(values) if v is not None and type(v) not in own]


def fast_fits(kind: str, values: Sequence[Any]) -> bool:
    """Cheap whole-column check (then :func:`to_arrow` validates ranges); False means 'route
    value by value'."""
    if kind == "json":
        return True
    types = set(map(type, values))
    types.discard(_NONE)
    return types <= _FAST_TYPES[kind]


@dataclass(frozen=True, slots=True)
class Column:
    """One column: ``path`` is the JSON path it flattens (None for fixed columns),
    ``variant_of`` the column it is a variant of."""

    name: str
    kind: str
    path: str | None = None
    variant_of: str | None = None

    def field(self) -> pa.Field:
        meta = {"kind": self.kind}
        if self.path is not None:
            meta["json_path"] = self.path
        if self.variant_of is not None:
            meta["variant_of"] = self.variant_of
        return pa.field(self.name, KIND_TYPES[self.kind], metadata=meta)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "path": self.path, "variant": self.variant_of}


class TableSchema:
    """The ordered, append-only column registry of one table."""

    def __init__(self, table: str, fixed: Sequence[tuple[str, str]]) -> None:
        self.table = table
        self.columns: dict[str, Column] = {}
        self.by_path: dict[str, str] = {}
        self.variants: dict[tuple[str, str], str] = {}
        for name, kind in fixed:
            self._add(Column(name, kind))

    def _add(self, col: Column) -> None:
        self.columns[col.name] = col
        if col.variant_of is not None:
            self.variants[(col.variant_of, col.kind)] = col.name
        elif col.path is not None:
            self.by_path[col.path] = col.name

    def _free_name(self, name: str, path: str) -> str:
        if name not in self.columns and name != PARTITION_COLUMN:
            return name
        candidate = f"{name}_{short_hash(path)}"
        n = 2
        while candidate in self.columns:
            candidate = f"{name}_{short_hash(path)}_{n}"
            n += 1
        return candidate

    def add_path(self, path: str, parts: tuple[str, ...], kind: str) -> str:
        """Register a flattened path (no-op when known); returns its column name."""
        name = self.by_path.get(path)
        if name is None:
            name = self._free_name(column_name(parts), path)
            self._add(Column(name, kind, path))
        return name

    def add_variant(self, base: str, kind: str) -> str:
        """Register the ``kind`` variant of column ``base`` (no-op when known)."""
        name = self.variants.get((base, kind))
        if name is None:
            col = self.columns[base]
            name = self._free_name(f"{base}__v_{kind}", f"{col.path or base}#{kind}")
            self._add(Column(name, kind, col.path, base))
        return name

    def data_columns(self) -> list[str]:
        """Every column a reader takes from the files, ordered: all but one named as the
        partition column (registered by an older version), where the partition's day wins."""
        return self.ordered(name for name in self.columns if name != PARTITION_COLUMN)

    def ordered(self, names: Iterable[str]) -> list[str]:
        """``names`` in the order files and frames show them, whatever order the columns were
        registered in (build workers register concurrently): the fixed columns as declared, then
        the flattened ones by name, each variant right after its base column."""
        fixed = {n: i for i, (n, c) in enumerate(self.columns.items()) if c.path is None}

        def key(name: str) -> tuple[Any, ...]:
            col = self.columns[name]
            base = self.columns[col.variant_of] if col.variant_of is not None else col
            place = (0, fixed.get(base.name, 0), "") if base.path is None else (1, 0, base.name)
            return (*place, col.variant_of is not None, col.kind)

        return sorted(names, key=key)

    def arrow_schema(self, names: Iterable[str] | None = None) -> pa.Schema:
        """The Arrow schema of ``names`` (default: all columns), with each field's JSON path,
        kind and variant in its metadata."""
        cols = self.columns.values() if names is None else [self.columns[n] for n in names]
        return pa.schema([c.field() for c in cols], metadata={"table": self.table})

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "table": self.table,
            "columns": [c.to_dict() for c in self.columns.values()],
        }

    def merge_dict(self, data: dict[str, Any]) -> None:
        """Adopt the columns of a stored schema (the stored names and kinds win)."""
        for c in data.get("columns", []):
            col = Column(c["name"], c["kind"], c.get("path"), c.get("variant"))
            if col.name in self.columns:
                continue
            if col.variant_of is None and col.path is not None and col.path in self.by_path:
                continue
            self._add(col)
