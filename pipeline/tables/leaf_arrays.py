"""``entity_values``' typed columns (``value_type``, ``value_json``, ``value_string``,
``value_number``, ``value_integer``, ``value_boolean``) for a chunk of leaves, built in Arrow by
leaf type rather than leaf by leaf in Python."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.tables.flatten import leaf_columns

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
    in row order with one ``take`` (per-leaf Python costs a share of a build: bench/README.md).
    A group that Arrow does not take (ints beyond int64, lone surrogates, other types) goes
    value by value.
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


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
