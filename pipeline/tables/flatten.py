"""JSON text, leaf paths and flattening of arbitrary (possibly hostile) entity objects.

Leaf paths (``entity_values.path``) are unambiguous and invertible by :func:`parse_path`:

* the root value itself has the empty path ``""``;
* an object key that is an ASCII identifier (``[A-Za-z_][A-Za-z0-9_]*``) is written ``.key``
  (without the dot at the start of the path), every other key as a quoted JSON string
  ``["a.b"]``, ``["with space"]``, ``["名前"]``, ``[""]``;
* an array element is ``[3]``.

So ``{"objects": [{"name": "x"}], "a.b": 1}`` has the leaves ``objects[0].name`` and ``["a.b"]``.
A leaf is a scalar or an *empty* object/array, so the leaves (in order) rebuild the value exactly
(:func:`rebuild_entities`), including key order, big integers and empty containers.

Flattened columns (``video_entities`` / ``segment_entities``) follow dlt's conventions: nested
objects become columns whose names are the snake_cased keys joined with ``__``; arrays are never
exploded there but kept as JSON text (they are fully exploded in ``entity_values``, the long
table). Objects nested deeper than :data:`MAX_FLATTEN_DEPTH` levels are kept as JSON text too.
Nulls and empty objects create no column (the exact value is in ``entities_json``).

Every traversal here is iterative or depth-capped, so hostile input (200+ levels of nesting) never
hits Python's recursion limit.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

MAX_FLATTEN_DEPTH = 6
"""Object levels below a flattened root that become columns; deeper objects stay JSON text."""

MAX_NAME_LENGTH = 120

_IDENT_AT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT_DIGITS_CHUNK = 10**1000


def int_text(value: int) -> str:
    """Decimal text of any int, also beyond Python's 4300-digit ``str()`` limit."""
    try:
        return str(value)
    except ValueError:
        negative, value = value < 0, abs(value)
        chunks: list[str] = []
        while value:
            value, rest = divmod(value, _INT_DIGITS_CHUNK)
            chunks.append(str(rest))
        text = chunks.pop()
        text += "".join(c.zfill(1000) for c in reversed(chunks))
        return "-" + text if negative else text


def _float_text(value: float) -> str:
    return repr(value) if math.isfinite(value) else json.dumps(value)


