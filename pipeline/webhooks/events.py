"""A Cloudglue webhook event, ``{event_id, event_type, payload}``, read strictly from a body."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pipeline import jsonio


class NotAnEvent(ValueError):
    """A body that is no webhook event; the message says why in a few words."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    event_id: str
    event_type: str
    payload: dict[str, Any]

    @property
    def job_id(self) -> str | None:
        """The extract job the event is about (``payload.job_id``, else ``payload.id``)."""
        for name in ("job_id", "id"):
            value = self.payload.get(name)
            if isinstance(value, str) and value:
                return value
        return None

    @property
    def created_day(self) -> dt.date | None:
        """The UTC day of the job's ``created_at`` (epoch ms) when the payload carries it."""
        return created_day(self.payload.get("created_at"))

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "event_type": self.event_type, "payload": self.payload}


def created_day(created_at: Any) -> dt.date | None:
    """The UTC day of an epoch-milliseconds ``created_at``; None for anything else."""
    if isinstance(created_at, bool) or not isinstance(created_at, int | float):
        return None
    try:
        return dt.datetime.fromtimestamp(created_at / 1000, dt.UTC).date()
    except (OverflowError, OSError, ValueError):
        return None


def parse_event(body: bytes) -> WebhookEvent:
    """The event in ``body``; ``NotAnEvent`` unless it is a JSON object with a non-empty string
    ``event_id`` and ``event_type`` and an object ``payload``."""
    try:
        obj = jsonio.loads(body)
    except (ValueError, RecursionError):
        raise NotAnEvent("body is not JSON") from None
    if not isinstance(obj, dict):
        raise NotAnEvent("body is not a JSON object")
    for name in ("event_id", "event_type"):
        if not isinstance(obj.get(name), str) or not obj[name]:
            raise NotAnEvent(f"{name} is missing or not a non-empty string")
    if not isinstance(obj.get("payload"), dict):
        raise NotAnEvent("payload is missing or not an object")
    return WebhookEvent(obj["event_id"], obj["event_type"], obj["payload"])
