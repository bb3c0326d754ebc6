import datetime as dt
import email.utils
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cloudglue.retry import RateLimiter, RetryPolicy, parse_retry_after

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("Sat, 28 Nov 2026 12:00:30 GMT", 30.0),
        ("Sat, 28 Nov 2026 11:00:00 GMT", 0.0),  # in the past: no wait, not negative
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1e3", None),
        ("nan", None),
        ("Sat, 99 Nov 2026 12:00:30 GMT", None),
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header, now=NOW) == expected


def test_parse_retry_after_http_date_uses_the_current_time_by_default():
    soon = email.utils.format_datetime(
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=100), usegmt=True
    )
    assert 90 <= parse_retry_after(soon) <= 100


@given(st.text(max_size=60))
def test_parse_retry_after_never_raises_on_any_text(header):
    value = parse_retry_after(header, now=NOW)
    assert value is None or value >= 0


@given(st.integers(min_value=0, max_value=10**9))
def test_parse_retry_after_reads_any_delay_seconds(seconds):
    assert parse_retry_after(str(seconds), now=NOW) == float(seconds)


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    base=st.floats(min_value=0.001, max_value=5),
    cap=st.floats(min_value=5, max_value=100),
    seed=st.integers(),
)
def test_jittered_backoff_stays_between_zero_and_the_capped_ceiling(attempt, base, cap, seed):
    policy = RetryPolicy(backoff_base=base, backoff_max=cap)
    delay = policy.delay(attempt, None, random.Random(seed))
    assert 0 <= delay <= min(cap, base * 2 ** min(attempt, 60))


def test_ceiling_doubles_then_caps():
    policy = RetryPolicy(backoff_base=0.5, backoff_max=4)
    assert [policy.ceiling(a) for a in range(6)] == [0.5, 1, 2, 4, 4, 4]


@given(
    attempt=st.integers(min_value=0, max_value=50),
    retry_after=st.floats(min_value=0, max_value=1e9),
)
def test_retry_after_is_honoured_within_floor_and_cap(attempt, retry_after):
    policy = RetryPolicy(backoff_base=0.1, backoff_max=10, retry_after_max=60)
    delay = policy.delay(attempt, retry_after)
    assert policy.ceiling(attempt) <= delay <= 60
    if policy.ceiling(attempt) <= retry_after <= 60:
        assert delay == retry_after


def test_retry_after_zero_still_backs_off_exponentially():
    policy = RetryPolicy(backoff_base=0.25, backoff_max=30)
    assert [policy.delay(a, 0.0) for a in range(4)] == [0.25, 0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"backoff_base": 0}, {"backoff_base": 5, "backoff_max": 1}],
)
def test_policy_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _most_in_any_window(starts: list[float], window: float = 1.0) -> int:
    return max(sum(1 for u in starts if t <= u < t + window) for t in starts)


@pytest.mark.parametrize("rate", [0.5, 1, 2.5, 3, 10])
@pytest.mark.parametrize("gap", [0.0, 0.3, 1.0, 100.0])
def test_rate_limiter_never_starts_more_than_the_rate_in_any_window(rate, gap):
    """From the very first start and again after an idle gap: no burst on top of the rate."""
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    starts = []
    for n in range(30):
        if n == 15:
            clock.now += gap
        limiter.acquire()
        starts.append(clock.now)
    assert _most_in_any_window(starts) <= max(1, int(rate))
    # ...and it still starts as many as the rate allows.
    assert _most_in_any_window(starts, max(1.0, 1 / rate)) == max(1, int(rate))
