"""HTTP client for the Cloudglue extract API.

The official SDK fetches one page at a time with no retries or timeouts and drops unknown fields;
this client lists a day range of jobs, reassembles every complete job exactly (all segment-entity
pages, chapters, shots), fetches many jobs concurrently with bounded memory and a hard cap on
requests in flight, and retries transient failures. The API key never leaves the auth header.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urljoin

import requests.utils
import urllib3
from requests.adapters import HTTPAdapter
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
from pipeline.cloudglue.base_url import resolve_base_url
from pipeline.cloudglue.errors import (
    REQUEST_ID_HEADERS,
    SNIPPET_CHARS,
    ApiError,
    AuthError,
    ConfigError,
    InconsistentPagingError,
    NotFoundError,
    TransportError,
    body_snippet,
)
from pipeline.cloudglue.models import Job
from pipeline.cloudglue.pages import (
    JobJson,
    NotAnObject,
    Page,
    join_pages,
    parse_object,
    parse_page,
)
from pipeline.cloudglue.retry import RateLimiter, RetryPolicy, parse_retry_after
from pipeline.settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
)

log = logging.getLogger("pipeline.cloudglue")
T = TypeVar("T")

MAX_PAGE_SIZE = 100
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Bytes asked for per read of a body (``read1`` returns what one receive brought).
_READ_SIZE = 1 << 20
# The rate cap counts starts over a little more than a second: requests reach the server some
# milliseconds after they start here, not all equally late, and the server's seconds count.
_RATE_WINDOW = 1.05


def job_path(job_id: str) -> str:
    """The URL path of one job; the id is percent-encoded so ``/``, ``?`` or ``#`` stay in it.

    An id of ``.`` or ``..`` would be resolved away as a dot segment, so its dots are encoded
    as well (the transport sends ``%2E`` as it is; requests would turn it back into ``.``).
    """
    encoded = quote(job_id, safe="")
    if job_id in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return "/extract/" + encoded


class ClientStats:
    """Thread-safe counters of one client's run, for the Dagster layer to report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries_by_cause: Counter[str] = Counter()
        self.bytes_received = 0
        self.backoff_seconds = 0.0
        self.throttle_seconds = 0.0
        self.paging_restarts = 0
        self.jobs_listed = 0
        self.jobs_fetched = 0
        self.skipped: list[tuple[str, str]] = []

    def _add_request(self, received: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes_received += received

    def _add_retry(self, cause: str, delay: float) -> None:
        with self._lock:
            self.retries_by_cause[cause] += 1
            self.backoff_seconds += delay

    def _add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def _skip(self, job_id: str, reason: str) -> None:
        with self._lock:
            self.skipped.append((job_id, reason))

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of every counter (plain types, safe to serialise).

        Keys: ``requests``, ``retries`` (sum), ``retries_by_cause`` (``"429"``, ``"503"``, ...,
        ``"connection"``, ``"timeout"``, ``"incomplete_body"``, ``"invalid_json"``),
        ``bytes_received``, ``backoff_seconds``, ``throttle_seconds`` (waiting on the rate cap),
        ``paging_restarts``, ``jobs_listed``, ``jobs_fetched``, ``jobs_skipped`` and ``skipped``
        (``(job_id, reason)`` pairs: listed jobs without ``created_at``,
        list items that are no job, as ``<list item N>``).
        """
        with self._lock:
            return {
                "requests": self.requests,
                "retries": sum(self.retries_by_cause.values()),
                "retries_by_cause": dict(self.retries_by_cause),
                "bytes_received": self.bytes_received,
                "backoff_seconds": round(self.backoff_seconds, 6),
                "throttle_seconds": round(self.throttle_seconds, 6),
                "paging_restarts": self.paging_restarts,
                "jobs_listed": self.jobs_listed,
                "jobs_fetched": self.jobs_fetched,
                "jobs_skipped": len(self.skipped),
                "skipped": list(self.skipped),
            }


# No retries inside urllib3 (``_get`` owns them) and read errors raised as they are; redirects are
# followed as requests follows them (at most 30), never carrying the key to another host.
_NO_RETRIES = urllib3.Retry(total=None, connect=0, read=False, status=0, other=0, redirect=30)


class _Transport:
    """Keep-alive HTTP(S) connections for one client, through urllib3 without requests' layers.

    ``requests.Session`` spends CPU on every request preparing, hooking, merging the environment
    and wrapping (bench/README.md). What it decides is decided here once, the same way:
    proxies from ``HTTP(S)_PROXY``/``NO_PROXY`` for the base URL, the CA bundle from
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` or certifi, TLS always verified, requests' headers
    (user agent, ``Accept-Encoding``) and the key only in the ``Authorization`` header (no
    ``~/.netrc``). The headers are never shown: ``repr`` redacts them.
    """

    verify = True

    def __init__(self, key: str, base_url: str, maxsize: int) -> None:
        self.headers = {
            "User-Agent": requests.utils.default_user_agent(),
            "Accept-Encoding": requests.utils.DEFAULT_ACCEPT_ENCODING,
            "Accept": "application/json",
            "Connection": "keep-alive",
            "Authorization": f"Bearer {key}",
        }
        bundle = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or requests.utils.DEFAULT_CA_BUNDLE_PATH
        )
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
        tls["ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"] = bundle
        # requests' own pool settings (10 hosts, ``maxsize`` connections each, never blocking).
        adapter = HTTPAdapter(pool_maxsize=maxsize, max_retries=0)
        proxy = requests.utils.select_proxy(base_url, requests.utils.get_environ_proxies(base_url))
        if proxy:
            proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
            self.manager = adapter.proxy_manager_for(proxy, **tls)
        else:
            self.manager = urllib3.PoolManager(num_pools=10, maxsize=maxsize, block=False, **tls)
        # Without a proxy, URLs under the base URL go straight to its host's pool, skipping the
        # manager's parsing and pool lookup, as long as the manager would send them unchanged.
        self._origin = ""
        self._pool: urllib3.HTTPConnectionPool | None = None
        parts = urllib3.util.parse_url(base_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if not proxy and base_url == origin + (parts.path or ""):
            self._origin = origin
            self._pool = self.manager.connection_from_url(base_url)

    def __repr__(self) -> str:
        return "_Transport(<headers redacted>)"

    def open(self, url: str, timeout: urllib3.Timeout) -> urllib3.BaseHTTPResponse:
        """Send ``GET url`` and return the response with its body not read yet."""
        pool = self._pool
        if pool is None or not url.startswith(self._origin + "/"):
            return self._open_managed(url, self.headers, _NO_RETRIES, timeout)
        response = pool.urlopen(
            "GET",
            url[len(self._origin) :],
            headers=self.headers,
            retries=_NO_RETRIES,
            timeout=timeout,
            preload_content=False,
            redirect=False,
            assert_same_host=False,
        )
        location = response.get_redirect_location()
        if not location:
            return response
        # Redirected: this hop as ``PoolManager.urlopen`` takes it (the key's header only to the
        # same host), then the manager follows any further ones.
        location = urljoin(url, location)
        headers = self.headers
        if not pool.is_same_host(location):
            unsafe = _NO_RETRIES.remove_headers_on_redirect
            headers = {k: v for k, v in headers.items() if k.lower() not in unsafe}
        retries = _NO_RETRIES.increment("GET", url, response=response, _pool=pool)
        response.drain_conn()
        response.release_conn()
        return self._open_managed(location, headers, retries, timeout)

    def _open_managed(
        self, url: str, headers: dict[str, str], retries: urllib3.Retry, timeout: urllib3.Timeout
    ) -> urllib3.BaseHTTPResponse:
        return self.manager.urlopen(
            "GET", url, headers=headers, retries=retries, timeout=timeout, preload_content=False
        )

    def close(self) -> None:
        self.manager.clear()


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


class _PagingChanged(Exception):
    """The job changed while its pages were read; fetching it again may succeed."""


class _PagesShort(_PagingChanged):
    """The pages did not add up to ``total``; ``partial`` is the job as far as they went."""

    def __init__(self, reason: str, partial: JobJson) -> None:
        super().__init__(reason)
        self.partial = partial


_ENDED_SHORT = "the list ended"


def _identity(item: Any) -> Any:
    """What identifies a list item at a page edge: its ``job_id`` (a job's status may change
    between pages without moving it), else the item itself."""
    return item.get("job_id") if isinstance(item, Mapping) else item


def _count(value: Any) -> bool:
    """Whether ``value`` is a JSON integer >= 0 (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
        # ``timeout`` bounds each wait for bytes; ``request_deadline`` the whole request: connect
        # and headers through urllib3's total, the body in ``_read_body``.
        self._timeouts = urllib3.Timeout(total=request_deadline, connect=timeout, read=timeout)
        self.page_size = page_size
        self.max_concurrency = int(max_concurrency)
        self.include_thumbnails = include_thumbnails
        self.max_paging_restarts = max_paging_restarts
        self.concurrent_pages = concurrent_pages
        # The query of a job's pages after ``limit`` and ``offset``. Chapters and shots are asked
        # for on the first page only: the complete job takes them from it, and repeated on every
        # page they were over a quarter of the bytes received. Thumbnails are per segment entity.
        thumbnails = "&include_thumbnails=true" if include_thumbnails else ""
        self._first_page_flags = "&include_chapters=true&include_shots=true" + thumbnails
        self._page_flags = thumbnails
        self._rate = None
        if max_requests_per_second is not None:
            _positive("max_requests_per_second", max_requests_per_second)
            self._rate = RateLimiter(max_requests_per_second, _RATE_WINDOW)
        self.stats = ClientStats()
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._rng = random.Random()
        self._transport = _Transport(self._key, self.base_url, self.max_concurrency)
        self._page_pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

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
        with self._pool_lock:
            pool, self._page_pool = self._page_pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._transport.close()

    # ----------------------------------------------------------------------------- listing

    def list_jobs(self, start: dt.date, end: dt.date, status: str | None = None) -> list[Job]:
        """Jobs created on UTC days ``start``..``end`` (inclusive), in API order, deduplicated.

        The API's date filters take whole days with undocumented inclusivity, so the query is one
        day wider on each side and ``created_at`` decides. The items come from one consistent
        pass over the list's pages (``_list_items``); an item the API repeats is kept once.
        """
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        low_ms = _day_start_ms(start)
        high_ms = _day_start_ms(end + dt.timedelta(days=1))
        params: dict[str, Any] = {
            "limit": self.page_size,
            "include_data": "false",
            "created_after": (start - dt.timedelta(days=1)).isoformat(),
            "created_before": (end + dt.timedelta(days=1)).isoformat(),
        }
        if status is not None:
            params["status"] = status
        seen: set[str] = set()
        jobs: list[Job] = []
        for position, obj in enumerate(self._list_items(params)):
            job = self._listed_job(obj, position)
            if job is None or job.job_id in seen:
                continue
            seen.add(job.job_id)
            if job.created_at is None:
                log.warning("job %s has no usable created_at; left out", job.job_id)
                self.stats._skip(job.job_id, "created_at missing or not a number")
            elif low_ms <= job.created_at < high_ms:
                jobs.append(job)
        self.stats._add("jobs_listed", len(jobs))
        return jobs

    def _list_items(self, params: Mapping[str, Any]) -> list[Any]:
        """Every item of the list, from a pass over its pages in which nothing moved.

        A pass that saw the list change (``_list_pass``) is read again, at most
        ``max_paging_restarts`` times. A list that ends short of its ``total`` is taken when two
        passes in a row agree on it (a ``total`` that lies, not a list that shrank)."""
        shown = self._shown("/extract", params)
        previous: tuple[list[Any], Any] | None = None
        reason = ""
        for attempt in range(self.max_paging_restarts + 1):
            if attempt:
                self._paging_restart("the job list", reason, attempt)
            items, total, reason = self._list_pass(params)
            if not reason:
                return items
            if reason.startswith(_ENDED_SHORT) and previous == (items, total):
                log.warning("GET %s: %s on two passes; taken as it is", shown, reason)
                return items
            previous = (items, total) if reason.startswith(_ENDED_SHORT) else None
        raise InconsistentPagingError(
            f"GET {shown}: the job list kept changing while it was paged, "
            f"{self.max_paging_restarts + 1} passes (last: {reason}); nothing was taken from it"
        )

    def _list_pass(self, params: Mapping[str, Any]) -> tuple[list[Any], Any, str]:
        """One pass over the list's pages: ``(items, total, change)``, ``change`` empty when
        nothing moved.

        Each page after the first starts at the last item already received, so every page edge
        is checked: the item there must be the same one (a job added or removed before it would
        shift it), and ``total`` must not move. Pages after the first are fetched concurrently
        at the offsets the first page's size implies; a page that is not where the items
        received end (it came back shorter or longer) is dropped and that part read page by
        page."""

        def get(offset: int) -> dict[str, Any]:
            page = self._get(self._shown("/extract", {**params, "offset": offset}))
            if not isinstance(page.get("data"), list):
                shown = self._shown("/extract", params)
                raise ApiError(f"GET {shown}: the list has no 'data' array", url=shown)
            return page

        first = get(0)
        items: list[Any] = list(first["data"])
        total = first.get("total")
        size = len(items)
        # With one item per page no page can overlap the previous one: only `total` is checked.
        stride = size - 1 if size > 1 else 1
        ahead: deque[tuple[int, Future[dict[str, Any]]]] = deque()
        if _count(total) and size and self.concurrent_pages:
            pool = self._pages_executor()
            ahead.extend(
                (at, pool.submit(get, at)) for at in range(stride, total - (size > 1), stride)
            )
        try:
            while size and not (_count(total) and len(items) >= total):
                start = len(items) - 1 if size > 1 else len(items)
                while ahead and ahead[0][0] < start:
                    ahead.popleft()[1].cancel()
                if ahead and ahead[0][0] == start:
                    page = ahead.popleft()[1].result()
                else:
                    for _, future in ahead:
                        future.cancel()
                    ahead.clear()
                    page = get(start)
                if page.get("total") != total:
                    return items, total, f"total moved from {total!r} to {page.get('total')!r}"
                received = page["data"]
                if start < len(items) and (
                    not received or _identity(received[0]) != _identity(items[start])
                ):
                    return items, total, f"the item at offset {start} changed between pages"
                new = received[len(items) - start :]
                if not new:
                    if _count(total) and len(items) < total:
                        return items, total, f"{_ENDED_SHORT} at {len(items)} of total {total}"
                    break
                items.extend(new)
            return items, total, ""
        finally:
            for _, future in ahead:
                future.cancel()

    def _paging_restart(self, what: str, reason: str, attempt: int) -> None:
        """Count and log a fresh start of ``what`` (a job, the list) that changed while paged."""
        self.stats._add("paging_restarts")
        log.info(
            "%s changed while paged (%s); reading it again (%d/%d)",
            what,
            reason,
            attempt,
            self.max_paging_restarts,
        )

    def _listed_job(self, obj: Any, position: int) -> Job | None:
        """The listed job, or None after recording in ``skipped`` why the item is none."""
        if not isinstance(obj, Mapping):
            reason = f"not an object but a JSON {type(obj).__name__}"
        else:
            try:
                return Job.from_api(obj)
            except ValueError:
                reason = "an object without a string job_id"
        log.warning("item %d of the job list is %s; left out", position, reason)
        self.stats._skip(f"<list item {position}>", reason)
        return None

    # ------------------------------------------------------------------------ one complete job

    def fetch_job_json(self, job_id: str) -> JobJson:
        """The complete job as JSON bytes (values exactly as the API sent them), joined from its
        pages without parsing the segment entities: what the landing stores. A job that is not
        completed comes back as the API sent it.

        Raises NotFoundError for 404 and InconsistentPagingError when the job keeps changing
        between pages after ``max_paging_restarts`` fresh starts; ValueError for a body without
        a string job_id.

        A job whose pages never add up to its ``total`` (an empty page before it, or more
        entities than it says) comes back as far as its pages went, after the fresh starts: the
        tables flag it (``extract_jobs.problem``) rather than the day failing."""
        if not isinstance(job_id, str) or not job_id:
            raise ValueError("job_id must be a non-empty string")
        reason = ""
        for attempt in range(self.max_paging_restarts + 1):
            if attempt:
                self._paging_restart(f"job {job_id}", reason, attempt)
            try:
                job = self._assemble(job_path(job_id))
            except _PagesShort as exc:
                reason, job = str(exc), exc.partial
                if attempt < self.max_paging_restarts:
                    continue
                log.warning("job %s: %s on every attempt; landed as far as it went", job_id, reason)
            except _PagingChanged as exc:
                reason = str(exc)
                continue
            self.stats._add("jobs_fetched")
            return job
        raise InconsistentPagingError(
            f"job {job_id}: pages stayed inconsistent after {self.max_paging_restarts + 1}"
            f" attempts (last: {reason})"
        )

    def _page_url(self, job_url: str, offset: int, limit: int) -> str:
        """``job_url`` with the query of the page at ``offset`` (nothing in it needs quoting)."""
        flags = self._page_flags if offset else self._first_page_flags
        return f"{job_url}?limit={limit}&offset={offset}{flags}"

    def _assemble(self, path: str) -> JobJson:
        """One pass over the job's pages, following what the server returned: each page starts
        where the entities received so far end, pages are asked with the ``limit`` the first
        page reports (a server may cap pages lower than asked), and the job is complete when the
        entities add up to ``total``. Pages after the first are fetched concurrently at the
        offsets the first page's size implies; one that is not where the entities received end
        (a page came back shorter or longer) is dropped and that part read page by page."""
        job_url = self.base_url + path
        first = self._get(self._page_url(job_url, 0, self.page_size), parse_page)
        job_id = first.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"extract job without a string job_id: {first.body[:200]!r}")
        if first.get("status") != "completed":
            return JobJson(job_id, len(first.segments), first.body)
        total = first.get("total")
        received = len(first.segments)
        pages = [first]
        if not _count(total) or not received or received >= total:
            # Nothing (more) to page by: the job is as the first page describes it, and the
            # tables flag a completed job without a total or whose entities do not add up to it.
            if not _count(total) or received != total:
                log.warning(
                    "job %s: completed, total %r, %d segment entities", job_id, total, received
                )
            return JobJson(job_id, received, join_pages(pages))
        limit = first.get("limit")
        ask = min(self.page_size, limit) if _count(limit) and limit else self.page_size
        offsets = list(range(received, total, min(ask, received)))
        for offset, page in zip(offsets, self._get_pages(job_url, offsets, ask), strict=True):
            if offset != received:
                break
            received = self._take(page, offset, total, pages, job_id)
        while received < total:
            page = self._get(self._page_url(job_url, received, ask), parse_page)
            received = self._take(page, received, total, pages, job_id)
        return JobJson(job_id, received, join_pages(pages))

    def _get_pages(self, job_url: str, offsets: list[int], limit: int) -> list[Page]:
        """Pages after the first, concurrently when allowed; the slots still cap all requests."""
        urls = [self._page_url(job_url, o, limit) for o in offsets]
        if not urls:
            return []
        if not self.concurrent_pages or self.max_concurrency == 1 or len(urls) == 1:
            return [self._get(url, parse_page) for url in urls]
        pool = self._pages_executor()
        futures = [pool.submit(self._get, url, parse_page) for url in urls]
        try:
            return [f.result() for f in futures]
        finally:
            for f in futures:
                f.cancel()

    def _pages_executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._page_pool is None:
                self._page_pool = ThreadPoolExecutor(
                    max_workers=self.max_concurrency, thread_name_prefix="cloudglue-page"
                )
            return self._page_pool

    def _take(self, page: Page, offset: int, total: int, pages: list[Page], job_id: str) -> int:
        """Append the page read at ``offset`` to ``pages``; returns the entities received."""
        if page.get("status") != "completed":
            raise _PagingChanged(f"status became {page.get('status')!r} at offset {offset}")
        if page.get("total") != total:
            raise _PagingChanged(f"total changed from {total} to {page.get('total')!r}")
        if "offset" in page and page.get("offset") != offset:
            raise _PagingChanged(f"asked for offset {offset}, got {page.get('offset')!r}")
        received = offset + len(page.segments)
        if page.segments and received <= total:
            pages.append(page)
            return received
        partial = JobJson(job_id, offset, join_pages(pages))
        if not page.segments:
            raise _PagesShort(f"page at offset {offset} was empty; total is {total}", partial)
        raise _PagesShort(f"pages held {received} segment entities; total is {total}", partial)

    # ------------------------------------------------------------------------------ many jobs

    def fetch_each(
        self, fetch: Callable[[str], T], job_ids: Iterable[str]
    ) -> Iterator[tuple[str, T | Exception]]:
        """``(job_id, fetch(job_id) or the exception it raised)`` per job, as each finishes.

        Ids are taken from ``job_ids`` lazily, so at most ``max_concurrency`` jobs are being
        fetched or waiting to be yielded (memory follows the concurrency, not the day's size),
        and a caller can stop taking more by ending its iterator.
        """
        ids = iter(job_ids)
        running: dict[Future[T], str] = {}
        pool = ThreadPoolExecutor(
            max_workers=self.max_concurrency, thread_name_prefix="cloudglue-job"
        )
        try:
            while True:
                for job_id in ids:
                    running[pool.submit(fetch, job_id)] = job_id
                    if len(running) >= self.max_concurrency:
                        break
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job_id = running.pop(future)
                    exc = future.exception()
                    yield job_id, exc if isinstance(exc, Exception) else future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------- webhooks, job summary

    def job_summary(self, job_id: str) -> dict[str, Any]:
        """A job's listing object (``status``, ``created_at``, ...) from one small request:
        its first page of at most one segment entity, without the paging keys and ``data``.
        Raises NotFoundError for 404."""
        body = self._get(f"{self.base_url}{job_path(job_id)}?limit=1&offset=0")
        for name in ("data", "total", "limit", "offset"):
            body.pop(name, None)
        return body

    def list_webhooks(self) -> list[dict[str, Any]]:
        """Every webhook of the account (``GET /webhooks``, all pages), oldest first."""
        hooks: list[dict[str, Any]] = []
        while True:
            query = urlencode({"limit": MAX_PAGE_SIZE, "offset": len(hooks), "sort": "asc"})
            page = self._get(f"{self.base_url}/webhooks?{query}")
            items = page.get("data")
            if not isinstance(items, list):
                raise ApiError(
                    "GET /webhooks answered without a data list", status=200, url=self.base_url
                )
            hooks += items
            if not items or len(hooks) >= int(page.get("total") or 0):
                return hooks

    def create_webhook(
        self, endpoint: str, events: Iterable[str], description: str | None = None
    ) -> dict[str, Any]:
        """``POST /webhooks``: the created webhook, its ``webhook_secret`` included."""
        body: dict[str, Any] = {"endpoint": endpoint, "subscribed_events": list(events)}
        if description is not None:
            body["description"] = description
        return self._write("POST", "/webhooks", body)

    def update_webhook(self, webhook_id: str, **fields: Any) -> dict[str, Any]:
        """``PUT /webhooks/{id}`` with ``fields`` (endpoint, subscribed_events, description,
        active): the updated webhook."""
        return self._write("PUT", "/webhooks/" + quote(webhook_id, safe=""), fields)

    def delete_webhook(self, webhook_id: str) -> dict[str, Any]:
        """``DELETE /webhooks/{id}``; NotFoundError when there is no such webhook."""
        return self._write("DELETE", "/webhooks/" + quote(webhook_id, safe=""), None)

    def _write(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """One request that changes something: sent once (never retried, so never applied
        twice), its answer read as ``_get``'s are."""
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
                    retries=urllib3.Retry(total=None, connect=0, read=False, status=0, redirect=0),
                    redirect=False,
                    timeout=self._timeouts,
                    preload_content=True,
                )
            except (HTTPError, OSError) as exc:
                raise TransportError(
                    f"{shown}: {type(exc).__name__}", method=method, url=url
                ) from None
        self.stats._add_request(len(response.data))
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

    # ------------------------------------------------------------------------------- transport

    def _shown(self, path: str, params: Mapping[str, Any]) -> str:
        """The URL as it may appear in messages (the key is in a header, never here)."""
        query = urlencode(params)
        return self.base_url + path + ("?" + query if query else "")

    def _snippet(self, content: bytes, limit: int = SNIPPET_CHARS) -> str:
        return body_snippet(content, (self._key,), limit)

    def _get(
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
            self.stats._add_retry(outcome.cause, delay)
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

    def _attempt(self, url: str, parse: Callable[[bytes], T]) -> T | _Retryable:
        """One request. Failures are classified as requests classified them: before the status
        line a timeout is ``timeout``, any other connection or protocol failure ``connection``;
        while reading the body a cut (short ``Content-Length``, broken chunking, bad encoding)
        is ``incomplete_body`` and a timeout ``connection``; a request not complete within
        ``request_deadline`` is ``timeout``; TLS failures are never retried."""
        if self._rate is not None:
            self.stats._add("throttle_seconds", self._rate.acquire())
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
                        self.stats._add_request(len(content))
                        return self._interpret(
                            response.status, response.headers, content, url, parse
                        )
                    failure = _Retryable(
                        "timeout", f"not complete within the {self.request_deadline:g}s deadline"
                    )
                finally:
                    response.release_conn()
        self.stats._add_request(0)
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


def _day_start_ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()) * 1000
