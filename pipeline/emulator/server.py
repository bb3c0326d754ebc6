"""The emulator's HTTP server: the Cloudglue extract and segmentation endpoints over a Dataset.

Threaded (one daemon thread per connection), HTTP/1.1 keep-alive, each response written in one
``sendall`` with TCP_NODELAY so pooled clients are not slowed by Nagle/delayed-ACK stalls.

Where the spec leaves a choice open, the emulator answers as follows (clients must not rely on
any of it):
- ``GET /extract``: ``limit`` defaults to 50, ``include_data`` to true (the full ``data`` of
  completed jobs); ``created_after=D`` / ``created_before=D`` are exclusive whole UTC days
  (created from D+1 00:00 on / before D 00:00); ``url`` is an exact match; newest first.
- ``GET /extract/{job_id}``: ``chapters``/``shots`` (and their totals) are repeated on every page,
  and only for completed jobs; the path segment is percent-decoded, so ids with ``/``, ``%``
  or ``..`` are served at their encoded path.
- Booleans accept ``true``/``false``/``1``/``0`` (any case); a repeated parameter's last value
  wins; a method a path does not serve answers 405.
- ``DELETE /extract/{job_id}`` removes the job (``{"id": ...}``); ``/webhooks`` and
  ``/webhooks/{id}`` keep webhooks in memory and deliver events to loopback endpoints (see
  ``pipeline.emulator.webhooks``); ``GET /webhooks`` takes ``limit`` (1-100, default 50),
  ``offset`` and ``sort`` (``asc``/``desc``, default ``desc``, by ``created_at``).
- ``complete_after=S``: every pending or processing job moves to processing, then completed,
  at a time spread evenly over the S seconds after ``start()`` (a job at a time, in list order),
  so a client sees jobs complete while it watches.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hmac
import logging
import re
import socket
import socketserver
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from pipeline.emulator.dataset import Dataset
from pipeline.emulator.faults import FaultConfig
from pipeline.emulator.jobs import STATUSES
from pipeline.emulator.webhooks import WebhookError, Webhooks

logger = logging.getLogger("pipeline.emulator")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Request bodies (webhook create/update) larger than this are refused unread.
_MAX_REQUEST_BODY = 64 * 1024
_BOOLS = {"true": True, "1": True, "false": False, "0": False}


class EmulatorStats:
    """Request counters, safe to read from any thread; ``reset()`` starts a new measurement.

    ``max_in_flight``: most requests received and not yet answered at once (a request counts
    as answered just before the last bytes of its response are written, so a client that starts
    its next request on reading a response is never counted twice). ``max_per_second``: most
    requests received within any window shorter than one second.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self.requests = 0
        self.max_in_flight = 0
        self.max_per_second = 0
        self.faults: dict[str, int] = {}
        self._recent: deque[float] = deque()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.max_in_flight = self.in_flight
            self.max_per_second = 0
            self._recent.clear()
            self.faults = {}

    def _enter(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            self._recent.append(now)
            self.max_per_second = max(self.max_per_second, len(self._recent))

    def _exit(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] = self.faults.get(kind, 0) + 1


def _describe_inconsistently(body: dict[str, Any], how: str) -> None:
    """Change a completed job's page as the ``inconsistent_job`` fault says (see FaultConfig)."""
    if how == "no-data":
        body.pop("data", None)
    elif how == "null-data":
        body["data"] = None
    elif how == "no-total":
        body.pop("total", None)
    elif how == "total-too-high":
        body["total"] += 2
    else:
        data = body["data"] = dict(body["data"])
        data["segment_entities"] = [orjson.dumps(s).decode() for s in data["segment_entities"]]


class _BadRequest(Exception):
    pass


def _param(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _int(params: dict[str, list[str]], name: str, default: int, lo: int, hi: int | None) -> int:
    raw = _param(params, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be an integer") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise _BadRequest(f"{name} must be {bound}")
    return value


def _bool(params: dict[str, list[str]], name: str, default: bool) -> bool:
    raw = _param(params, name)
    if raw is None:
        return default
    value = _BOOLS.get(raw.lower())
    if value is None:
        raise _BadRequest(f"{name} must be true or false")
    return value


def _date(params: dict[str, list[str]], name: str) -> dt.date | None:
    raw = _param(params, name)
    if raw is None:
        return None
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be a date YYYY-MM-DD") from None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudglue-emulator"
    disable_nagle_algorithm = True
    timeout = 120
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.emulator._track(self.connection, add=False)
        super().finish()

    def do_GET(self) -> None:
        self.server.emulator._serve(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET  # answered 405, but counted and logged

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http.server: " + format, *args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    emulator: EmulatorServer

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's getfqdn(), which can stall on reverse DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class EmulatorServer:
    """Serves a Dataset as the Cloudglue API at ``base_url`` (``http://host:port/v1``).

    ``latency_ms`` delays every response; ``faults`` injects errors (see FaultConfig);
    ``complete_after`` completes the pending jobs over that many seconds after ``start()``;
    ``webhook_retry_delays`` are the pauses before a failed delivery's retries.
    """

    def __init__(
        self,
        dataset: Dataset,
        api_key: str = "emulator-key",
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultConfig | None = None,
        latency_ms: float = 0.0,
        complete_after: float | None = None,
        webhook_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
    ) -> None:
        self.dataset = dataset
        self.faults = faults or FaultConfig()
        self.latency_ms = latency_ms
        self.complete_after = complete_after
        self.stats = EmulatorStats()
        self.webhooks = Webhooks(self.faults, retry_delays=webhook_retry_delays)
        dataset.on_status_change(self._status_changed)
        self._api_key = api_key
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.emulator = self
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._attempts: dict[str, int] = {}
        self._passes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._httpd.server_address[0]}:{self.port}/v1"

    def start(self) -> EmulatorServer:
        """Serve in a background daemon thread; returns self."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="cloudglue-emulator",
            daemon=True,
        )
        self._thread.start()
        if self.complete_after is not None:
            threading.Thread(
                target=self._complete_over_time,
                args=(time.monotonic(), self.complete_after),
                name="cloudglue-emulator-completions",
                daemon=True,
            ).start()
        return self

    def wait(self) -> None:
        """Block while serving (the CLI's foreground mode); Ctrl-C interrupts it."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        """Stop accepting and delivering, wake sleeping handlers and close every open
        connection."""
        self._stopping.set()
        self.webhooks.stop()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- live status changes ---------------------------------------------------------

    def _status_changed(self, job_id: str, old: str, new: str) -> None:
        if not self._stopping.is_set():
            self.webhooks.job_status_changed(self.dataset.summary(job_id), new)

    def _complete_over_time(self, started: float, seconds: float) -> None:
        """Complete every pending or processing job, one at each of evenly spaced times."""
        waiting = [
            j for j in self.dataset.job_ids() if self.dataset.status(j) in ("pending", "processing")
        ]
        for k, job_id in enumerate(waiting):
            due = started + seconds * (k + 1) / len(waiting)
            if self._stopping.wait(max(0.0, due - time.monotonic())):
                return
            with contextlib.suppress(KeyError):  # deleted meanwhile
                if self.dataset.status(job_id) == "pending":
                    self.dataset.set_status(job_id, "processing")
                self.dataset.set_status(job_id, "completed")

    # ---- request handling ------------------------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _serve(self, h: _Handler) -> None:
        started = time.perf_counter()
        self.stats._enter()
        h._log_status, h._log_bytes, h._answered = 0, 0, False
        try:
            if self.latency_ms > 0:
                self._stopping.wait(self.latency_ms / 1000)
            self._respond(h)
        except (ConnectionError, TimeoutError):
            h.close_connection = True
        except Exception:
            logger.exception("emulator error on %s", h.path)
            h.close_connection = True
            with contextlib.suppress(OSError):
                self._send(h, 500, {"error": "internal emulator error"})
        finally:
            self._answer(h)
            logger.info(
                "%s %s -> %s %dB %.1fms",
                h.command,
                h.path,
                h._log_status or "dropped",
                h._log_bytes,
                (time.perf_counter() - started) * 1000,
            )

    def _answer(self, h: _Handler) -> None:
        """Count the request as answered (once)."""
        if not h._answered:
            h._answered = True
            self.stats._exit()

    def _authorized(self, h: _Handler) -> bool:
        scheme, _, key = (h.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(key.strip(), self._api_key)

    def _respond(self, h: _Handler) -> None:
        path = h.path.partition("?")[0]
        writes = self._write_route(h.command, path)
        if h.command != "GET" and writes is None:
            h.close_connection = True  # the request body, if any, is not read
            self._send(h, 405, {"error": "Method not allowed"})
            return
        if not self._authorized(h):
            h.close_connection = h.command != "GET"
            self._send(h, 401, {"error": "Invalid or missing API key"})
            return
        if h.command != "GET" or path.startswith("/v1/webhooks"):
            self._send(h, *self._webhook_or_delete(h, path))
            return
        target = h.path
        fault = None
        attempt = 0
        if self.faults.active:
            with self._lock:
                attempt = self._attempts.get(target, 0)
                self._attempts[target] = attempt + 1
            fault = self.faults.decide(target, attempt)
        if fault == "drop":
            self.stats._fault(fault)
            h.close_connection = True
            return
        if fault == "slow":
            self.stats._fault(fault)
            self._stopping.wait(self.faults.slow_seconds)
        elif fault == "server_error":
            self.stats._fault(fault)
            status = self.faults.server_error_status(target, attempt)
            if status == 502:
                html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
                self._send(h, 502, html, content_type="text/html")
            else:
                self._send(h, status, {"error": "An unexpected error occurred on the server"})
            return
        elif fault == "rate_limit":
            self.stats._fault(fault)
            self._send(h, 429, {"error": "Too many requests"}, headers=self._retry_after())
            return
        status, body, changed = self._route(target, fault)
        if changed:
            self.stats._fault(changed)
        if fault == "truncate":
            self.stats._fault(fault)
            raw = orjson.dumps(body)
            cut = raw[: len(raw) // 2]
            if self.faults.truncate_as_json(target, attempt):
                self._send(h, status, cut)
            else:
                h.close_connection = True
                self._send(h, status, cut, declared_length=len(raw))
            return
        if fault == "trickle":
            self.stats._fault(fault)
            self._trickle(h, status, orjson.dumps(body))
            return
        self._send(h, status, body)

    def _trickle(self, h: _Handler, status: int, raw: bytes, pieces: int = 20) -> None:
        """Send the head at once and ``raw`` in ``pieces`` spread over ``trickle_seconds``."""
        step = -(-len(raw) // pieces) or 1
        chunks = [raw[i : i + step] for i in range(0, len(raw), step)] or [b""]
        pause = self.faults.trickle_seconds / len(chunks)
        h._log_bytes = len(raw)
        h.wfile.write(self._head(h, status, "application/json", len(raw), {}) + chunks[0])
        for chunk in chunks[1:]:
            if self._stopping.wait(pause):
                return
            if chunk is chunks[-1]:
                self._answer(h)
            h.wfile.write(chunk)

    def _retry_after(self) -> dict[str, str]:
        style, seconds = self.faults.retry_after, self.faults.retry_after_seconds
        if style == "none":
            return {}
        if style == "http-date":
            return {"Retry-After": email.utils.formatdate(time.time() + seconds, usegmt=True)}
        return {"Retry-After": str(seconds)}

    def _route(self, target: str, fault: str | None) -> tuple[int, dict[str, Any], str | None]:
        """(status, body, the fault that changed the body: changing_total, shifting_list)."""
        path, _, query = target.partition("?")
        parts = path.split("/")
        params = parse_qs(query, keep_blank_values=True)
        try:
            if self.faults.page_cap:
                limit = _int(params, "limit", 50, 1, 100)
                params["limit"] = [str(min(self.faults.page_cap, limit))]
            if len(parts) == 3 and parts[:3] == ["", "v1", "extract"]:
                return self._list(params, self._shifted(params))
            if len(parts) == 4 and parts[:3] == ["", "v1", "extract"] and parts[3]:
                return self._detail(unquote(parts[3]), params, fault == "changing_total")
            if len(parts) == 4 and parts[:3] == ["", "v1", "segmentations"] and parts[3]:
                return (*self._segmentation(unquote(parts[3]), params), None)
        except _BadRequest as exc:
            return 400, {"error": str(exc)}, None
        return 404, {"error": f"Not found: {path}"}, None

    @staticmethod
    def _write_route(method: str, path: str) -> str | None:
        """The non-GET route ``method path`` names, or None (405)."""
        parts = path.split("/")
        if method == "POST" and parts == ["", "v1", "webhooks"]:
            return "create"
        if method in ("PUT", "DELETE") and len(parts) == 4 and parts[:3] == ["", "v1", "webhooks"]:
            return method.lower()
        if method == "DELETE" and len(parts) == 4 and parts[:3] == ["", "v1", "extract"]:
            return "delete_job"
        return None

    def _webhook_or_delete(self, h: _Handler, path: str) -> tuple[int, dict[str, Any]]:
        """Answer the webhook endpoints and ``DELETE /extract/{job_id}``."""
        parts = path.split("/")
        key = unquote(parts[3]) if len(parts) == 4 else ""
        params = parse_qs(h.path.partition("?")[2], keep_blank_values=True)
        route = self._write_route(h.command, path)
        try:
            if route == "delete_job":
                try:
                    self.dataset.delete_job(key)
                except KeyError:
                    return 404, {"error": "Extract job not found"}
                return 200, {"id": key}
            if route == "create":
                return 200, self.webhooks.create(self._json_body(h))
            if parts == ["", "v1", "webhooks"]:
                sort = _param(params, "sort") or "desc"
                if sort not in ("asc", "desc"):
                    raise _BadRequest("sort must be asc or desc")
                return 200, self.webhooks.list_body(
                    limit=_int(params, "limit", 50, 1, 100),
                    offset=_int(params, "offset", 0, 0, None),
                    descending=sort == "desc",
                )
            if len(parts) != 4 or not key:
                return 404, {"error": f"Not found: {path}"}
            try:
                if route == "put":
                    return 200, self.webhooks.update(key, self._json_body(h))
                if route == "delete":
                    return 200, self.webhooks.delete(key)
                return 200, self.webhooks.get(key)
            except KeyError:
                return 404, {"error": "Webhook not found"}
        except (_BadRequest, WebhookError) as exc:
            return 400, {"error": str(exc)}

    def _json_body(self, h: _Handler) -> Any:
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_REQUEST_BODY:
            h.close_connection = True
            raise _BadRequest(f"request body must be JSON of at most {_MAX_REQUEST_BODY} bytes")
        try:
            return orjson.loads(h.rfile.read(length))
        except orjson.JSONDecodeError:
            raise _BadRequest("request body is not JSON") from None

    def _shifted(self, params: dict[str, list[str]]) -> bool:
        """Whether this list page is shifted by the shifting_list fault (counting passes)."""
        if not self.faults.shifting_list:
            return False
        offset = _int(params, "offset", 0, 0, None)
        query = repr(sorted((k, v) for k, v in params.items() if k != "offset"))
        with self._lock:
            passes = self._passes.get(query, 0) + (offset == 0)
            self._passes[query] = passes
        return offset > 0 and self.faults.shifts_list(query, passes)

    def _list(
        self, params: dict[str, list[str]], shift: bool
    ) -> tuple[int, dict[str, Any], str | None]:
        status = _param(params, "status")
        if status is not None and status not in STATUSES:
            raise _BadRequest(f"status must be one of {', '.join(STATUSES)}")
        offset = _int(params, "offset", 0, 0, None)
        shifted = shift and offset > 0
        body = self.dataset.list_body(
            limit=_int(params, "limit", 50, 1, 100),
            offset=offset + 1 if shifted else offset,
            status=status,
            created_after=_date(params, "created_after"),
            created_before=_date(params, "created_before"),
            url=_param(params, "url"),
            include_data=_bool(params, "include_data", True),
        )
        body["offset"] = offset
        return 200, body, "shifting_list" if shifted else None

    def _detail(
        self, job_id: str, params: dict[str, list[str]], change_total: bool
    ) -> tuple[int, dict[str, Any], str | None]:
        limit = _int(params, "limit", 50, 1, 100)
        offset = _int(params, "offset", 0, 0, None)
        flags = {
            name: _bool(params, name, False)
            for name in ("include_thumbnails", "include_chapters", "include_shots")
        }
        try:
            body = self.dataset.detail_body(job_id, limit=limit, offset=offset, **flags)
        except KeyError:
            return 404, {"error": "Extract job not found"}, None
        if body.get("status") == "completed":
            how = self.faults.inconsistency_of(job_id)
            if how is not None:
                _describe_inconsistently(body, how)
                return 200, body, "inconsistent_job"
        if change_total and offset > 0 and "total" in body:
            body["total"] += self.faults.total_delta(job_id)
            return 200, body, "changing_total"
        return 200, body, None

    def _segmentation(self, seg_id: str, params: dict[str, list[str]]) -> tuple[int, dict]:
        limit = _int(params, "limit", 50, 1, 100)
        offset = _int(params, "offset", 0, 0, None)
        try:
            return 200, self.dataset.segmentation_body(seg_id, limit=limit, offset=offset)
        except KeyError:
            return 404, {"error": "Segmentation not found"}

    def _send(
        self,
        h: _Handler,
        status: int,
        body: dict[str, Any] | bytes,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        declared_length: int | None = None,
    ) -> None:
        """Write status line, headers and body in one call (keep-alive unless closing)."""
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        length = declared_length if declared_length is not None else len(raw)
        head = self._head(h, status, content_type, length, headers or {})
        h._log_bytes = len(raw)
        self._answer(h)
        h.wfile.write(head + raw)

    def _head(
        self, h: _Handler, status: int, content_type: str, length: int, headers: dict[str, str]
    ) -> bytes:
        """The status line and headers of a response of ``length`` bytes."""
        reason = h.responses.get(status, ("",))[0]
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Content-Type: {content_type}",
            f"Content-Length: {length}",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if h.close_connection:
            lines.append("Connection: close")
        h._log_status = status
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
