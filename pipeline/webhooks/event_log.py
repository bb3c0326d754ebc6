"""The durable log of received webhook events, in the data dir (local or bucket).

Each event is one file, ``webhooks/events/received_date=D/<hash of event_id>.json``, created
only if absent (``Store.create``). Which day ``D`` an event is logged under is decided once, by
the first delivery of its ``event_id`` to create ``webhooks/ids/<hash>.json`` naming it; every
later delivery (a duplicate, a retry, a second delivery racing the first) finds that marker and
creates the same event file, which exists at most once. So a receiver that died after the marker
and before the event file is completed by the retry, and one that died after both (before
answering) sees its retry as a duplicate.

Readers (the Dagster sensor) list the last ``READ_DAYS`` received days and keep the names they
have processed for those days in a cursor: no event is processed twice, none is skipped across
restarts. An event logged under a day older than that (a retry arriving more than a day after
the first delivery, which died before logging it) is left to the polling sensor.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from pipeline import jsonio
from pipeline.storage.layout import webhook_event_key, webhook_events_prefix, webhook_seen_key
from pipeline.storage.store import Store, open_store
from pipeline.webhooks.events import WebhookEvent

# Received days a reader lists: today and yesterday (UTC).
READ_DAYS = 2


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class EventLog:
    """The webhook events of one data dir."""

    def __init__(self, data_dir: str | os.PathLike[str] | Store) -> None:
        self.store = open_store(data_dir)

    def record(self, event: WebhookEvent, received: dt.datetime | None = None) -> bool:
        """Log ``event`` durably; True when it is new, False when its ``event_id`` was already
        logged (the event as first received is kept)."""
        received = received or dt.datetime.now(dt.UTC)
        seen_key = webhook_seen_key(event.event_id)
        day = received.date()
        marker = jsonio.dumps({"event_id": event.event_id, "received_date": day.isoformat()})
        if not self.store.create(seen_key, marker):
            day = dt.date.fromisoformat(
                jsonio.loads(self.store.read_bytes(seen_key))["received_date"]
            )
        record = {**event.to_dict(), "received_at": received.isoformat()}
        return self.store.create(webhook_event_key(day, event.event_id), jsonio.dumps(record))

    def read_new(
        self, cursor: str | None, today: dt.date | None = None
    ) -> tuple[list[WebhookEvent], str]:
        """The events logged since ``cursor`` (None: every event of the days read), and the
        cursor that marks them read. Pass the new cursor only once the events are handled."""
        today = today or _utc_today()
        done: dict[str, list[str]] = jsonio.loads(cursor) if cursor else {}
        days = [today - dt.timedelta(days=n) for n in reversed(range(READ_DAYS))]
        events: list[WebhookEvent] = []
        kept: dict[str, list[str]] = {}
        for day in days:
            prefix = webhook_events_prefix(day)
            seen = set(done.get(day.isoformat(), ()))
            names = sorted(self.store.list_files(prefix))
            new = [name for name in names if name not in seen]
            bodies = self.store.map(self.store.read_bytes, [f"{prefix}/{n}" for n in new])
            events.extend(_event(jsonio.loads(body)) for body in bodies)
            if names:
                kept[day.isoformat()] = sorted(seen | set(names))
        return events, jsonio.dumps(kept).decode()

    def count(self, days: list[dt.date]) -> int:
        """How many events are logged under the received ``days`` (tests, benchmarks)."""
        return sum(len(self.store.list_files(webhook_events_prefix(day))) for day in days)


def _event(record: dict[str, Any]) -> WebhookEvent:
    return WebhookEvent(record["event_id"], record["event_type"], record["payload"])
