"""Exact JSON for the whole pipeline: orjson's speed, the standard library's exactness.

orjson silently turns integers beyond 64 bits into floats when it parses, and refuses them when it
serialises; it also rejects non-finite numbers. Cloudglue entities are free-form, so a value must
come out exactly as it went in: we use orjson on the fast path and fall back to ``json`` only when
the input could hit one of those corners.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# 19+ digit runs may be integers beyond int64 (orjson would parse them lossily as floats); the
# check also fires inside strings, which only costs the slower, exact parser. It maps digits to
# "0" and every other byte to " ", then finds 19 zeros: about 10x faster than a regex scan.
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
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def dumps_str(obj: Any) -> str:
    """``dumps`` as text, for Parquet string columns."""
    return dumps(obj).decode()
