"""One API request as the client makes it: a GET retried within the retry policy, or a write
sent once, under a cap on requests in flight, its answer read into a value or the error it means.

Failures are classified as requests classified them (``Calls._attempt``); every message and error
is redacted of the key and says what to check.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    PoolError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from pipeline import jsonio
from pipeline.cloudglue.errors import (
    REQUEST_ID_HEADERS,
    SNIPPET_CHARS,
    ApiError,
    AuthError,
    NotFoundError,
    TransportError,
    body_snippet,
)
from pipeline.cloudglue.pages import NotAnObject, parse_object
from pipeline.cloudglue.retry import RateLimiter, RetryPolicy, parse_retry_after
from pipeline.cloudglue.stats import ClientStats
from pipeline.cloudglue.transport import NO_RETRIES, Transport
from pipeline.settings import API_KEY_ENV, DEFAULT_BASE_URL

log = logging.getLogger("pipeline.cloudglue")
T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Bytes asked for per read of a body (``read1`` returns what one receive brought).
_READ_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class _Retryable:
    """One failed attempt that may be retried: why, what the server asked for, and what the
    error raised after the last retry carries of the response (see ``CloudglueError``)."""

    cause: str
    detail: str
    status: int | None = None
    retry_after: float | None = None
    request_id: str | None = None
    body: str | None = None


class Calls:
    """The requests of one client. Every request holds one of ``max_concurrency`` slots, so
    requests in flight never exceed it, whoever makes them; ``rate`` caps their starts."""

    def __init__(
        self,
        transport: Transport,
        stats: ClientStats,
        retry_policy: RetryPolicy,
        *,
        key: str,
        base_url: str,
        base_url_source: str,
        timeout: float,
        request_deadline: float,
        max_concurrency: int,
        rate: RateLimiter | None,
    ) -> None:
        self.base_url = base_url
        self.base_url_source = base_url_source
        self.timeout = timeout
        self.request_deadline = request_deadline
        self.retry_policy = retry_policy
        self.stats = stats
        self._secrets = (key,)
        self._transport = transport
        self._rate = rate
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._rng = random.Random()
        # ``timeout`` bounds each wait for bytes; ``request_deadline`` the whole request: connect
        # and headers through urllib3's total, the body in ``_read_body``.
        self._timeouts = urllib3.Timeout(total=request_deadline, connect=timeout, read=timeout)

    def get(
        self,
        url: str,
        parse: Callable[[bytes], T] = parse_object,  # type: ignore[assignment]
    ) -> T:
        """GET a JSON object (as ``parse`` reads it), retrying transient failures within the
        retry policy.

        ``url`` is the whole URL with its query; it is also how the request appears in messages
        (the key is in a header, never in it)."""
        policy = self.retry_policy
        waited = 0.0
        attempt = 0
        while True:
            outcome = self._attempt(url, parse)
            if not isinstance(outcome, _Retryable):
                return outcome
            delay = policy.delay(attempt, outcome.retry_after, self._rng)
            if attempt >= policy.max_retries:
                raise self._give_up(outcome, url, attempt + 1, "")
            if waited + delay > policy.max_total_wait:
                budget = f"; the next wait would pass max_total_backoff={policy.max_total_wait:g}s"
                raise self._give_up(outcome, url, attempt + 1, budget)
            self.stats.add_retry(outcome.cause, delay)
            log.warning(
                "GET %s: %s; retry %d/%d in %.2fs",
                url,
                outcome.detail,
                attempt + 1,
                policy.max_retries,
                delay,
            )
            time.sleep(delay)
            waited += delay
            attempt += 1

    def _give_up(self, outcome: _Retryable, shown: str, attempts: int, why: str) -> Exception:
        message = f"GET {shown} failed after {attempts} attempt(s): {outcome.detail}{why}"
        error = ApiError if outcome.status in RETRYABLE_STATUSES else TransportError
        return error(
            message,
            status=outcome.status,
            request_id=outcome.request_id,
            method="GET",
            url=shown,
            body=outcome.body,
        )

    def write(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """One request that changes something: sent once (never retried, so never applied
        twice), its answer read as ``get``'s are."""
        url = self.base_url + path
        shown = f"{method} {url}"
        headers = dict(self._transport.headers)
        payload = None
        if body is not None:
            payload = jsonio.dumps(body)
            headers["Content-Type"] = "application/json"
        with self._slots:
            try:
                response = self._transport.manager.urlopen(
                    method,
                    url,
                    body=payload,
                    headers=headers,
                    retries=NO_RETRIES,
                    redirect=False,
                    timeout=self._timeouts,
                    preload_content=True,
                )
            except (HTTPError, OSError) as exc:
                raise TransportError(
                    f"{shown}: {type(exc).__name__}", method=method, url=url
                ) from None
        self.stats.add_request(len(response.data))
        outcome = self._interpret(
            response.status, response.headers, response.data, url, parse_object, method
        )
        if isinstance(outcome, _Retryable):
            raise ApiError(
                f"{shown} failed: {outcome.detail}",
                status=outcome.status,
                request_id=outcome.request_id,
                method=method,
                url=url,
                body=outcome.body,
            )
        return outcome

    def _attempt(self, url: str, parse: Callable[[bytes], T]) -> T | _Retryable:
        """One request. Failures are classified as requests classified them: before the status
        line a timeout is ``timeout``, any other connection or protocol failure ``connection``;
        while reading the body a cut (short ``Content-Length``, broken chunking, bad encoding)
        is ``incomplete_body`` and a timeout ``connection``; a request not complete within
        ``request_deadline`` is ``timeout``; TLS failures are never retried."""
        if self._rate is not None:
            self.stats.add("throttle_seconds", self._rate.acquire())
        with self._slots:
            deadline = time.monotonic() + self.request_deadline
            try:
                response = self._transport.open(url, self._timeouts)
            except MaxRetryError as exc:
                failure = self._failed(exc.reason or exc, url, in_body=False)
            except (HTTPError, OSError) as exc:
                failure = self._failed(exc, url, in_body=False)
            else:
                try:
                    content = self._read_body(response, deadline)
                except HTTPError as exc:
                    failure = self._failed(exc, url, in_body=True)
                else:
                    if content is not None:
                        self.stats.add_request(len(content))
                        return self._interpret(
                            response.status, response.headers, content, url, parse
                        )
                    failure = _Retryable(
                        "timeout", f"not complete within the {self.request_deadline:g}s deadline"
                    )
                finally:
                    response.release_conn()
        self.stats.add_request(0)
        if isinstance(failure, Exception):
            raise failure
        return failure

    def _read_body(self, response: urllib3.BaseHTTPResponse, deadline: float) -> bytes | None:
        """The whole body, or None (the connection closed) when ``deadline`` passes first.

        Each wait for bytes is bounded by ``timeout`` and by the time left, so a body that
        trickles in is cut at the deadline however often its bytes arrive."""
        sock = getattr(response.connection, "sock", None)
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                response.close()
                return None
            if sock is not None:
                sock.settimeout(min(self.timeout, left))
            try:
                chunk = response.read1(_READ_SIZE)
            except ReadTimeoutError:
                if time.monotonic() < deadline:
                    raise
                return None  # urllib3 closed the connection
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def _failed(self, exc: BaseException, url: str, *, in_body: bool) -> _Retryable | Exception:
        """What a failed request means: a retryable outcome, or the error to raise."""
        if isinstance(exc, SSLError):
            return TransportError(f"GET {url}: TLS verification failed", method="GET", url=url)
        name = type(exc).__name__
        if in_body:
            if isinstance(exc, ProtocolError | DecodeError):
                return _Retryable("incomplete_body", f"body cut short ({name})")
            if isinstance(exc, ReadTimeoutError):
                return _Retryable("connection", f"connection failed ({name})")
        elif isinstance(exc, NewConnectionError):
            return _Retryable("connection", self._not_connected(exc))
        elif isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
            return _Retryable("timeout", f"timed out after {self.timeout:g}s")
        elif isinstance(exc, ProtocolError | ProxyError | PoolError | OSError):
            return _Retryable("connection", f"connection failed ({name})")
        return TransportError(
            f"GET {url}: {name}: {self._snippet(str(exc).encode(), 300)}", method="GET", url=url
        )

    def _not_connected(self, exc: NewConnectionError) -> str:
        """Why no connection opened, naming the host and port it was for."""
        conn = exc.conn
        if conn is None:
            return f"connection failed ({type(exc).__name__})"
        if isinstance(exc, NameResolutionError):
            return f"cannot resolve the host {conn.host!r} (check {self.base_url_source})"
        if isinstance(exc.__cause__, ConnectionRefusedError):
            return (
                f"connection refused at {conn.host}:{conn.port}"
                f" (nothing listening there? check {self.base_url_source})"
            )
        return f"connection failed ({type(exc).__name__})"

    def _interpret(
        self,
        status: int,
        headers: Mapping[str, str],
        content: bytes,
        shown: str,
        parse: Callable[[bytes], T],
        method: str = "GET",
    ) -> T | _Retryable:
        if status == 200:
            try:
                return parse(content)
            except NotAnObject as exc:
                detail = f"body is JSON {exc.kind}, not object"
            except (ValueError, RecursionError):
                detail = f"body is not valid JSON ({self._shown_body(headers, content)})"
            return _Retryable("invalid_json", detail, **self._details(status, headers, content))
        details = self._details(status, headers, content)
        message = self._error_message(headers, content)
        if status in RETRYABLE_STATUSES:
            retry_after = parse_retry_after(headers.get("Retry-After"))
            return _Retryable(
                str(status), f"HTTP {status}{message}", retry_after=retry_after, **details
            )
        details.update(method=method, url=shown)
        if status in (401, 403):
            raise AuthError(
                f"Cloudglue rejected the API key (HTTP {status}) for {method} {shown}: "
                f"set {API_KEY_ENV} to a valid key{message}",
                **details,
            )
        if status == 404:
            hint = ""
            if shown.startswith(self.base_url + "/extract?"):
                hint = (
                    f"; no job list there: check the base URL's path ({self.base_url_source} is"
                    f" {self.base_url}; the API's is {DEFAULT_BASE_URL})"
                )
            raise NotFoundError(f"not found (HTTP 404): {method} {shown}{message}{hint}", **details)
        raise ApiError(f"{method} {shown} failed with HTTP {status}{message}", **details)

    def _details(self, status: int, headers: Mapping[str, str], content: bytes) -> dict[str, Any]:
        """What an error carries of a response: status, request id, a body snippet."""
        request_id = next((v for h in REQUEST_ID_HEADERS if (v := headers.get(h))), None)
        return {
            "status": status,
            "request_id": self._snippet(request_id.encode(), 80) if request_id else None,
            "body": self._snippet(content),
        }

    def _error_message(self, headers: Mapping[str, str], content: bytes) -> str:
        """The server's ``{"error": ...}`` text, else what the body is, as a suffix for
        messages (sanitized and short; nothing for an empty body)."""
        try:
            body = jsonio.loads(content)
        except (ValueError, RecursionError):
            return f" ({self._shown_body(headers, content)})" if content else ""
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, str) and error:
            return f" ({self._snippet(error.encode(), 200)})"
        return ""

    def _shown_body(self, headers: Mapping[str, str], content: bytes) -> str:
        """A body that is not the JSON expected, for a message: its content type, size and
        first characters."""
        kind = headers.get("Content-Type")
        kind = self._snippet(kind.encode(), 60) if kind else "no Content-Type"
        snippet = f": {self._snippet(content)!r}" if content else ""
        return f"{kind}, {len(content)} bytes{snippet}"

    def _snippet(self, content: bytes, limit: int = SNIPPET_CHARS) -> str:
        """``content`` shortened for a message, the key redacted."""
        return body_snippet(content, self._secrets, limit)
