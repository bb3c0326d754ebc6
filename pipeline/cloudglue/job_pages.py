"""One complete job from its pages (every segment-entity page, chapters and shots from the first),
read again from the start when the job changed while paged, and many jobs fetched concurrently
with bounded memory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar
from urllib.parse import quote

from pipeline.cloudglue.errors import InconsistentPagingError
from pipeline.cloudglue.pages import JobJson, Page, join_pages, parse_page
from pipeline.cloudglue.paging import Paging, is_count

log = logging.getLogger("pipeline.cloudglue")
T = TypeVar("T")


def job_path(job_id: str) -> str:
    """The URL path of one job; the id is percent-encoded so ``/``, ``?`` or ``#`` stay in it.

    An id of ``.`` or ``..`` would be resolved away as a dot segment, so its dots are encoded
    as well (the transport sends ``%2E`` as it is; requests would turn it back into ``.``).
    """
    encoded = quote(job_id, safe="")
    if job_id in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return "/extract/" + encoded


class _PagingChanged(Exception):
    """The job changed while its pages were read; fetching it again may succeed."""


class _PagesShort(_PagingChanged):
    """The pages did not add up to ``total``; ``partial`` is the job as far as they went."""

    def __init__(self, reason: str, partial: JobJson) -> None:
        super().__init__(reason)
        self.partial = partial


class JobPages:
    """Reads whole jobs through ``paging``; ``include_thumbnails`` asks for each segment
    entity's thumbnails."""

    def __init__(self, paging: Paging, *, include_thumbnails: bool) -> None:
        self._paging = paging
        self._get = paging.get
        self.stats = paging.stats
        # The query of a job's pages after ``limit`` and ``offset``. Chapters and shots are asked
        # for on the first page only: the complete job takes them from it, and every later page
        # would repeat them in full. Thumbnails are per segment entity.
        thumbnails = "&include_thumbnails=true" if include_thumbnails else ""
        self._first_page_flags = "&include_chapters=true&include_shots=true" + thumbnails
        self._page_flags = thumbnails

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
        for attempt in range(self._paging.max_restarts + 1):
            if attempt:
                self._paging.restart(f"job {job_id}", reason, attempt)
            try:
                job = self._assemble(job_path(job_id))
            except _PagesShort as exc:
                reason, job = str(exc), exc.partial
                if attempt < self._paging.max_restarts:
                    continue
                log.warning("job %s: %s on every attempt; landed as far as it went", job_id, reason)
            except _PagingChanged as exc:
                reason = str(exc)
                continue
            self.stats.add("jobs_fetched")
            return job
        raise InconsistentPagingError(
            f"job {job_id}: pages stayed inconsistent after {self._paging.max_restarts + 1}"
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
        job_url = self._paging.base_url + path
        first = self._get(self._page_url(job_url, 0, self._paging.page_size), parse_page)
        job_id = first.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"extract job without a string job_id: {first.body[:200]!r}")
        if first.get("status") != "completed":
            return JobJson(job_id, len(first.segments), first.body)
        total = first.get("total")
        received = len(first.segments)
        pages = [first]
        if not is_count(total) or not received or received >= total:
            # Nothing (more) to page by: the job is as the first page describes it, and the
            # tables flag a completed job without a total or whose entities do not add up to it.
            if not is_count(total) or received != total:
                log.warning(
                    "job %s: completed, total %r, %d segment entities", job_id, total, received
                )
            return JobJson(job_id, received, join_pages(pages))
        limit = first.get("limit")
        size = self._paging.page_size
        ask = min(size, limit) if is_count(limit) and limit else size
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
        if not self._paging.concurrent_pages or self._paging.max_workers == 1 or len(urls) == 1:
            return [self._get(url, parse_page) for url in urls]
        pool = self._paging.executor()
        futures = [pool.submit(self._get, url, parse_page) for url in urls]
        try:
            return [f.result() for f in futures]
        finally:
            for f in futures:
                f.cancel()

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

    def job_summary(self, job_id: str) -> dict[str, Any]:
        """A job's listing object (``status``, ``created_at``, ...) from one small request:
        its first page of at most one segment entity, without the paging keys and ``data``.
        Raises NotFoundError for 404."""
        body = self._get(f"{self._paging.base_url}{job_path(job_id)}?limit=1&offset=0")
        for name in ("data", "total", "limit", "offset"):
            body.pop(name, None)
        return body


def fetch_each(
    fetch: Callable[[str], T], job_ids: Iterable[str], concurrency: int
) -> Iterator[tuple[str, T | Exception]]:
    """``(job_id, fetch(job_id) or the exception it raised)`` per job, as each finishes.

    Ids are taken from ``job_ids`` lazily, so at most ``concurrency`` jobs are being
    fetched or waiting to be yielded (memory follows the concurrency, not the day's size),
    and a caller can stop taking more by ending its iterator.
    """
    ids = iter(job_ids)
    running: dict[Future[T], str] = {}
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cloudglue-job")
    try:
        while True:
            for job_id in ids:
                running[pool.submit(fetch, job_id)] = job_id
                if len(running) >= concurrency:
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
