"""The emulator's webhooks: the registry behind ``/v1/webhooks`` and the delivery of events.

When a job's status changes to processing, completed or failed, the event
``{event_id, event_type: "extract.job.<status>", payload: <the job's summary>}`` is POSTed to
every active webhook subscribed to it, with ``X-Cloudglue-Webhook-Secret: <its secret>``. A
delivery that gets no 200 (another status, no answer within ``timeout``) is retried up to
``RETRIES`` times, ``retry_delays`` apart; the ``duplicate_delivery`` fault delivers a share of
events a second time (same ``event_id``) after the first got its 200. Deliveries only ever go to
loopback addresses: an endpoint elsewhere is kept in the registry (as the API would) and each of
its deliveries is dropped with a warning.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import requests

from pipeline.emulator.faults import FaultConfig
from pipeline.settings import WEBHOOK_SECRET_HEADER

logger = logging.getLogger("pipeline.emulator.webhooks")

# The spec's WebhookEvents.
SPEC_WEBHOOK_EVENTS = (
    "describe.job.processing",
    "describe.job.completed",
    "describe.job.failed",
    "extract.job.processing",
    "extract.job.completed",
    "extract.job.failed",
    "file.job.processing",
    "file.job.completed",
    "file.job.failed",
    "file.job.deleted",
    "collection.file.job.processing",
    "collection.file.job.completed",
    "collection.file.job.failed",
    "collection.file.job.deleted",
    "segment.job.processing",
    "segment.job.completed",
    "segment.job.failed",
)
# Statuses whose change to them is an extract event.
EVENT_STATUSES = ("processing", "completed", "failed")
RETRIES = 3


class WebhookError(ValueError):
    """A request body the webhook endpoints refuse (400), saying why."""


def is_loopback_url(url: str) -> bool:
    """Whether every address ``url``'s host resolves to is a loopback one."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
        if parts.scheme not in ("http", "https") or not host:
            return False
        infos = socket.getaddrinfo(host, port or 80, proto=socket.IPPROTO_TCP)
    except (ValueError, OSError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


class WebhookStats:
    """Delivery counters: ``attempts`` (POSTs sent), ``delivered`` (events answered 200),
    ``duplicates`` (second deliveries sent), ``failed`` (events given up after the retries),
    ``refused`` (deliveries to non-loopback endpoints dropped)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts = self.delivered = self.duplicates = self.failed = self.refused = 0

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


class Webhooks:
    """The registered webhooks of one emulator and their deliveries (a small thread pool)."""

    def __init__(
        self,
        faults: FaultConfig | None = None,
        retry_delays: Sequence[float] = (0.5, 1.0, 2.0),
        timeout: float = 5.0,
        workers: int = 8,
    ) -> None:
        self.faults = faults or FaultConfig()
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.stats = WebhookStats()
        self._hooks: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook-delivery")
        self._stopping = threading.Event()
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)

    # ---- the registry (request bodies as the spec's WebhookCreateRequest/UpdateRequest) ----

    def create(self, body: Any) -> dict[str, Any]:
        fields = _fields(body, ("endpoint", "subscribed_events", "description"))
        if not isinstance(fields.get("endpoint"), str) or not fields["endpoint"]:
            raise WebhookError("endpoint is required")
        hook = {
            "id": str(uuid.uuid4()),
            "object": "webhook",
            "created_at": int(time.time() * 1000),
            "webhook_secret": secrets.token_urlsafe(32),
            "endpoint": fields["endpoint"],
            "active": True,
            "subscribed_events": fields.get("subscribed_events", []),
        }
        if "description" in fields:
            hook["description"] = fields["description"]
        with self._lock:
            self._hooks[hook["id"]] = hook
        return dict(hook)

    def list_body(self, *, limit: int, offset: int, descending: bool) -> dict[str, Any]:
        with self._lock:
            hooks = sorted(self._hooks.values(), key=lambda h: (h["created_at"], h["id"]))
        if descending:
            hooks.reverse()
        return {
            "object": "list",
            "data": [dict(h) for h in hooks[offset : offset + limit]],
            "total": len(hooks),
            "limit": limit,
            "offset": offset,
        }

    def get(self, webhook_id: str) -> dict[str, Any]:
        """The webhook; KeyError when there is none."""
        with self._lock:
            return dict(self._hooks[webhook_id])

    def update(self, webhook_id: str, body: Any) -> dict[str, Any]:
        fields = _fields(body, ("endpoint", "subscribed_events", "description", "active"))
        if "endpoint" in fields and (
            not isinstance(fields["endpoint"], str) or not fields["endpoint"]
        ):
            raise WebhookError("endpoint must be a non-empty string")
        with self._lock:
            self._hooks[webhook_id].update(fields)
            return dict(self._hooks[webhook_id])

    def delete(self, webhook_id: str) -> dict[str, Any]:
        with self._lock:
            del self._hooks[webhook_id]
        return {"id": webhook_id, "object": "webhook"}

    # ---- delivery --------------------------------------------------------------------

    def job_status_changed(self, summary: dict[str, Any], status: str) -> None:
        """Deliver ``extract.job.<status>`` for the job to every subscribed active webhook."""
        if status not in EVENT_STATUSES:
            return
        event = {
            "event_id": str(uuid.uuid4()),
            "event_type": f"extract.job.{status}",
            "payload": summary,
        }
        with self._lock:
            targets = [
                (h["endpoint"], h["webhook_secret"])
                for h in self._hooks.values()
                if h["active"] and event["event_type"] in h["subscribed_events"]
            ]
        for endpoint, secret in targets:
            self._submit(endpoint, secret, event)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no delivery is pending (tests); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def stop(self) -> None:
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, endpoint: str, secret: str, event: dict[str, Any]) -> None:
        with self._lock:
            self._in_flight += 1
        try:
            self._pool.submit(self._deliver, endpoint, secret, event)
        except RuntimeError:  # stopped
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def _deliver(self, endpoint: str, secret: str, event: dict[str, Any]) -> None:
        try:
            if not is_loopback_url(endpoint):
                self.stats.add("refused")
                logger.warning("webhook delivery to %s dropped: not a loopback address", endpoint)
                return
            if not self._post_until_ok(endpoint, secret, event):
                self.stats.add("failed")
                return
            self.stats.add("delivered")
            if self.faults.duplicates_delivery(event["event_id"]):
                self.stats.add("duplicates")
                self._post_until_ok(endpoint, secret, event)
        finally:
            self._done()

    def _post_until_ok(self, endpoint: str, secret: str, event: dict[str, Any]) -> bool:
        """POST the event until a 200, at most 1 + RETRIES times."""
        headers = {WEBHOOK_SECRET_HEADER: secret, "Content-Type": "application/json"}
        for attempt in range(1 + RETRIES):
            if attempt and self._stopping.wait(
                self.retry_delays[min(attempt, len(self.retry_delays)) - 1]
            ):
                return False
            self.stats.add("attempts")
            status: int | str = "no answer"
            with contextlib.suppress(requests.RequestException):
                status = requests.post(
                    endpoint,
                    json=event,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                ).status_code
            if status == 200:
                return True
            logger.info(
                "webhook %s to %s: %s (attempt %d)",
                event["event_type"],
                endpoint,
                status,
                attempt + 1,
            )
        logger.warning(
            "webhook %s to %s given up after %d attempts", event["event_id"], endpoint, 1 + RETRIES
        )
        return False


def _fields(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The known fields of a create/update body, checked against the spec's types."""
    if not isinstance(body, dict):
        raise WebhookError("body must be a JSON object")
    fields = {k: v for k, v in body.items() if k in allowed}
    events = fields.get("subscribed_events")
    if "subscribed_events" in fields and (
        not isinstance(events, list) or any(e not in SPEC_WEBHOOK_EVENTS for e in events)
    ):
        raise WebhookError(f"subscribed_events must be a list of {', '.join(SPEC_WEBHOOK_EVENTS)}")
    if "description" in fields and not isinstance(fields["description"], str):
        raise WebhookError("description must be a string")
    if "active" in fields and not isinstance(fields["active"], bool):
        raise WebhookError("active must be true or false")
    return fields
