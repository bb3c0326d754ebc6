"""Exact JSON for the whole pipeline: orjson's speed, the standard library's exactness.

orjson silently turns integers beyond 64 bits into floats when it parses, and refuses them when it
serialises; it also rejects non-finite numbers. Cloudglue entities are free-form, so a value must
come out exactly as it went in: we use orjson on the fast path and fall back to ``json`` only when
the input could hit one of those corners.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# 19+ digit runs may be integers beyond int64 (orjson would parse them lossily as floats); the
# check also fires inside strings, which only costs the slower, exact parser.
_LONG_DIGITS = re.compile(rb"\d{19,}")


def loads(data: bytes | str) -> Any:
    """Parse JSON exactly; raises ``ValueError`` (``json.JSONDecodeError``) on invalid input."""
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_DIGITS.search(raw) is None:
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
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def dumps_str(obj: Any) -> str:
    """``dumps`` as text, for Parquet string columns."""
    return dumps(obj).decode()
