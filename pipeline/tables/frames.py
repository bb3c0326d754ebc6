"""The six tables, built from complete job dicts and listing summaries in bounded chunks.

Rows are accumulated per chunk as plain Python lists (fixed columns dense, flattened columns
sparse) and converted to Arrow with explicit types; no per-row pandas work. A chunk is handed to
a sink once it reaches ``max_rows`` rows or ``max_bytes`` of JSON text, so memory stays bounded
however large a day is. Within a job, segments, chapters and shots are emitted in ``start_time``
order (non-numeric times last, ties by position); with jobs given in ``job_id`` order the rows are
sorted by ``job_id`` then ``start_time``. ``entity_values`` lists a job's video-scope leaves first.

Fixed columns per table are :data:`FIXED_COLUMNS`; ``*_json`` columns hold exact JSON text in the
original key order. ``segment_entities`` also gets the segment's unknown fields and its entities
flattened (``entities__<key>__<key>``), ``video_entities`` the flattened video entities, and
``chapters``/``shots`` their unknown fields; items that are not objects are kept in ``item_json``.
Null or absent entities produce no ``entity_values`` rows and a null ``entities_json``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # pandas is imported when a frame is made: build workers never need it
    import pandas as pd

from pipeline.cloudglue.models import (
    CHAPTER_FIELDS,
    DATA_FIELDS,
    JOB_FIELDS,
    SEGMENT_FIELDS,
    SHOT_FIELDS,
    created_at_ms,
)
from pipeline.jsonio import to_json
from pipeline.tables.flatten import flatten_into, leaf_columns, leaves_into
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

TABLES = (
    "extract_jobs",
    "video_entities",
    "segment_entities",
    "chapters",
    "shots",
    "entity_values",
)

TABLE_NAMES = TABLES

TABLE_DESCRIPTIONS = {
    "extract_jobs": "One row per extract job of any status: config, counts, error, fetched_at.",
    "video_entities": "One row per job with video-level entities: exact entities_json plus "
    "flattened entities__* columns.",
    "segment_entities": "One row per segment entity (0-based segment_index, times in seconds): "
    "exact entities_json, unknown fields, flattened entities__* columns.",
    "chapters": "Narrative chapters of each job: chapter_index, start/end time, description.",
    "shots": "Shot boundaries of each job: shot_index, start/end time.",
    "entity_values": "Long table, one row per entity leaf (path, typed value) for video and "
    "segment scope; rebuilds every job's entities exactly.",
}

FIXED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "extract_jobs": (
        ("job_id", "text"),
        ("status", "text"),
        ("url", "text"),
        ("created_at", "timestamp"),
        ("segmentation_id", "text"),
        ("prompt", "text"),
        ("schema_json", "text"),
        ("enable_video_level_entities", "bool"),
        ("enable_segment_level_entities", "bool"),
        ("enable_transcript_mode", "bool"),
        ("enable_metadata_mode", "bool"),
        ("segment_entity_count", "bigint"),
        ("chapter_count", "bigint"),
        ("shot_count", "bigint"),
        ("total", "bigint"),
        ("thumbnail_url", "text"),
        ("error", "text"),
        ("problem", "text"),
        ("extract_config_json", "text"),
        ("extra_json", "text"),
        ("fetched_at", "timestamp"),
    ),
    "video_entities": (
        ("job_id", "text"),
        ("created_at", "timestamp"),
        ("thumbnail_url", "text"),
        ("entities_json", "text"),
    ),
    "segment_entities": (
        ("job_id", "text"),
        ("segment_index", "bigint"),
        ("start_time", "double"),
        ("end_time", "double"),
        ("thumbnail_url", "text"),
        ("entities_json", "text"),
        ("item_json", "text"),
    ),
    "chapters": (
        ("job_id", "text"),
        ("chapter_index", "bigint"),
        ("start_time", "double"),
        ("end_time", "double"),
        ("description", "text"),
        ("item_json", "text"),
    ),
    "shots": (
        ("job_id", "text"),
        ("shot_index", "bigint"),
        ("start_time", "double"),
        ("end_time", "double"),
        ("item_json", "text"),
    ),
    "entity_values": (
        ("job_id", "text"),
        ("scope", "text"),
        ("segment_index", "bigint"),
        ("start_time", "double"),
        ("end_time", "double"),
        ("leaf_index", "bigint"),
        ("path", "text"),
        ("value_type", "text"),
        ("value_json", "text"),
        ("value_string", "text"),
        ("value_number", "double"),
        ("value_integer", "bigint"),
        ("value_boolean", "bool"),
    ),
}

DEFAULT_MAX_ROWS = {
    "extract_jobs": 50_000,
    "video_entities": 50_000,
    "segment_entities": 50_000,
    "chapters": 100_000,
    "shots": 100_000,
    "entity_values": 250_000,
}
DEFAULT_MAX_BYTES = 64 * 2**20

_ENABLE_FLAGS = (
    "enable_video_level_entities",
    "enable_segment_level_entities",
    "enable_transcript_mode",
    "enable_metadata_mode",
)


def new_schema(table: str) -> TableSchema:
    """A table's schema with only its fixed columns registered."""
    return TableSchema(table, FIXED_COLUMNS[table])


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


