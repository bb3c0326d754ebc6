"""The emulator's HTTP plumbing: a threaded server (one daemon thread per connection) that
tracks its open connections, and a request handler that writes each response.

HTTP/1.1 keep-alive; each response is written in one ``sendall`` with TCP_NODELAY so pooled
clients are not slowed by Nagle/delayed-ACK stalls.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from pipeline.emulator.stats import EmulatorStats

logger = logging.getLogger("pipeline.emulator")


class RequestHandler(BaseHTTPRequestHandler):
    """Hands every request to the server's ``serve``; ``reply`` writes the response.

    ``log_status`` and ``log_bytes`` describe the response for the request log;
    ``is_answered`` says whether the request was counted as answered in the stats.
    """

    protocol_version = "HTTP/1.1"
    server_version = "cloudglue-emulator"
    disable_nagle_algorithm = True
    timeout = 120
    server: EmulatorHTTPServer
    log_status = 0
    log_bytes = 0
    is_answered = False

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.track(self.connection, add=False)
        super().finish()

    def do_GET(self) -> None:
        self.server.serve(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET  # all to serve(); no route: 405

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http.server: " + format, *args)

    def mark_answered(self) -> None:
        """Count the request as answered (once)."""
        if not self.is_answered:
            self.is_answered = True
            self.server.stats.request_answered()

    def reply(
        self,
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
        head = self._head(status, content_type, length, headers or {})
        self.log_bytes = len(raw)
        self.mark_answered()
        self.wfile.write(head + raw)

    def reply_in_pieces(
        self, status: int, raw: bytes, seconds: float, stopping: threading.Event, pieces: int = 20
    ) -> None:
        """Send the head at once and ``raw`` in ``pieces`` spread over ``seconds`` (until
        ``stopping`` is set)."""
        step = -(-len(raw) // pieces) or 1
        chunks = [raw[i : i + step] for i in range(0, len(raw), step)] or [b""]
        pause = seconds / len(chunks)
        self.log_bytes = len(raw)
        self.wfile.write(self._head(status, "application/json", len(raw), {}) + chunks[0])
        for chunk in chunks[1:]:
            if stopping.wait(pause):
                return
            if chunk is chunks[-1]:
                self.mark_answered()
            self.wfile.write(chunk)

    def _head(self, status: int, content_type: str, length: int, headers: dict[str, str]) -> bytes:
        """The status line and headers of a response of ``length`` bytes."""
        reason = self.responses.get(status, ("",))[0]
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Content-Type: {content_type}",
            f"Content-Length: {length}",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        self.log_status = status
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Calls ``serve(handler)`` for each request and counts answers in ``stats``."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        serve: Callable[[RequestHandler], None],
        stats: EmulatorStats,
    ) -> None:
        super().__init__(address, RequestHandler)
        self.serve = serve
        self.stats = stats
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's getfqdn(), which can stall on reverse DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def shut_connections(self) -> None:
        """Shut down every open connection (waking handlers that wait on them)."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
