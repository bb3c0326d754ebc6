"""Retry timing and request pacing for the Cloudglue client.

Kept apart from the HTTP code so the timing rules (full-jitter backoff, ``Retry-After`` with a
floor, a bounded total wait, a rate cap) can be tested without a network.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.settings import DEFAULT_BACKOFF_SECONDS, DEFAULT_MAX_RETRIES

_DELAY_SECONDS = re.compile(r"\s*(\d{1,12}(?:\.\d{1,9})?)\s*")
# 2**60 seconds is far beyond any cap; stopping the exponent there avoids float overflow.
_MAX_EXPONENT = 60
# Sleeping exactly until a start leaves the window can land a rounding error short of it.
_EPSILON = 1e-9


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or None when absent or unreadable.

    Accepts delay-seconds (decimals tolerated) and HTTP dates; a date in the past means 0.
    """
    if value is None:
        return None
    match = _DELAY_SECONDS.fullmatch(value)
    if match:
        return float(match.group(1))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now if now is not None else dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait before each retry, and when to stop retrying one request.

    ``backoff_base`` doubles per attempt up to ``backoff_max``; without ``Retry-After`` the wait
    is drawn uniformly from [0, that ceiling] (full jitter). A ``Retry-After`` is honoured but
    never below the un-jittered ceiling (so ``0`` cannot burn every attempt at once) and never
    above ``retry_after_max``. ``max_total_wait`` bounds the sleep spent on one request.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = DEFAULT_BACKOFF_SECONDS
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    max_total_wait: float = 120.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not 0 < self.backoff_base <= self.backoff_max:
            raise ValueError("need 0 < backoff_base <= backoff_max")
        if self.retry_after_max < 0 or self.max_total_wait < 0:
            raise ValueError("retry_after_max and max_total_wait must be >= 0")

    def ceiling(self, attempt: int) -> float:
        """The largest backoff for the given 0-based retry attempt."""
        exponent = min(max(attempt, 0), _MAX_EXPONENT)
        return min(self.backoff_max, self.backoff_base * 2.0**exponent)

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to sleep before retry number ``attempt`` (0-based)."""
        ceiling = self.ceiling(attempt)
        if retry_after is None:
            return (rng or random).uniform(0.0, ceiling)
        return min(max(retry_after, ceiling), max(self.retry_after_max, ceiling))


class RateLimiter:
    """Thread-safe cap on events started: never more than ``rate`` in any ``window`` seconds.

    A sliding window of the last starts, not a token bucket: a bucket lets a burst through on top
    of the rate (at the start, and again after every idle gap). With ``rate`` >= 1 at most
    ``floor(rate)`` events start per window; below 1, one per ``window / rate`` seconds.
    """

    def __init__(
        self,
        rate: float,
        window: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0 or not window > 0:
            raise ValueError("rate and window must be > 0")
        self.rate = float(rate)
        self.per_span = max(1, int(rate))
        self.span = window if rate >= 1 else window / rate
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until an event may start and record its start; returns the seconds slept."""
        slept = 0.0
        while True:
            with self._lock:
                now = self._clock()
                starts = self._starts
                while starts and now - starts[0] >= self.span - _EPSILON:
                    starts.popleft()
                if len(starts) < self.per_span:
                    starts.append(now)
                    return slept
                wait = starts[0] + self.span - now
            self._sleep(wait)
            slept += wait
