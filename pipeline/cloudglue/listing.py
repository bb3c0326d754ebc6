"""The job list of a day range: ``GET /extract`` paged in one consistent pass (a pass that saw
the list move is read again), deduplicated, each job kept on its UTC day by ``created_at``."""

from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlencode

from pipeline.cloudglue.errors import ApiError, InconsistentPagingError
from pipeline.cloudglue.models import Job
from pipeline.cloudglue.paging import Paging, is_count

log = logging.getLogger("pipeline.cloudglue")

_ENDED_SHORT = "the list ended"


def _identity(item: Any) -> Any:
    """What identifies a list item at a page edge: its ``job_id`` (a job's status may change
    between pages without moving it), else the item itself."""
    return item.get("job_id") if isinstance(item, Mapping) else item


def _day_start_ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()) * 1000


class JobListing:
    """Lists jobs through ``paging``."""

    def __init__(self, paging: Paging) -> None:
        self._paging = paging
        self._get = paging.get
        self.stats = paging.stats

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
            "limit": self._paging.page_size,
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
                self.stats.skip(job.job_id, "created_at missing or not a number")
            elif low_ms <= job.created_at < high_ms:
                jobs.append(job)
        self.stats.add("jobs_listed", len(jobs))
        return jobs

    def _list_items(self, params: Mapping[str, Any]) -> list[Any]:
        """Every item of the list, from a pass over its pages in which nothing moved.

        A pass that saw the list change (``_list_pass``) is read again, at most
        ``max_paging_restarts`` times. A list that ends short of its ``total`` is taken when two
        passes in a row agree on it (a ``total`` that lies, not a list that shrank)."""
        shown = self._shown("/extract", params)
        previous: tuple[list[Any], Any] | None = None
        reason = ""
        for attempt in range(self._paging.max_restarts + 1):
            if attempt:
                self._paging.restart("the job list", reason, attempt)
            items, total, reason = self._list_pass(params)
            if not reason:
                return items
            if reason.startswith(_ENDED_SHORT) and previous == (items, total):
                log.warning("GET %s: %s on two passes; taken as it is", shown, reason)
                return items
            previous = (items, total) if reason.startswith(_ENDED_SHORT) else None
        raise InconsistentPagingError(
            f"GET {shown}: the job list kept changing while it was paged, "
            f"{self._paging.max_restarts + 1} passes (last: {reason}); nothing was taken from it"
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
        if is_count(total) and size and self._paging.concurrent_pages:
            pool = self._paging.executor()
            ahead.extend(
                (at, pool.submit(get, at)) for at in range(stride, total - (size > 1), stride)
            )
        try:
            while size and not (is_count(total) and len(items) >= total):
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
                    if is_count(total) and len(items) < total:
                        return items, total, f"{_ENDED_SHORT} at {len(items)} of total {total}"
                    break
                items.extend(new)
            return items, total, ""
        finally:
            for _, future in ahead:
                future.cancel()

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
        self.stats.skip(f"<list item {position}>", reason)
        return None

    def _shown(self, path: str, params: Mapping[str, Any]) -> str:
        """The URL as it may appear in messages (the key is in a header, never here)."""
        query = urlencode(params)
        return self._paging.base_url + path + ("?" + query if query else "")