def _time(value: Any) -> float | None:
    """A segment time usable for sorting and for ``entity_values`` (finite number or None)."""
    if type(value) is float:
        return value if value == value else None
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return None
    return None


def _time_order(items: Sequence[Any]) -> list[int]:
    keys = []
    for i, item in enumerate(items):
        t = (
            _time(item.get("start_time"))
            if type(item) is dict or isinstance(item, Mapping)
            else None
        )
        keys.append((t is None, t or 0.0, i))
    keys.sort()
    return [k[2] for k in keys]


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


LEAF_COLUMN_TYPES: dict[str, pa.DataType] = {
    "value_type": pa.string(),
    "value_json": pa.string(),
    "value_string": pa.string(),
    "value_number": pa.float64(),
    "value_integer": pa.int64(),
    "value_boolean": pa.bool_(),
}

_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'  # what orjson escapes in a string; all else is kept as is


def _group_columns(
    count: int,
    value_type: str,
    value_json: pa.Array | str,
    **typed: pa.Array,
) -> dict[str, pa.Array]:
    """One type group's five columns: its own typed column(s), the others null."""
    columns = {"value_type": pa.repeat(pa.scalar(value_type), count)}
    columns["value_json"] = (
        value_json if isinstance(value_json, pa.Array) else pa.repeat(pa.scalar(value_json), count)
    )
    for name in ("value_string", "value_number", "value_integer", "value_boolean"):
        columns[name] = typed.get(name, pa.nulls(count, LEAF_COLUMN_TYPES[name]))
    return columns


def _strings(group: list[str]) -> dict[str, pa.Array]:
    strings = pa.array(group, pa.string())  # lone surrogates raise: the group goes exact
    quoted = pc.binary_join_element_wise('"', strings, '"', "")
    escape = pc.match_substring_regex(strings, _NEEDS_ESCAPE)
    if pc.any(escape).as_py():
        keep = escape.to_numpy(zero_copy_only=False)
        escaped = [orjson.dumps(s).decode() for s in itertools.compress(group, keep)]
        quoted = pc.replace_with_mask(quoted, escape, pa.array(escaped, pa.string()))
    return _group_columns(len(group), "string", quoted, value_string=strings)


def _integers(group: list[int]) -> dict[str, pa.Array]:
    ints = pa.array(group, pa.int64())  # beyond int64 raises: the group goes exact
    as_float = ints.cast(pa.float64(), safe=False)  # rounds to nearest, as float() does
    return _group_columns(
        len(group), "integer", ints.cast(pa.string()), value_number=as_float, value_integer=ints
    )


