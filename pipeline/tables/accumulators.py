"""Accumulators: one table's rows collected as plain Python lists (fixed columns dense, flattened
columns sparse) and converted to Arrow with explicit types, handed to a sink every chunk
(``max_rows`` rows or ``max_bytes`` of JSON text) so memory stays bounded however large a day is.
New flattened columns and type variants are registered in the table's schema as they appear."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.tables.catalog import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS, FIXED_COLUMNS
from pipeline.tables.flatten import flatten_into
from pipeline.tables.leaf_arrays import typed_leaf_arrays
from pipeline.tables.paths import path_string
from pipeline.tables.schema import (
    TableSchema,
    fast_fits,
    fits,
    kind_of,
    misfit_types,
    propose_kind,
    to_arrow,
)

Register = Callable[
    [TableSchema, list[tuple[str, tuple[str, ...], str]], list[tuple[str, str]]], None
]


def register_in_memory(
    schema: TableSchema,
    paths: list[tuple[str, tuple[str, ...], str]],
    variants: list[tuple[str, str]],
) -> None:
    """Register new columns in the schema object only (storage persists them under a lock)."""
    for path, parts, kind in paths:
        schema.add_path(path, parts, kind)
    for base, kind in variants:
        schema.add_variant(base, kind)


class TableAccumulator:
    """Collects one table's rows and hands an Arrow table to ``sink`` every chunk."""

    def __init__(
        self,
        schema: TableSchema,
        sink: Callable[[pa.Table], None],
        *,
        register: Register = register_in_memory,
        max_rows: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.schema = schema
        self.sink = sink
        self.register = register
        self.max_rows = max_rows or DEFAULT_MAX_ROWS[schema.table]
        self.max_bytes = max_bytes
        self.fixed_names = [name for name, _ in FIXED_COLUMNS[schema.table]]
        self.fixed: dict[str, list[Any]] = {name: [] for name in self.fixed_names}
        self._reset()

    def _reset(self) -> None:
        # Fixed lists are cleared in place: row builders hold their bound ``append`` methods.
        for col in self.fixed.values():
            col.clear()
        self.dynamic: dict[tuple[str, ...], tuple[list[int], list[Any]]] = {}
        self.rows = 0
        self.nbytes = 0

    def emit(self, parts: tuple[str, ...], value: Any) -> None:
        """Set a flattened value in the current row."""
        col = self.dynamic.get(parts)
        if col is None:
            col = self.dynamic[parts] = ([], [])
        col[0].append(self.rows)
        col[1].append(value)

    def emit_extra(self, item: Mapping[str, Any], known: frozenset[str]) -> None:
        """Flatten the fields of ``item`` that the API does not document (kept, never dropped)."""
        for key, value in item.items():
            if key in known or value is None:
                continue
            if type(value) is dict:
                flatten_into(value, (key,), 1, self.dynamic, self.rows)
            else:
                self.emit((key,), value)

    def row_done(self, nbytes: int = 0) -> None:
        self.rows += 1
        self.nbytes += nbytes
        if self.rows >= self.max_rows or self.nbytes >= self.max_bytes:
            self.flush()

    def rows_done(self, n: int, nbytes: int) -> None:
        """``n`` rows were appended at once (their chunk may overshoot ``max_rows`` by n - 1)."""
        self.rows += n
        self.nbytes += nbytes
        if self.rows >= self.max_rows or self.nbytes >= self.max_bytes:
            self.flush()

    def flush(self) -> None:
        """Convert the current chunk to Arrow and hand it to the sink."""
        if not self.rows:
            return
        table = self.to_arrow()
        self._reset()
        self.sink(table)

    def empty_table(self) -> pa.Table:
        return self.schema.arrow_schema(self.fixed_names).empty_table()

    def to_arrow(self) -> pa.Table:
        """The current chunk as an Arrow table, routing misfit values to variant columns."""
        n, schema = self.rows, self.schema
        dense: dict[str, list[Any]] = {}
        for parts, (idx, vals) in self.dynamic.items():
            if len(idx) == n:
                col = vals
            else:
                col = [None] * n
                for i, v in zip(idx, vals, strict=True):
                    col[i] = v
            dense[path_string(parts)] = col
        new_paths = []
        parts_of = {path_string(parts): parts for parts in self.dynamic}
        for path, col in dense.items():
            if path not in schema.by_path:
                kind = propose_kind(col)
                if kind is not None:
                    new_paths.append((path, parts_of[path], kind))
        if new_paths:
            self.register(schema, new_paths, [])
        columns = list(self.fixed.items())
        columns += [(schema.by_path[p], col) for p, col in dense.items() if p in schema.by_path]
        arrays: dict[str, pa.Array] = {}
        variants: dict[tuple[str, str], list[Any]] = {}

        def to_variant(name: str, row: int, value: Any) -> None:
            key = (name, kind_of(value))
            column = variants.get(key)
            if column is None:
                column = variants[key] = [None] * n
            column[row] = value

        for name, col in columns:
            kind = schema.columns[name].kind
            if fast_fits(kind, col):
                try:
                    arrays[name] = to_arrow(kind, col)
                    continue
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
                    pass
            else:  # misfits by type (e.g. "several" among ints): route those alone
                misfits = misfit_types(kind, col)
                own = list(col)
                for i in misfits:
                    own[i] = None
                try:
                    base_array = to_arrow(kind, own)
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
                    pass  # some own-typed value does not fit either: value by value
                else:
                    for i in misfits:
                        to_variant(name, i, col[i])
                    if base_array.null_count < n or name in self.fixed:
                        arrays[name] = base_array
                    continue
            base: list[Any] = [None] * n
            in_base = False
            for i, v in enumerate(col):
                if v is None:
                    continue
                if fits(kind, v):
                    base[i] = v
                    in_base = True
                else:
                    to_variant(name, i, v)
            if in_base or name in self.fixed:  # a flattened column with only misfits: omit it
                arrays[name] = to_arrow(kind, base)
        missing = [key for key in variants if key not in schema.variants]
        if missing:
            self.register(schema, [], missing)
        for (base_name, kind), vl in variants.items():
            arrays[schema.variants[(base_name, kind)]] = to_arrow(kind, vl)
        names = schema.ordered(arrays)
        return pa.Table.from_arrays([arrays[c] for c in names], schema=schema.arrow_schema(names))


_RUN_COLUMNS = ("job_id", "scope", "segment_index", "start_time", "end_time")


class ValuesAccumulator(TableAccumulator):
    """``entity_values``: rows hold the raw leaf; its typed columns are derived per chunk. The
    columns that only change per entities value (job_id .. end_time, leaf_index) are kept as one
    run per value and expanded in Arrow, not appended per leaf in Python."""

    def _reset(self) -> None:
        super()._reset()
        self.leaf_values: list[Any] = []
        self.runs: dict[str, list[Any]] = {name: [] for name in _RUN_COLUMNS}
        self.run_lengths: list[int] = []

    def add_run(
        self,
        job_id: str,
        scope: str,
        index: int | None,
        start: float | None,
        end: float | None,
        n: int,
    ) -> None:
        """The last ``n`` leaves appended belong to this entities value."""
        runs = self.runs
        runs["job_id"].append(job_id)
        runs["scope"].append(scope)
        runs["segment_index"].append(index)
        runs["start_time"].append(start)
        runs["end_time"].append(end)
        self.run_lengths.append(n)

    def _expand_runs(self) -> None:
        for name, values in self.runs.items():
            column = self.fixed[name]
            for value, n in zip(values, self.run_lengths, strict=True):
                column.extend([value] * n)
        for n in self.run_lengths:
            self.fixed["leaf_index"].extend(range(n))

    def to_arrow(self) -> pa.Table:
        derived = typed_leaf_arrays(self.leaf_values)
        lengths = np.asarray(self.run_lengths, dtype=np.int64)
        take = pa.array(np.repeat(np.arange(len(lengths)), lengths))
        starts = np.cumsum(lengths) - lengths
        leaf_index = np.arange(len(take), dtype=np.int64) - np.repeat(starts, lengths)
        schema = self.schema.arrow_schema(self.fixed_names)
        try:  # every value fits by construction: skip the per-column routing
            arrays = []
            for f in schema:
                if f.name in self.runs:
                    arrays.append(pa.array(self.runs[f.name], f.type).take(take))
                elif f.name == "leaf_index":
                    arrays.append(pa.array(leaf_index, f.type))
                elif f.name in derived:
                    arrays.append(derived[f.name])
                else:
                    arrays.append(pa.array(self.fixed[f.name], f.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
            self._expand_runs()
            for name, array in derived.items():
                self.fixed[name].extend(array.to_pylist())
            return super().to_arrow()  # e.g. a job_id with lone surrogates: route it
        return pa.Table.from_arrays(arrays, schema=schema)


def make_accumulator(
    schema: TableSchema, sink: Callable[[pa.Table], None], **kwargs: Any
) -> TableAccumulator:
    """The accumulator class each table needs."""
    cls = ValuesAccumulator if schema.table == "entity_values" else TableAccumulator
    return cls(schema, sink, **kwargs)
