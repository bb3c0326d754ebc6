"""Errors raised by the Cloudglue client, and the sanitized body snippet they carry.

An error of an HTTP exchange carries what a person needs to find it again: the HTTP ``status``,
the ``request_id`` when a server sends one (``X-Request-Id``; the Cloudglue API documents none,
gateways in front of it may add one), the ``method`` and URL ``path`` with its query, and a short
``body`` snippet. None of them ever carries the API key: it travels only in the auth header, and
snippets are redacted of it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# Response headers that name the request, in the order they are looked for.
REQUEST_ID_HEADERS = ("X-Request-Id", "Request-Id")
SNIPPET_CHARS = 120


def body_snippet(content: bytes, secrets: tuple[str, ...] = (), limit: int = SNIPPET_CHARS) -> str:
    """At most ``limit`` characters of a response body for a one-line message: decoded as UTF-8
    (undecodable bytes replaced), each ``secrets`` value replaced by ``<redacted>``, every run of
    whitespace, control or format characters made one space, ``…`` where it was cut."""
    text = content[: limit * 8].decode("utf-8", "replace")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    # Whitespace, control and format characters (a newline, ESC, a bidi override): one space a run.
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class CloudglueError(Exception):
    """Base class for every error the client raises; the HTTP details are None when the error
    did not come from a response (a configuration error, a connection that never opened)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id
        self.method = method
        self.url = url
        self.body = body

    @property
    def path(self) -> str | None:
        """The request's URL path with its query (no host)."""
        if self.url is None:
            return None
        parts = urlsplit(self.url)
        return parts.path + ("?" + parts.query if parts.query else "")

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message} [request id {self.request_id}]" if self.request_id else message

    def __repr__(self) -> str:
        fields = ("status", "request_id", "method", "path")
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in fields if getattr(self, f))
        return f"{type(self).__name__}({super().__str__()!r}{', ' if shown else ''}{shown})"


class ConfigError(CloudglueError):
    """The client was configured wrongly (missing key, malformed base URL, ...)."""


class AuthError(CloudglueError):
    """401/403: the key is missing, wrong or lacks access."""


class NotFoundError(CloudglueError):
    """404: a job deleted after it was listed, or (for the job list) a base URL whose path is
    not the API's."""


class ApiError(CloudglueError):
    """A non-retryable HTTP error, or a retryable one that outlasted the retries."""


class TransportError(CloudglueError):
    """The connection failed, timed out or returned an unreadable body after all retries."""


class InconsistentPagingError(CloudglueError):
    """A job's ``total`` kept changing between pages, or the pages did not add up to it."""
