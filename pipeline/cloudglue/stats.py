"""Counters of one client's run (requests, retries, paging restarts, skipped list items), for
the Dagster layer to report."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


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

    def add_request(self, received: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes_received += received

    def add_retry(self, cause: str, delay: float) -> None:
        with self._lock:
            self.retries_by_cause[cause] += 1
            self.backoff_seconds += delay

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def skip(self, job_id: str, reason: str) -> None:
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
