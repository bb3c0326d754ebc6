"""Errors raised by the Cloudglue client. None of them ever carries the API key."""

from __future__ import annotations


class CloudglueError(Exception):
    """Base class for every error the client raises."""


class ConfigError(CloudglueError):
    """The client was configured wrongly (missing key, malformed base URL, ...)."""


class AuthError(CloudglueError):
    """401/403: the key is missing, wrong or lacks access."""


class NotFoundError(CloudglueError):
    """404 for a resource (e.g. a job deleted after it was listed)."""


class ApiError(CloudglueError):
    """A non-retryable HTTP error, or a retryable one that outlasted the retries."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None):
        super().__init__(message)
        self.status = status
        self.url = url


class TransportError(CloudglueError):
    """The connection failed, timed out or returned an unreadable body after all retries."""


class InconsistentPagingError(CloudglueError):
    """A job's ``total`` kept changing between pages, or the pages did not add up to it."""
