"""HTTP client for the Cloudglue extract API.

The official SDK fetches one page at a time with no retries or timeouts and drops unknown fields;
this client lists a day range of jobs, reassembles every complete job exactly (all segment-entity
pages, chapters, shots), fetches many jobs concurrently with bounded memory and a hard cap on
requests in flight, and retries transient failures. The API key never leaves the auth header.

``CloudglueClient`` checks the settings and builds the parts, each in its own module:
``transport`` (connections), ``calls`` (one request: retries, reading the answer), ``paging``
(what paged reads share), ``listing`` (the job list), ``job_pages`` (a complete job, many
jobs), ``webhooks``, ``stats`` (counters).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from pipeline.cloudglue.base_url import resolve_base_url
from pipeline.cloudglue.calls import Calls
from pipeline.cloudglue.errors import ConfigError
from pipeline.cloudglue.job_pages import JobPages, fetch_each, job_path
from pipeline.cloudglue.listing import JobListing
from pipeline.cloudglue.models import Job
from pipeline.cloudglue.pages import JobJson
from pipeline.cloudglue.paging import MAX_PAGE_SIZE, Paging
from pipeline.cloudglue.retry import RateLimiter, RetryPolicy
from pipeline.cloudglue.stats import ClientStats
from pipeline.cloudglue.transport import Transport
from pipeline.cloudglue.webhooks import Webhooks
from pipeline.settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
)

__all__ = ["CloudglueClient", "job_path"]

T = TypeVar("T")

# The rate cap counts starts over a little more than a second: requests reach the server some
# milliseconds after they start here, not all equally late, and the server's seconds count.
_RATE_WINDOW = 1.05


def _resolve_key(api_key: str | None) -> str:
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
    if not key.strip():
        raise ConfigError(f"no Cloudglue API key: set {API_KEY_ENV} or pass api_key")
    if key != key.strip() or not key.isascii() or not key.isprintable():
        raise ConfigError(
            f"the Cloudglue API key has whitespace or non-printable characters: fix {API_KEY_ENV}"
        )
    return key


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


class CloudglueClient:
    """Client for ``/extract`` and ``/extract/{job_id}``; see docs/architecture.md.

    Every HTTP request holds one of ``max_concurrency`` slots, so requests in flight never exceed
    it, whether they come from concurrent jobs or concurrent pages of one big job.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        base_url_source: str = "base_url",
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        request_deadline: float = 120.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        page_size: int = MAX_PAGE_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_requests_per_second: float | None = None,
        include_thumbnails: bool = False,
        backoff_base: float = DEFAULT_BACKOFF_SECONDS,
        backoff_max: float = 30.0,
        retry_after_max: float = 60.0,
        max_total_backoff: float = 120.0,
        max_paging_restarts: int = 3,
        concurrent_pages: bool = True,
    ) -> None:
        self._key = _resolve_key(api_key)
        self.base_url = resolve_base_url(base_url, base_url_source, (self._key,))
        # Where the base URL was set, for messages that suggest checking it.
        self.base_url_source = base_url_source if base_url is not None else BASE_URL_ENV
        _positive("timeout", timeout)
        _positive("request_deadline", request_deadline)
        _positive("max_concurrency", max_concurrency)
        if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"page_size must be an integer in 1..{MAX_PAGE_SIZE}")
        if max_paging_restarts < 0:
            raise ConfigError("max_paging_restarts must be >= 0")
        try:
            self.retry_policy = RetryPolicy(
                max_retries=max_retries,
                backoff_base=backoff_base,
                backoff_max=backoff_max,
                retry_after_max=retry_after_max,
                max_total_wait=max_total_backoff,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.timeout = float(timeout)
        self.request_deadline = float(request_deadline)
        self.page_size = page_size
        self.max_concurrency = int(max_concurrency)
        self.include_thumbnails = include_thumbnails
        self.max_paging_restarts = max_paging_restarts
        self.concurrent_pages = concurrent_pages
        rate = None
        if max_requests_per_second is not None:
            _positive("max_requests_per_second", max_requests_per_second)
            rate = RateLimiter(max_requests_per_second, _RATE_WINDOW)
        self.stats = ClientStats()
        self._transport = Transport(self._key, self.base_url, self.max_concurrency)
        calls = Calls(
            self._transport,
            self.stats,
            self.retry_policy,
            key=self._key,
            base_url=self.base_url,
            base_url_source=self.base_url_source,
            timeout=self.timeout,
            request_deadline=self.request_deadline,
            max_concurrency=self.max_concurrency,
            rate=rate,
        )
        self._paging = Paging(
            calls,
            page_size=page_size,
            concurrent_pages=concurrent_pages,
            max_restarts=max_paging_restarts,
            max_workers=self.max_concurrency,
        )
        self._listing = JobListing(self._paging)
        self._job_pages = JobPages(self._paging, include_thumbnails=include_thumbnails)
        self._webhooks = Webhooks(calls)

    def __repr__(self) -> str:
        return (
            f"CloudglueClient(base_url={self.base_url!r}, max_concurrency={self.max_concurrency},"
            f" page_size={self.page_size})"
        )

    def __enter__(self) -> CloudglueClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled connections and the page threads."""
        self._paging.close()
        self._transport.close()

    def list_jobs(self, start: dt.date, end: dt.date, status: str | None = None) -> list[Job]:
        """Jobs created on UTC days ``start``..``end`` (inclusive), in API order, deduplicated
        (``JobListing.list_jobs``)."""
        return self._listing.list_jobs(start, end, status)

    def fetch_job_json(self, job_id: str) -> JobJson:
        """The complete job as JSON bytes, what the landing stores (``JobPages.fetch_job_json``:
        its errors, and a job whose pages do not add up)."""
        return self._job_pages.fetch_job_json(job_id)

    def fetch_each(
        self, fetch: Callable[[str], T], job_ids: Iterable[str]
    ) -> Iterator[tuple[str, T | Exception]]:
        """``(job_id, fetch(job_id) or the exception it raised)`` per job, as each finishes, at
        most ``max_concurrency`` at a time (``job_pages.fetch_each``)."""
        return fetch_each(fetch, job_ids, self.max_concurrency)

    def job_summary(self, job_id: str) -> dict[str, Any]:
        """A job's listing object from one small request (``JobPages.job_summary``)."""
        return self._job_pages.job_summary(job_id)

    def list_webhooks(self) -> list[dict[str, Any]]:
        """Every webhook of the account, oldest first."""
        return self._webhooks.list_webhooks()

    def create_webhook(
        self, endpoint: str, events: Iterable[str], description: str | None = None
    ) -> dict[str, Any]:
        """``POST /webhooks``: the created webhook, its ``webhook_secret`` included."""
        return self._webhooks.create_webhook(endpoint, events, description)

    def update_webhook(self, webhook_id: str, **fields: Any) -> dict[str, Any]:
        """``PUT /webhooks/{id}`` with ``fields``: the updated webhook."""
        return self._webhooks.update_webhook(webhook_id, **fields)

    def delete_webhook(self, webhook_id: str) -> dict[str, Any]:
        """``DELETE /webhooks/{id}``; NotFoundError when there is no such webhook."""
        return self._webhooks.delete_webhook(webhook_id)
