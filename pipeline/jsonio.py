"""Exact JSON for the whole pipeline: orjson's speed, the standard library's exactness.

``loads``/``dumps`` read and write documents (the landing, the caches); ``to_json`` and the
``*_text`` functions write one value's JSON text for the tables, key order kept.

orjson silently turns integers beyond 64 bits into floats when it parses, and refuses them when it
serialises; it also rejects non-finite numbers. Cloudglue entities are free-form, so a value must
come out exactly as it went in: we use orjson on the fast path and fall back to ``json`` only when
the input could hit one of those corners.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

# 19+ digit runs may be integers beyond int64 (orjson would parse them lossily as floats); the
# check also fires inside strings, which only costs the slower, exact parser. It maps digits to
# "0" and every other byte to " ", then finds 19 zeros, faster than a regex scan.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def has_long_digit_run(raw: bytes) -> bool:
    """Whether ``raw`` holds 19 or more ASCII digits in a row."""
    return raw.translate(_DIGITS_ONLY).find(_LONG_RUN) >= 0


def loads(data: bytes | str) -> Any:
    """Parse JSON exactly; raises ``ValueError`` (``json.JSONDecodeError``) on invalid input."""
    raw = data.encode() if isinstance(data, str) else data
    if not has_long_digit_run(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # Infinity/NaN or truly invalid: let the standard parser decide.
    return json.loads(raw)


def dumps(obj: Any) -> bytes:
    """Serialise compactly as UTF-8, keeping key order and big integers exact."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (parsed from its escape, e.g. "\\ud800") has no UTF-8: escape again.
        return json.dumps(obj, separators=(",", ":")).encode()


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


def float_text(value: float) -> str:
    """JSON text of a float; a non-finite one as Python's json writes it."""
    return repr(value) if math.isfinite(value) else json.dumps(value)


def string_text(value: str) -> str:
    """JSON text of a string, lone surrogates escaped."""
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
            out.append(float_text(item))
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
        return string_text(value)
    if t is float:
        return float_text(value)
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
