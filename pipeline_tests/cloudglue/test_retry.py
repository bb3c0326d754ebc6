import datetime as dt
import email.utils
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cloudglue.retry import RetryPolicy, TokenBucket, parse_retry_after

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


def test_token_bucket_allows_a_burst_then_paces_to_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(10, burst=2, clock=clock, sleep=clock.sleep)
    slept = [bucket.acquire() for _ in range(12)]
    assert slept[:2] == [0, 0]
    assert all(s == pytest.approx(0.1) for s in slept[2:])
    assert clock.now == pytest.approx(1.0)


def test_token_bucket_refills_while_idle_but_not_beyond_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(1, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        bucket.acquire()
    clock.now += 100
    assert [bucket.acquire() for _ in range(3)] == [0, 0, 0]
    assert bucket.acquire() == pytest.approx(1.0)
