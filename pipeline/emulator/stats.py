"""The emulator's request counters (``EmulatorServer.stats``)."""

from __future__ import annotations

import threading
import time
from collections import deque


class EmulatorStats:
    """Request counters, safe to read from any thread; ``reset()`` starts a new measurement.

    ``max_in_flight``: most requests received and not yet answered at once (a request counts
    as answered just before the last bytes of its response are written, so a client that starts
    its next request on reading a response is never counted twice). ``max_per_second``: most
    requests received within any window shorter than one second.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self.requests = 0
        self.max_in_flight = 0
        self.max_per_second = 0
        self.faults: dict[str, int] = {}
        self._recent: deque[float] = deque()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.max_in_flight = self.in_flight
            self.max_per_second = 0
            self._recent.clear()
            self.faults = {}

    def request_received(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            self._recent.append(now)
            self.max_per_second = max(self.max_per_second, len(self._recent))

    def request_answered(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def fault_injected(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] = self.faults.get(kind, 0) + 1
