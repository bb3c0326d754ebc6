"""The emulator's HTTP server: the Cloudglue extract and segmentation endpoints over a Dataset.

Each request is checked (method, API key), delayed by ``latency_ms``, given the fault
``FaultConfig`` decides for it, and answered by ``routes.Routes``; ``handler`` holds the HTTP
plumbing.

``complete_after=S``: every pending or processing job moves to processing, then completed, at a
time spread evenly over the S seconds after ``start()`` (a job at a time, in list order), so a
client sees jobs complete while it watches.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import threading
import time

import orjson

from pipeline.emulator.dataset import Dataset
from pipeline.emulator.faults import FaultConfig
from pipeline.emulator.handler import EmulatorHTTPServer, RequestHandler
from pipeline.emulator.routes import Routes, write_route
from pipeline.emulator.stats import EmulatorStats
from pipeline.emulator.webhooks import Webhooks

logger = logging.getLogger("pipeline.emulator")


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
        self._faults = faults or FaultConfig()
        self.latency_ms = latency_ms
        self.complete_after = complete_after
        self.stats = EmulatorStats()
        self.webhooks = Webhooks(self._faults, retry_delays=webhook_retry_delays)
        dataset.on_status_change(self._status_changed)
        self._api_key = api_key
        self._routes = Routes(dataset, self._faults, self.webhooks)
        self._httpd = EmulatorHTTPServer((host, port), self._serve, self.stats)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def faults(self) -> FaultConfig:
        return self._faults

    @faults.setter
    def faults(self, faults: FaultConfig) -> None:
        """Swapped while serving (a test's outage that ends): requests after it see the new
        faults, in the checks here, the bodies the routes answer and the webhook deliveries."""
        self._faults = faults
        self._routes.faults = faults
        self.webhooks.faults = faults

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
        self._httpd.shut_connections()
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

    def _serve(self, h: RequestHandler) -> None:
        started = time.perf_counter()
        self.stats.request_received()
        h.log_status, h.log_bytes, h.is_answered = 0, 0, False
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
                h.reply(500, {"error": "internal emulator error"})
        finally:
            h.mark_answered()
            logger.info(
                "%s %s -> %s %dB %.1fms",
                h.command,
                h.path,
                h.log_status or "dropped",
                h.log_bytes,
                (time.perf_counter() - started) * 1000,
            )

    def _authorized(self, h: RequestHandler) -> bool:
        scheme, _, key = (h.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(key.strip(), self._api_key)

    def _respond(self, h: RequestHandler) -> None:
        path = h.path.partition("?")[0]
        writes = write_route(h.command, path)
        if h.command != "GET" and writes is None:
            h.close_connection = True  # the request body, if any, is not read
            h.reply(405, {"error": "Method not allowed"})
            return
        if not self._authorized(h):
            h.close_connection = h.command != "GET"
            h.reply(401, {"error": "Invalid or missing API key"})
            return
        if h.command != "GET" or path.startswith("/v1/webhooks"):
            h.reply(*self._routes.write(h, path, writes))
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
            self.stats.fault_injected(fault)
            h.close_connection = True
            return
        if fault == "slow":
            self.stats.fault_injected(fault)
            self._stopping.wait(self.faults.slow_seconds)
        elif fault == "server_error":
            self.stats.fault_injected(fault)
            status = self.faults.server_error_status(target, attempt)
            if status == 502:
                html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
                h.reply(502, html, content_type="text/html")
            else:
                h.reply(status, {"error": "An unexpected error occurred on the server"})
            return
        elif fault == "rate_limit":
            self.stats.fault_injected(fault)
            h.reply(429, {"error": "Too many requests"}, headers=self.faults.retry_after_header())
            return
        status, body, changed = self._routes.read(target, fault)
        if changed:
            self.stats.fault_injected(changed)
        if fault == "truncate":
            self.stats.fault_injected(fault)
            raw = orjson.dumps(body)
            cut = raw[: len(raw) // 2]
            if self.faults.truncate_as_json(target, attempt):
                h.reply(status, cut)
            else:
                h.close_connection = True
                h.reply(status, cut, declared_length=len(raw))
            return
        if fault == "trickle":
            self.stats.fault_injected(fault)
            h.reply_in_pieces(
                status, orjson.dumps(body), self.faults.trickle_seconds, self._stopping
            )
            return
        h.reply(status, body)
