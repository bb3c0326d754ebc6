"""Query parameters as the emulator reads them: a repeated parameter's last value wins;
booleans accept ``true``/``false``/``1``/``0`` (any case); bad values raise ``BadRequest``
(answered 400 with its message)."""

from __future__ import annotations

import datetime as dt
import re

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_BOOLS = {"true": True, "1": True, "false": False, "0": False}


class BadRequest(Exception):
    """A request the emulator answers 400, with this message."""


def param(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def int_param(
    params: dict[str, list[str]], name: str, default: int, lo: int, hi: int | None
) -> int:
    raw = param(params, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise BadRequest(f"{name} must be {bound}")
    return value


def bool_param(params: dict[str, list[str]], name: str, default: bool) -> bool:
    raw = param(params, name)
    if raw is None:
        return default
    value = _BOOLS.get(raw.lower())
    if value is None:
        raise BadRequest(f"{name} must be true or false")
    return value


def date_param(params: dict[str, list[str]], name: str) -> dt.date | None:
    raw = param(params, name)
    if raw is None:
        return None
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date YYYY-MM-DD") from None
