"""The event log's readers: each event read once through the cursor, across restarts and the
UTC day's end, in a local data dir and a bucket."""

from __future__ import annotations

import datetime as dt

import orjson

from pipeline.webhooks import EventLog, parse_event
from pipeline_tests.webhooks.util import event


def _event(**kwargs):
    return parse_event(orjson.dumps(event(**kwargs)))


def _ids(events) -> list[str]:
    return sorted(e.event_id for e in events)


def test_each_event_is_read_once_and_a_restarted_reader_resumes(local_or_bucket) -> None:
    today = dt.date(2026, 3, 2)
    noon = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
    log = EventLog(local_or_bucket)
    first = [_event() for _ in range(3)]
    assert all(log.record(e, noon) for e in first)
    read, cursor = log.read_new(None, today)
    assert _ids(read) == _ids(first)
    assert log.read_new(cursor, today)[0] == []
    later = _event()
    assert log.record(later, noon)
    assert not log.record(first[0], noon)  # a duplicate is not read again
    # A new reader (the daemon restarted) with the stored cursor sees only what is new.
    read, cursor = EventLog(local_or_bucket).read_new(cursor, today)
    assert _ids(read) == [later.event_id]


def test_events_of_yesterday_are_read_after_midnight_and_old_days_leave_the_cursor(
    local_or_bucket,
) -> None:
    log = EventLog(local_or_bucket)
    late = _event()
    log.record(late, dt.datetime(2026, 3, 1, 23, 59, tzinfo=dt.UTC))
    read, cursor = log.read_new(None, dt.date(2026, 3, 1))
    assert _ids(read) == [late.event_id]
    # A retry of a delivery first received (and logged) yesterday stays where it was.
    assert not log.record(late, dt.datetime(2026, 3, 2, 0, 1, tzinfo=dt.UTC))
    after = _event()
    log.record(after, dt.datetime(2026, 3, 2, 0, 1, tzinfo=dt.UTC))
    read, cursor = log.read_new(cursor, dt.date(2026, 3, 2))
    assert _ids(read) == [after.event_id]
    read, cursor = log.read_new(cursor, dt.date(2026, 3, 3))
    assert read == [] and "2026-03-01" not in orjson.loads(cursor)
