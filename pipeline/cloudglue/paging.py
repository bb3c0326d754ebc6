"""What the job list and a job's pages share when they are paged: the API's largest page, the
count check of ``total``/``limit``, the threads that fetch pages ahead, and how a fresh start
after the paging changed is counted and logged."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline.cloudglue.stats import ClientStats

log = logging.getLogger("pipeline.cloudglue")

MAX_PAGE_SIZE = 100


def is_count(value: Any) -> bool:
    """Whether ``value`` is a JSON integer >= 0 (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class PageThreads:
    """The threads that fetch pages after the first, started on first use and shared by every
    paged read of one client (their requests still hold the client's slots)."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.max_workers, thread_name_prefix="cloudglue-page"
                )
            return self._pool

    def close(self) -> None:
        """Cancel what has not started and wait for the rest."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def count_restart(stats: ClientStats, what: str, reason: str, attempt: int, limit: int) -> None:
    """Count and log a fresh start of ``what`` (a job, the list) that changed while paged."""
    stats._add("paging_restarts")
    log.info("%s changed while paged (%s); reading it again (%d/%d)", what, reason, attempt, limit)