def _floats(group: list[float]) -> dict[str, pa.Array]:
    numbers = pa.array(group, pa.float64())
    texts = list(map(float.__repr__, group))
    for i in np.flatnonzero(~np.isfinite(numbers.to_numpy())):
        texts[i] = leaf_columns(group[i])[1]  # NaN, Infinity: as the JSON module writes them
    return _group_columns(len(group), "number", pa.array(texts, pa.string()), value_number=numbers)


def _booleans(group: list[bool]) -> dict[str, pa.Array]:
    flags = pa.array(group, pa.bool_())
    return _group_columns(
        len(group), "boolean", pc.if_else(flags, "true", "false"), value_boolean=flags
    )


def _exact(group: list[Any]) -> dict[str, pa.Array]:
    """Value by value (:func:`leaf_columns`): big ints, lone surrogates, unusual types."""
    columns = dict(
        zip(LEAF_COLUMN_TYPES, map(list, zip(*map(leaf_columns, group), strict=True)), strict=True)
    )
    # A string with lone surrogates cannot be stored as UTF-8: value_json has it escaped.
    columns["value_string"] = [
        None if s is None or _unencodable(s) else s for s in columns["value_string"]
    ]
    return {name: pa.array(columns[name], t) for name, t in LEAF_COLUMN_TYPES.items()}


# How each leaf type's group is converted; any other type goes value by value (_exact). A
# type's place here is its group's code.
_GROUPS: dict[type, Callable[[list[Any]], dict[str, pa.Array]]] = {
    str: _strings,
    int: _integers,
    float: _floats,
    bool: _booleans,
    type(None): lambda group: _group_columns(len(group), "null", "null"),
    dict: lambda group: _group_columns(len(group), "object", "{}"),
    list: lambda group: _group_columns(len(group), "array", "[]"),
}
_TYPE_CODES = {t: code for code, t in enumerate(_GROUPS)}
_CONVERTERS = [*_GROUPS.values(), _exact]  # by code; the last is for any other type


def typed_leaf_arrays(values: list[Any]) -> dict[str, pa.Array]:
    """``value_type``, ``value_json``, ``value_string``, ``value_number``, ``value_integer``,
    ``value_boolean`` of a chunk of leaves as Arrow arrays, row by row equal to
    :func:`leaf_columns`.

    The leaves are grouped by type and each group converted in a few Arrow calls, then put back
    in row order with one ``take``: per-leaf Python here was a tenth of a build. A group that
    Arrow does not take (ints beyond int64, lone surrogates, other types) goes value by value.
    """
    codes = np.fromiter(
        map(_TYPE_CODES.get, map(type, values), itertools.repeat(len(_GROUPS))),
        np.int8,
        len(values),
    )
    parts: dict[str, list[pa.Array]] = {name: [] for name in LEAF_COLUMN_TYPES}
    by_type = np.argsort(codes, kind="stable")  # one pass to group, not one per type
    grouped = list(map(values.__getitem__, by_type.tolist()))
    start = 0
    for convert, count in zip(
        _CONVERTERS, np.bincount(codes, minlength=len(_CONVERTERS)).tolist(), strict=True
    ):
        if not count:
            continue
        group = grouped[start : start + count]
        start += count
        try:
            columns = convert(group)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
            columns = _exact(group)
        for name, array in columns.items():
            parts[name].append(array)
    order = np.empty(len(values), np.int64)
    order[by_type] = np.arange(len(values))
    indices = pa.array(order)
    return {
        name: pa.concat_arrays(parts[name]).take(indices) if parts[name] else pa.array([], t)
        for name, t in LEAF_COLUMN_TYPES.items()
    }


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


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def make_accumulator(
    schema: TableSchema, sink: Callable[[pa.Table], None], **kwargs: Any
) -> TableAccumulator:
    """The accumulator class each table needs."""
    cls = ValuesAccumulator if schema.table == "entity_values" else TableAccumulator
    return cls(schema, sink, **kwargs)


