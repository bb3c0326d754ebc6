"""Flattening of arbitrary (possibly hostile) entity objects, long and wide.

Long (``entity_values``): every leaf with its path (:mod:`pipeline.tables.paths`). A leaf is a
scalar or an *empty* object/array, so the leaves (in order) rebuild the value exactly
(:func:`rebuild_entities`), including key order, big integers and empty containers.

Wide (``video_entities`` / ``segment_entities``, dlt's conventions): nested objects become columns
(:mod:`pipeline.tables.naming`); arrays are never exploded there but kept as JSON text (they are
fully exploded in ``entity_values``). Objects nested deeper than :data:`MAX_FLATTEN_DEPTH` levels
are kept as JSON text too. Nulls and empty objects create no column (the exact value is in
``entities_json``).

Every traversal here is iterative or depth-capped, so hostile input (200+ levels of nesting) never
hits Python's recursion limit.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.jsonio import float_text, int_text, string_text
from pipeline.tables.paths import key_segment, parse_path

MAX_FLATTEN_DEPTH = 6
"""Object levels below a flattened root that become columns; deeper objects stay JSON text."""


_RECURSION_BUDGET = 100


_SCALARS = frozenset({str, int, float, bool, type(None)})


# Child paths by parent path (leaf paths here, key-path tuples for the flattened columns), so
# the paths that repeat in every segment are built once and shared by the rows; bounded for
# hostile data: 2,000 parents of 100 keys or 64 indices each.
_KEY_PATHS: dict[str, dict[str, str]] = {}
_INDEX_PATHS: dict[str, tuple[str, ...]] = {}
_COLUMN_PATHS: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}
_CACHED_PARENTS, _CACHED_KEYS, _CACHED_INDICES = 2_000, 100, 64


def _children(cache: dict[Any, dict[str, Any]], parent: Any) -> dict[str, Any]:
    """The cached children of ``parent`` by key (kept while ``cache`` has room for it)."""
    children = cache.get(parent)
    if children is None:
        children = {}
        if len(cache) < _CACHED_PARENTS:
            cache[parent] = children
    return children


def _index_paths(path: str, count: int) -> tuple[str, ...]:
    children = _INDEX_PATHS.get(path, ())
    if len(children) < min(count, _CACHED_INDICES):
        # Replaced whole, never extended in place: threads sharing the cache stay correct.
        children = tuple(f"{path}[{i}]" for i in range(min(count, _CACHED_INDICES)))
        if path in _INDEX_PATHS or len(_INDEX_PATHS) < _CACHED_PARENTS:
            _INDEX_PATHS[path] = children
    return children


def _leaves_into(value: Any, path: str, paths: list[str], values: list[Any], depth: int) -> None:
    """Recursive fast path for non-empty dicts and lists: scalar children and empty containers
    are leaves handled inline, non-empty dicts and lists recurse while the budget lasts."""
    add_path, add_value = paths.append, values.append
    deeper = depth + 1
    recurse = deeper < _RECURSION_BUDGET
    if type(value) is dict:
        children = _KEY_PATHS.get(path) or _children(_KEY_PATHS, path)  # no call when cached
        for k, child in value.items():
            p = children.get(k) if type(k) is str else None
            if p is None:
                p = path + key_segment(k, not path)
                if type(k) is str and len(children) < _CACHED_KEYS:
                    children[k] = p
            t = type(child)
            if t in _SCALARS or ((t is dict or t is list) and not child):
                add_path(p)
                add_value(child)
            elif (t is dict or t is list) and recurse:
                _leaves_into(child, p, paths, values, deeper)
            else:
                _container_into(child, p, paths, values, deeper)
    else:
        indexed = _index_paths(path, len(value))
        cached = len(indexed)
        for i, child in enumerate(value):
            p = indexed[i] if i < cached else f"{path}[{i}]"
            t = type(child)
            if t in _SCALARS or ((t is dict or t is list) and not child):
                add_path(p)
                add_value(child)
            elif (t is dict or t is list) and recurse:
                _leaves_into(child, p, paths, values, deeper)
            else:
                _container_into(child, p, paths, values, deeper)


def _container_into(value: Any, path: str, paths: list[str], values: list[Any], depth: int) -> None:
    t = type(value)
    if (t is dict or t is list) and value and depth < _RECURSION_BUDGET:
        _leaves_into(value, path, paths, values, depth)
    elif (t is dict or t is list or isinstance(value, Mapping | tuple)) and len(value):
        for p, v in _leaves_iterative(value, path):
            paths.append(p)
            values.append(v)
    else:
        paths.append(path)
        values.append(value)


def leaves_into(value: Any, paths: list[str], values: list[Any]) -> int:
    """Append every ``(path, leaf)`` of ``value`` to ``paths``/``values``; returns the count.

    Recursion is bounded (``_RECURSION_BUDGET`` levels); deeper subtrees continue iteratively.
    """
    before = len(paths)
    if type(value) in _SCALARS:
        paths.append("")
        values.append(value)
    else:
        _container_into(value, "", paths, values, 0)
    return len(paths) - before


def _leaves_iterative(value: Any, root: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any]] = [(root, value)]
    pop, push = stack.pop, stack.append
    while stack:
        path, v = pop()
        if isinstance(v, Mapping):
            if not v:
                out.append((path, v))
                continue
            first = not path
            for k, child in reversed(list(v.items())):
                push((path + key_segment(k, first), child))
        elif isinstance(v, list | tuple):
            if not v:
                out.append((path, v))
                continue
            for i in range(len(v) - 1, -1, -1):
                push((f"{path}[{i}]", v[i]))
        else:
            out.append((path, v))
    return out


def iter_leaves(value: Any) -> list[tuple[str, Any]]:
    """``(path, leaf)`` in document order; a leaf is a scalar or an empty object/array."""
    paths: list[str] = []
    values: list[Any] = []
    leaves_into(value, paths, values)
    return list(zip(paths, values, strict=True))


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

LeafColumns = tuple[str, str, str | None, float | None, int | None, bool | None]


def leaf_columns(leaf: Any) -> LeafColumns:
    """``(value_type, value_json, value_string, value_number, value_integer, value_boolean)`` of
    one leaf. An integer is in ``value_number`` too (rounded, when it is beyond 2**53) and in
    ``value_integer`` when it fits 64 bits; ``value_json`` always has it exactly."""
    t = type(leaf)
    if t is str:
        return "string", string_text(leaf), leaf, None, None, None
    if t is bool:
        return "boolean", "true" if leaf else "false", None, None, None, leaf
    if t is int:
        try:
            number: float | None = float(leaf)
        except OverflowError:
            number = None
        integer = leaf if INT64_MIN <= leaf <= INT64_MAX else None
        return "integer", int_text(leaf), None, number, integer, None
    if t is float:
        return "number", float_text(leaf), None, leaf, None, None
    if leaf is None:
        return "null", "null", None, None, None, None
    if isinstance(leaf, Mapping):
        return "object", "{}", None, None, None, None
    if isinstance(leaf, list | tuple):
        return "array", "[]", None, None, None, None
    text = str(leaf)
    return "string", string_text(text), text, None, None, None


def leaf_value(value_type: str, value_json: str) -> Any:
    """The Python value of one ``entity_values`` row (inverse of :func:`leaf_columns`)."""
    if value_type == "integer":
        return int(value_json)
    if value_type == "number":
        return float(value_json)
    if value_type == "object":
        return {}
    if value_type == "array":
        return []
    return json.loads(value_json)


def rebuild_entities(rows: Iterable[Mapping[str, Any]]) -> Any:
    """Rebuild one entities value from its ``entity_values`` rows (``path``, ``value_type``,
    ``value_json``; ordered by ``leaf_index`` when present). No rows means absent: ``None``."""
    rows = list(rows)
    if rows and "leaf_index" in rows[0]:
        rows.sort(key=lambda r: r["leaf_index"])
    root: Any = None
    have_root = False
    for row in rows:
        value = leaf_value(row["value_type"], row["value_json"])
        parts = parse_path(row["path"])
        if not parts:
            return value
        if not have_root:
            root = [] if isinstance(parts[0], int) else {}
            have_root = True
        node = root
        for part, nxt in itertools.pairwise(parts):
            child_default: Any = [] if isinstance(nxt, int) else {}
            if isinstance(part, int):
                if part == len(node):
                    node.append(child_default)
                node = node[part]
            else:
                if part not in node:
                    node[part] = child_default
                node = node[part]
        last = parts[-1]
        if isinstance(last, int):
            node.append(value)
        else:
            node[last] = value
    return root


def flatten_into(
    obj: Mapping[str, Any],
    prefix: tuple[str, ...],
    depth: int,
    columns: dict[tuple[str, ...], tuple[list[int], list[Any]]],
    row: int,
) -> None:
    """Add ``row``'s non-null values of ``obj`` to the sparse ``columns`` (key path ->
    (row numbers, values)), descending into non-empty objects while ``depth < MAX_FLATTEN_DEPTH``
    (depth-capped recursion)."""
    children = _COLUMN_PATHS.get(prefix) or _children(_COLUMN_PATHS, prefix)
    for key, value in obj.items():
        if value is None:
            continue
        path = children.get(key)
        if path is None:
            if type(key) is str:
                path = (*prefix, key)
                if len(children) < _CACHED_KEYS:
                    children[key] = path
            else:  # only str keys are cached: 1 and True are the same dict key
                path = (*prefix, str(key))
        if type(value) is dict:
            if not value:
                continue
            if depth < MAX_FLATTEN_DEPTH:
                flatten_into(value, path, depth + 1, columns, row)
                continue
        col = columns.get(path)
        if col is None:
            col = columns[path] = ([], [])
        col[0].append(row)
        col[1].append(value)
