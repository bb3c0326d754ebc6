"""The HTTP endpoint Cloudglue delivers webhook events to (``cloudglue-pipeline webhooks serve``).

A delivery is answered 200 only once its event is in the event log (durably, in the data dir):
Cloudglue retries anything else, so an event is never lost between the sender and the log, and
the log's dedupe on ``event_id`` makes a retry of a delivery that was stored but not answered a
no-op. Answers: 401 wrong or missing ``X-Cloudglue-Webhook-Secret`` (compared in constant time;
the log line never shows what was sent), 413 a body over the size limit (not read), 400 a body
that is no event, 404/405 another path or method, 503 when the log could not be written.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from pipeline import settings
from pipeline.storage.store import Store
from pipeline.webhooks.event_log import EventLog
from pipeline.webhooks.events import NotAnEvent, parse_event

log = logging.getLogger("pipeline.webhooks")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudglue-pipeline-webhooks"
    disable_nagle_algorithm = True
    timeout = 30
    server: _HTTPServer

    def do_POST(self) -> None:
        self.server.receiver._deliver(self)

    def do_GET(self) -> None:
        self.server.receiver._reply(self, 405, {"error": "POST webhook events here"}, close=True)

    do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http.server: " + format, *args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    receiver: WebhookReceiver

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's getfqdn(), which can stall on reverse DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class WebhookReceiver:
    """Receives deliveries at ``url`` (any path) into the event log of ``data_dir``.

    ``secret`` is the webhook's secret (``CLOUDGLUE_WEBHOOK_SECRET``); ``port=0`` picks a free
    port."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | Store,
        secret: str,
        host: str = settings.DEFAULT_WEBHOOK_HOST,
        port: int = settings.DEFAULT_WEBHOOK_PORT,
        max_body_bytes: int = settings.WEBHOOK_MAX_BODY_BYTES,
    ) -> None:
        if not secret:
            raise ValueError(f"{settings.WEBHOOK_SECRET_ENV} is not set")
        self.events = EventLog(data_dir)
        self.max_body_bytes = max_body_bytes
        self._secret = secret.encode()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.receiver = self
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"WebhookReceiver({self.url!r}, secret=<redacted>)"

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> WebhookReceiver:
        """Serve in a background daemon thread; returns self."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block while serving (the CLI's foreground mode); Ctrl-C interrupts it."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- one delivery ----------------------------------------------------------------

    def _deliver(self, h: _Handler) -> None:
        sent = (h.headers.get(settings.WEBHOOK_SECRET_HEADER) or "").encode()
        if not hmac.compare_digest(sent, self._secret):
            why = "wrong" if sent else "missing"
            log.warning("delivery from %s refused: %s webhook secret", h.client_address[0], why)
            self._reply(h, 401, {"error": f"{why} {settings.WEBHOOK_SECRET_HEADER}"}, close=True)
            return
        try:
            length = int(h.headers.get("Content-Length") or "")
        except ValueError:
            self._reply(h, 411, {"error": "Content-Length required"}, close=True)
            return
        if length > self.max_body_bytes or length < 0:
            log.warning("delivery of %d bytes refused: over %d", length, self.max_body_bytes)
            self._reply(h, 413, {"error": f"body over {self.max_body_bytes} bytes"}, close=True)
            return
        try:
            event = parse_event(h.rfile.read(length))
        except NotAnEvent as exc:
            log.warning("delivery refused: %s", exc)
            self._reply(h, 400, {"error": str(exc)})
            return
        try:
            new = self.events.record(event)
        except OSError as exc:
            # Not answered 200: the sender retries, and nothing was lost.
            log.error("event %s not logged: %s", event.event_id, exc)
            self._reply(h, 503, {"error": "event log unavailable"}, close=True)
            return
        log.info(
            "%s %s for job %s", "logged" if new else "duplicate", event.event_type, event.job_id
        )
        self._acknowledge(h, new)

    def _acknowledge(self, h: _Handler, new: bool) -> None:
        """Answer 200 for a logged event (only ever after it is in the log)."""
        self._reply(h, 200, {"received": True, "duplicate": not new})

    def _reply(
        self, h: _Handler, status: int, body: dict[str, Any], *, close: bool = False
    ) -> None:
        raw = orjson.dumps(body)
        h.close_connection = close or h.close_connection
        reason = h.responses.get(status, ("",))[0]
        head = [
            f"HTTP/1.1 {status} {reason}",
            "Content-Type: application/json",
            f"Content-Length: {len(raw)}",
        ]
        if h.close_connection:
            head.append("Connection: close")
        with contextlib.suppress(OSError):
            h.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + raw)
