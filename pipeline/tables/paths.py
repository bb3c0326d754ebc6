"""The leaf path grammar of ``entity_values.path``: unambiguous and invertible.

* the root value itself has the empty path ``""``;
* an object key that is an ASCII identifier (``[A-Za-z_][A-Za-z0-9_]*``) is written ``.key``
  (without the dot at the start of the path), every other key as a quoted JSON string
  ``["a.b"]``, ``["with space"]``, ``["名前"]``, ``[""]``;
* an array element is ``[3]``.

So ``{"objects": [{"name": "x"}], "a.b": 1}`` has the leaves ``objects[0].name`` and ``["a.b"]``;
:func:`parse_path` inverts :func:`path_string`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

_IDENT_AT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

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
