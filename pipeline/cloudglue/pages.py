"""A job's pages as bytes: check each page's paging fields and join the pages into the complete
job's JSON without building Python objects for its segment entities.

Landing is the client's hot path, and parsing every page into dicts to serialise the merged job
again is what this avoids (its CPU and the GIL it holds: bench/README.md). msgspec reads a
page's top-level fields as raw JSON slices (``msgspec.Raw``) and cuts the segment entities out one
by one, so the values are never decoded and reach the landing exactly as the API sent them (big
integers too). Bodies msgspec does not read (``NaN``, lone surrogates) are parsed exactly
(``jsonio``) and their fields re-serialised exactly instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from pipeline import jsonio

PAGING_KEYS = ("limit", "offset")
SIDE_KEYS = ("chapters", "total_chapters", "shots", "total_shots")

_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_ABSENT = object()


class NotAnObject(ValueError):
    """The body is valid JSON but not an object; ``kind`` names its type."""

    def __init__(self, value: Any) -> None:
        self.kind = type(value).__name__
        super().__init__(f"body is JSON {self.kind}, not object")


@dataclass(frozen=True, slots=True)
class JobJson:
    """One complete job as JSON bytes, with what the landing needs to know without parsing it."""

    job_id: str
    segments: int
    body: bytes


def parse_object(body: bytes) -> dict[str, Any]:
    """``body`` parsed exactly; ``ValueError`` unless it is a JSON object."""
    value = jsonio.loads(body)
    if not isinstance(value, dict):
        raise NotAnObject(value)
    return value


@dataclass(frozen=True, slots=True)
class Page:
    """One ``GET /extract/{id}`` body: its top-level fields as raw JSON, the paging fields parsed,
    and ``segments`` (each segment entity as raw JSON; empty unless
    ``data.segment_entities`` is an array)."""

    body: bytes
    fields: Mapping[str, msgspec.Raw | bytes]
    data: Mapping[str, msgspec.Raw | bytes] | None
    segments: list[msgspec.Raw] | list[bytes]

    def get(self, key: str, default: Any = None) -> Any:
        """A top-level field, parsed exactly (use for small fields only)."""
        raw = self.fields.get(key, _ABSENT)
        return default if raw is _ABSENT else jsonio.loads(bytes(raw))

    def __contains__(self, key: str) -> bool:
        return key in self.fields


def parse_page(body: bytes) -> Page:
    """The page in ``body``; ``ValueError`` unless it is a JSON object."""
    try:
        fields = _OBJECT.decode(body)
        data = _object_or_none(fields.get("data"))
        raw_segments = data.get("segment_entities") if data is not None else None
        return Page(body, fields, data, _array_or_empty(raw_segments))
    except (msgspec.DecodeError, RecursionError):
        # Invalid JSON, or JSON msgspec does not read: the exact parser decides which.
        return _exact_page(body, parse_object(body))


def _exact(value: Any) -> bytes:
    """``value`` as JSON that parses back to it exactly (big integers, NaN, lone surrogates)."""
    return json.dumps(value, separators=(",", ":")).encode()


def _exact_page(body: bytes, fields: dict[str, Any]) -> Page:
    data = fields.get("data")
    data = data if isinstance(data, dict) else None
    segments = data.get("segment_entities") if data is not None else None
    return Page(
        body,
        {k: _exact(v) for k, v in fields.items()},
        None if data is None else {k: _exact(v) for k, v in data.items()},
        [_exact(s) for s in segments] if isinstance(segments, list) else [],
    )


def _object_or_none(raw: msgspec.Raw | None) -> dict[str, msgspec.Raw] | None:
    if raw is None or memoryview(raw)[:1] != b"{":
        return None
    return _OBJECT.decode(raw)


def _array_or_empty(raw: msgspec.Raw | None) -> list[msgspec.Raw]:
    if raw is None or memoryview(raw)[:1] != b"[":
        return []
    return _ARRAY.decode(raw)


def _object(fields: Mapping[str, bytes | msgspec.Raw]) -> bytes:
    return b"{" + b",".join(jsonio.dumps(k) + b":" + bytes(v) for k, v in fields.items()) + b"}"


def join_pages(pages: Sequence[Page]) -> bytes:
    """The complete job's JSON from its pages in offset order: the first page's fields without
    the paging ones, ``data.segment_entities`` holding every page's segment entities in order,
    and ``chapters``/``shots`` (and their totals) from the first page that has them. The same
    document as merging the pages' dicts would give, value for value."""
    first = pages[0]
    merged: dict[str, bytes | msgspec.Raw] = {
        k: v for k, v in first.fields.items() if k not in PAGING_KEYS
    }
    for page in pages:
        for key in SIDE_KEYS:
            if key in page.fields and key not in merged:
                merged[key] = page.fields[key]
    data: dict[str, bytes | msgspec.Raw] = dict(first.data) if first.data is not None else {}
    segments = [s for page in pages for s in page.segments]
    if segments or "segment_entities" in data:
        data["segment_entities"] = b"[" + b",".join(segments) + b"]"  # Raw joins without a copy
    if data or "data" in first.fields:
        merged["data"] = _object(data)
    return _object(merged)
