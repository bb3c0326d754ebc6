"""Helpers of the webhook tests: an event body, a delivery over HTTP, and waiting for the log."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import requests

from pipeline.settings import WEBHOOK_SECRET_HEADER
from pipeline.webhooks import EventLog

SECRET = "test-webhook-secret"


def event(job_id: str = "job-1", created_at: int | None = 1_768_435_200_000, **extra: Any) -> dict:
    """An ``extract.job.completed`` event (a fresh ``event_id`` unless given)."""
    payload: dict[str, Any] = {"job_id": job_id, "status": "completed"}
    if created_at is not None:
        payload["created_at"] = created_at
    return {
        "event_id": extra.pop("event_id", str(uuid.uuid4())),
        "event_type": extra.pop("event_type", "extract.job.completed"),
        "payload": payload,
        **extra,
    }


def deliver(
    url: str,
    body: dict | bytes,
    secret: str | None = SECRET,
    session: requests.Session | None = None,
) -> requests.Response:
    headers = {} if secret is None else {WEBHOOK_SECRET_HEADER: secret}
    post = (session or requests).post
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        return post(url, data=body, headers=headers, timeout=10)
    return post(url, json=body, headers=headers, timeout=10)


def logged(data_dir: Any) -> list[dict]:
    """Every event in the log (the days a reader reads), as dicts."""
    events, _ = EventLog(data_dir).read_new(None)
    return [e.to_dict() for e in events]


def wait_for_events(data_dir: Any, count: int, timeout: float = 30.0) -> list[dict]:
    """The logged events once there are at least ``count`` (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        events = logged(data_dir)
        if len(events) >= count or time.monotonic() > deadline:
            assert len(events) >= count, f"{len(events)} of {count} events logged"
            return events
        time.sleep(0.05)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