def _string_text(value: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # lone surrogates: escape them, still exact
        return json.dumps(value)


def _dumps_iterative(value: Any) -> str:
    """Compact JSON of any JSON-like value without recursion (the last-resort encoder)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Token):
            out.append(item.text)
            continue
        if isinstance(item, str):
            out.append(json.dumps(item))
        elif item is None or isinstance(item, bool):
            out.append("null" if item is None else ("true" if item else "false"))
        elif isinstance(item, int):
            out.append(int_text(item))
        elif isinstance(item, float):
            out.append(_float_text(item))
        elif isinstance(item, Mapping):
            parts: list[Any] = [_Token("{")]
            for i, (k, v) in enumerate(item.items()):
                parts.append(_Token(("," if i else "") + json.dumps(str(k)) + ":"))
                parts.append(v)
            parts.append(_Token("}"))
            stack.extend(reversed(parts))
        elif isinstance(item, list | tuple):
            parts = [_Token("[")]
            for i, v in enumerate(item):
                if i:
                    parts.append(_Token(","))
                parts.append(v)
            parts.append(_Token("]"))
            stack.extend(reversed(parts))
        else:
            out.append(json.dumps(str(item)))
    return "".join(out)


class _Token:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def to_json(value: Any) -> str:
    """Compact JSON text that parses back to ``value`` exactly, keeping the original key order.

    orjson is the fast path; it rejects ints beyond 64 bits, lone surrogates and nesting deeper
    than 254, so those values take the slower exact encoders (stdlib, then an iterative one).
    Known limit: a NaN or infinity *inside* an object or array (not valid JSON, so never from the
    API or the raw landing) is written as ``null`` by orjson; as a scalar it is kept.
    """
    t = type(value)
    if t is str:
        return _string_text(value)
    if t is float:
        return _float_text(value)
    if t is int:
        return int_text(value)
    if t is dict or t is list:
        try:
            return orjson.dumps(value).decode()
        except (orjson.JSONEncodeError, TypeError):
            pass
    try:
        return json.dumps(value, separators=(",", ":"))
    except (ValueError, RecursionError, TypeError):
        return _dumps_iterative(value)


# -- leaf paths ---------------------------------------------------------------------------------

_KEY_FIRST: dict[str, str] = {}
_KEY_REST: dict[str, str] = {}


def _quoted(key: str) -> str:
    try:
        key.encode("utf-8")
        return "[" + json.dumps(key, ensure_ascii=False) + "]"
    except UnicodeEncodeError:
        return "[" + json.dumps(key) + "]"


def key_segment(key: str, first: bool) -> str:
    """The path segment for an object key (cached: keys repeat across segments)."""
    cache = _KEY_FIRST if first else _KEY_REST
    seg = cache.get(key)
    if seg is None:
        if not isinstance(key, str):
            key = str(key)
        seg = (key if first else "." + key) if _IDENT.match(key) else _quoted(key)
        if len(cache) < 100_000:
            cache[key] = seg
    return seg


def path_string(parts: Iterable[str | int]) -> str:
    """The path text of a sequence of keys (str) and array indices (int)."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else key_segment(p, not out)
    return out


_DECODER = json.JSONDecoder()


def parse_path(path: str) -> list[str | int]:
    """Invert :func:`path_string`: the list of keys and indices of a leaf path."""
    parts: list[str | int] = []
    i, n = 0, len(path)
    while i < n:
        c = path[i]
        if c == "[":
            if path[i + 1] == '"':
                key, end = _DECODER.raw_decode(path, i + 1)
                parts.append(key)
                i = end + 1
            else:
                end = path.index("]", i)
                parts.append(int(path[i + 1 : end]))
                i = end + 1
        else:
            if c == ".":
                i += 1
            m = _IDENT_AT.match(path, i)
            if m is None:
                raise ValueError(f"bad path {path!r} at {i}")
            parts.append(m.group())
            i = m.end()
    return parts


# -- leaves (entity_values) ---------------------------------------------------------------------


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
        return "string", _string_text(leaf), leaf, None, None, None
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
        return "number", _float_text(leaf), None, leaf, None, None
    if leaf is None:
        return "null", "null", None, None, None, None
    if isinstance(leaf, Mapping):
        return "object", "{}", None, None, None, None
    if isinstance(leaf, list | tuple):
        return "array", "[]", None, None, None, None
    text = str(leaf)
    return "string", _string_text(text), text, None, None, None


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


# -- column names (flattened tables) ------------------------------------------------------------

_SNAKE: dict[str, str] = {}
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def snake_case(key: str) -> str:
    """A SQL-safe snake_case identifier for one key (ASCII, no ``__`` inside, not empty)."""
    name = _SNAKE.get(key)
    if name is None:
        ascii_key = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode()
        name = _NON_WORD.sub("_", _CAMEL.sub(r"\1_\2", ascii_key).lower()).strip("_")
        if not name:
            name = "k_" + short_hash(key)
        elif name[0].isdigit():
            name = "_" + name
        if len(_SNAKE) < 100_000:
            _SNAKE[key] = name
    return name


def column_name(parts: tuple[str, ...]) -> str:
    """The flattened column name of a key path: snake_cased keys joined with ``__``."""
    name = "__".join(snake_case(p) for p in parts)
    if len(name) > MAX_NAME_LENGTH:
        name = name[: MAX_NAME_LENGTH - 9] + "_" + short_hash(path_string(parts))
    return name


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
