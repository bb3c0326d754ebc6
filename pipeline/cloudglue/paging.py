"""What the job list and a job's pages share when they are paged: the API's largest page, the
count check of ``total``/``limit``, the threads that fetch pages ahead, and how a fresh start
after the paging changed is counted and logged."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline.cloudglue.calls import Calls

log = logging.getLogger("pipeline.cloudglue")

MAX_PAGE_SIZE = 100


def is_count(value: Any) -> bool:
    """Whether ``value`` is a JSON integer >= 0 (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class Paging:
    """How one client reads what comes in pages: through ``calls``, ``page_size`` items a page,
    pages after the first fetched ahead on threads shared by every read when
    ``concurrent_pages`` (their requests still hold the client's slots), and up to
    ``max_restarts`` fresh starts of a read that saw the pages change."""

    def __init__(
        self,
        calls: Calls,
        *,
        page_size: int,
        concurrent_pages: bool,
        max_restarts: int,
        max_workers: int,
    ) -> None:
        self.get = calls.get
        self.stats = calls.stats
        self.base_url = calls.base_url
        self.page_size = page_size
        self.concurrent_pages = concurrent_pages
        self.max_restarts = max_restarts
        self.max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        """The page threads, started on first use."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.max_workers, thread_name_prefix="cloudglue-page"
                )
            return self._pool

    def restart(self, what: str, reason: str, attempt: int) -> None:
        """Count and log a fresh start of ``what`` (a job, the list) that changed while paged."""
        self.stats.add("paging_restarts")
        log.info(
            "%s changed while paged (%s); reading it again (%d/%d)",
            what,
            reason,
            attempt,
            self.max_restarts,
        )

    def close(self) -> None:
        """Cancel the page fetches not started and wait for the rest."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