def _ms(value: dt.datetime | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else to_json(value)


def job_problem(job: Mapping[str, Any]) -> str | None:
    """How a completed job's document contradicts itself, or None when it does not.

    Such a job is landed as far as the API described it and kept in ``extract_jobs`` with this
    text in ``problem``, so one inconsistent job flags its day instead of failing it."""
    if job.get("status") != "completed":
        return None
    problems = []
    data = job.get("data")
    if "data" not in job:
        problems.append("completed without data")
    elif not isinstance(data, Mapping):
        problems.append(f"data is {to_json(data)[:20]}, not an object")
    total = job.get("total")
    if not isinstance(total, int) or isinstance(total, bool):
        problems.append("completed without an integer total")
    segs = data.get("segment_entities", []) if isinstance(data, Mapping) else []
    if not isinstance(segs, list):
        problems.append("segment_entities is not an array")
        segs = []
    if isinstance(total, int) and not isinstance(total, bool) and len(segs) != total:
        problems.append(f"{len(segs)} segment entities, total {total}")
    not_objects = sum(not isinstance(seg, Mapping) for seg in segs)
    if not_objects:
        problems.append(f"{not_objects} segment entities are not objects")
    return "; ".join(problems) or None


class JobRows:
    """Turns job dicts into rows of the six tables' accumulators."""

    def __init__(
        self, accumulators: Mapping[str, TableAccumulator], fetched_at: dt.datetime | int | None
    ) -> None:
        self.acc = accumulators
        self.fetched_at = _ms(fetched_at)

    def add(self, job: Mapping[str, Any]) -> str:
        """Add one complete job dict or listing summary; returns its ``job_id``."""
        job_id = job.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"extract job without a string job_id: {str(job)[:200]}")
        data = job.get("data")
        data_map = data if isinstance(data, Mapping) else None
        created = job.get("created_at")
        created_ms = created_at_ms(created)
        created_val = created if created_ms is None else created_ms
        segs = data_map.get("segment_entities") if data_map is not None else None
        chapters, shots = job.get("chapters"), job.get("shots")
        self._add_job_row(job, job_id, data, data_map, segs, created_val)
        if data_map is not None:
            ents = data_map.get("entities")
            if ents is not None:
                self._add_video(job_id, created_val, data_map.get("thumbnail_url"), ents)
            if isinstance(segs, list):
                self._add_segments(job_id, segs)
        if isinstance(chapters, list):
            self._add_items(self.acc["chapters"], job_id, chapters, CHAPTER_FIELDS, True)
        if isinstance(shots, list):
            self._add_items(self.acc["shots"], job_id, shots, SHOT_FIELDS, False)
        return job_id

    def _add_job_row(
        self,
        job: Mapping[str, Any],
        job_id: str,
        data: Any,
        data_map: Mapping[str, Any] | None,
        segs: Any,
        created: Any,
    ) -> None:
        acc = self.acc["extract_jobs"]
        f = acc.fixed
        config = job.get("extract_config")
        cfg = config if isinstance(config, Mapping) else {}
        extra = {k: v for k, v in job.items() if k not in JOB_FIELDS}
        for key in ("chapters", "shots"):
            if key in job and not isinstance(job[key], list | type(None)):
                extra[key] = job[key]
        if data_map is not None:
            data_extra = {k: v for k, v in data_map.items() if k not in DATA_FIELDS}
            if data_extra:
                extra["data"] = data_extra
        elif data is not None:
            extra["data"] = data
        has_data = data_map is not None
        chapters, shots = job.get("chapters"), job.get("shots")
        f["job_id"].append(job_id)
        f["status"].append(job.get("status"))
        f["url"].append(job.get("url"))
        f["created_at"].append(created)
        f["segmentation_id"].append(job.get("segmentation_id"))
        f["prompt"].append(cfg.get("prompt"))
        f["schema_json"].append(_json_or_none(cfg.get("schema")))
        for flag in _ENABLE_FLAGS:
            f[flag].append(cfg.get(flag))
        f["segment_entity_count"].append(
            len(segs) if isinstance(segs, list) else (0 if has_data else None)
        )
        f["chapter_count"].append(
            len(chapters) if isinstance(chapters, list) else (0 if has_data else None)
        )
        f["shot_count"].append(len(shots) if isinstance(shots, list) else (0 if has_data else None))
        f["total"].append(job.get("total"))
        f["thumbnail_url"].append(data_map.get("thumbnail_url") if data_map is not None else None)
        f["error"].append(job.get("error"))
        f["problem"].append(job_problem(job))
        f["extract_config_json"].append(_json_or_none(config))
        f["extra_json"].append(to_json(extra) if extra else None)
        f["fetched_at"].append(self.fetched_at)
        acc.row_done()

    def _add_video(self, job_id: str, created: Any, thumbnail: Any, ents: Any) -> None:
        acc = self.acc["video_entities"]
        f = acc.fixed
        text = to_json(ents)
        f["job_id"].append(job_id)
        f["created_at"].append(created)
        f["thumbnail_url"].append(thumbnail)
        f["entities_json"].append(text)
        if type(ents) is dict:
            flatten_into(ents, ("entities",), 1, acc.dynamic, acc.rows)
        else:
            acc.emit(("entities",), ents)
        acc.row_done(len(text))
        self._add_values(job_id, "video", None, None, None, ents, len(text))

    def _add_segments(self, job_id: str, segs: list[Any]) -> None:
        acc = self.acc["segment_entities"]
        f = acc.fixed
        c_job, c_idx, c_start, c_end = (
            f["job_id"],
            f["segment_index"],
            f["start_time"],
            f["end_time"],
        )
        c_thumb, c_ents, c_item = f["thumbnail_url"], f["entities_json"], f["item_json"]
        emit = acc.emit
        for i in _time_order(segs):
            seg = segs[i]
            c_job.append(job_id)
            c_idx.append(i)
            if type(seg) is not dict and not isinstance(seg, Mapping):
                for col in (c_start, c_end, c_thumb, c_ents):
                    col.append(None)
                text = to_json(seg)
                c_item.append(text)
                acc.row_done(len(text))
                continue
            start, end = seg.get("start_time"), seg.get("end_time")
            ents = seg.get("entities")
            text = None if ents is None else to_json(ents)
            c_start.append(start)
            c_end.append(end)
            c_thumb.append(seg.get("thumbnail_url"))
            c_ents.append(text)
            c_item.append(None)
            acc.emit_extra(seg, SEGMENT_FIELDS)
            if type(ents) is dict:
                flatten_into(ents, ("entities",), 1, acc.dynamic, acc.rows)
            elif ents is not None:
                emit(("entities",), ents)
            acc.row_done(len(text) if text else 0)
            if ents is not None:
                self._add_values(
                    job_id, "segment", i, _time(start), _time(end), ents, len(text or "")
                )

    def _add_values(
        self,
        job_id: str,
        scope: str,
        index: int | None,
        start: float | None,
        end: float | None,
        ents: Any,
        nbytes: int,
    ) -> None:
        acc = self.acc["entity_values"]
        assert isinstance(acc, ValuesAccumulator)
        f = acc.fixed
        n = leaves_into(ents, f["path"], acc.leaf_values)
        acc.add_run(job_id, scope, index, start, end, n)
        acc.rows_done(n, nbytes)

    def _add_items(
        self,
        acc: TableAccumulator,
        job_id: str,
        items: list[Any],
        known: frozenset[str],
        has_description: bool,
    ) -> None:
        f = acc.fixed
        index_name = "chapter_index" if has_description else "shot_index"
        for i in _time_order(items):
            item = items[i]
            f["job_id"].append(job_id)
            if not isinstance(item, Mapping):
                f[index_name].append(i)
                f["start_time"].append(None)
                f["end_time"].append(None)
                if has_description:
                    f["description"].append(None)
                f["item_json"].append(to_json(item))
                acc.row_done()
                continue
            f[index_name].append(item.get("index", i))
            f["start_time"].append(item.get("start_time"))
            f["end_time"].append(item.get("end_time"))
            if has_description:
                f["description"].append(item.get("description"))
            f["item_json"].append(None)
            acc.emit_extra(item, known)
            acc.row_done()


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
