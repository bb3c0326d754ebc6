"""The receiver over real HTTP: only deliveries with the secret are logged, each event once,
nothing is lost when it dies between logging and answering, and bad bodies are refused."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.webhooks import WebhookReceiver
from pipeline_tests.stores import PROJECT, walk
from pipeline_tests.webhooks.util import SECRET, deliver, event, logged


@pytest.fixture
def receiver(local_or_bucket: str):
    with WebhookReceiver(local_or_bucket, SECRET, port=0) as receiver:
        yield receiver


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", SECRET[:-1]])
def test_wrong_or_missing_secret_is_401_and_nothing_is_stored(
    receiver, local_or_bucket, secret, caplog
) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.webhooks"):
        r = deliver(receiver.url, event(), secret=secret)
    assert r.status_code == 401
    assert walk(local_or_bucket, "webhooks") == []
    (line,) = [rec.getMessage() for rec in caplog.records if "refused" in rec.getMessage()]
    assert SECRET not in line and (not secret or secret not in line)


def test_a_duplicate_delivery_is_one_event(receiver, local_or_bucket) -> None:
    body = event()
    first, second = deliver(receiver.url, body), deliver(receiver.url, body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    assert logged(local_or_bucket) == [body]


def test_a_thousand_deliveries_from_16_senders_store_every_event_once(
    receiver, local_or_bucket
) -> None:
    """500 events, each delivered twice, in a shuffled order by 16 senders at once."""
    bodies = [event(job_id=f"job-{n}") for n in range(500)]
    deliveries = bodies * 2
    random.Random(3).shuffle(deliveries)

    def send(body: dict) -> int:
        return deliver(receiver.url, body).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, deliveries))
    assert statuses == [200] * 1000
    stored = Counter(e["event_id"] for e in logged(local_or_bucket))
    assert stored == Counter({b["event_id"]: 1 for b in bodies})


_CRASHING_RECEIVER = """
import os, signal, sys
from pipeline.webhooks import WebhookReceiver

def die(self, h, new):
    os.kill(os.getpid(), signal.SIGKILL)   # stored, never answered

WebhookReceiver._acknowledge = die
receiver = WebhookReceiver(sys.argv[1], sys.argv[2], port=0).start()
print(receiver.url, flush=True)
receiver.wait()
"""


def test_a_receiver_killed_after_storing_and_before_answering_dedupes_the_retry(
    local_or_bucket,
) -> None:
    body = event()
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_RECEIVER, local_or_bucket, SECRET],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": PROJECT},
    )
    try:
        url = child.stdout.readline().strip()
        with pytest.raises(requests.ConnectionError):
            deliver(url, body)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        child.kill()
        child.wait()
    assert logged(local_or_bucket) == [body]
    with WebhookReceiver(local_or_bucket, SECRET, port=0) as again:
        retry = deliver(again.url, body)
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    assert logged(local_or_bucket) == [body]


def test_a_receiver_killed_between_its_two_writes_is_completed_by_the_retry(tmp_path) -> None:
    """The first delivery made the event's marker and died before the event file: the retry
    logs it, under the day the marker names."""
    from pipeline.storage.layout import webhook_seen_key
    from pipeline.storage.store import open_store
    from pipeline_tests.webhooks.util import utc_today

    body = event()
    marker = f'{{"event_id": "{body["event_id"]}", "received_date": "{utc_today()}"}}'
    assert open_store(tmp_path).create(webhook_seen_key(body["event_id"]), marker.encode())
    with WebhookReceiver(tmp_path, SECRET, port=0) as receiver:
        r = deliver(receiver.url, body)
    assert r.status_code == 200 and r.json()["duplicate"] is False
    assert logged(tmp_path) == [body]


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"event_id": "e", "event_type": "extract.job.completed"}', 400),
        (b'{"event_id": "", "event_type": "x", "payload": {}}', 400),
        (b'{"event_id": 7, "event_type": "x", "payload": {}}', 400),
        (b'{"event_id": "e", "event_type": "x", "payload": []}', 400),
        (b"{" + b" " * (256 * 1024) + b"}", 413),
    ],
)
def test_bodies_that_are_no_event_or_too_big_are_refused(tmp_path, raw, status) -> None:
    with WebhookReceiver(tmp_path, SECRET, port=0) as receiver:
        r = deliver(receiver.url, raw)
    assert r.status_code == status and set(r.json()) == {"error"}
    assert walk(tmp_path, "webhooks") == []


def test_other_methods_are_405(tmp_path) -> None:
    with WebhookReceiver(tmp_path, SECRET, port=0) as receiver:
        assert requests.get(receiver.url, timeout=10).status_code == 405


def test_an_unwritable_log_answers_503_so_the_sender_retries(tmp_path) -> None:
    blocked = tmp_path / "data"
    blocked.write_text("a file where the data dir should be")
    with WebhookReceiver(blocked, SECRET, port=0) as receiver:
        r = deliver(receiver.url, event())
    assert r.status_code == 503


_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        _ANY_JSON,
        st.fixed_dictionaries(
            {
                "event_id": _ANY_JSON | st.text(max_size=12),
                "event_type": _ANY_JSON | st.text(max_size=12),
                "payload": _ANY_JSON,
            }
        ),
    )
)
def test_any_json_body_is_logged_exactly_when_it_is_an_event(tmp_path_factory, body) -> None:
    data_dir = tmp_path_factory.mktemp("data")
    with WebhookReceiver(data_dir, SECRET, port=0) as receiver:
        r = deliver(receiver.url, body)
    is_event = (
        isinstance(body, dict)
        and isinstance(body.get("event_id"), str)
        and body["event_id"] != ""
        and isinstance(body.get("event_type"), str)
        and body["event_type"] != ""
        and isinstance(body.get("payload"), dict)
    )
    assert r.status_code == (200 if is_event else 400)
    expected = [{k: body[k] for k in ("event_id", "event_type", "payload")}] if is_event else []
    assert logged(data_dir) == expected


def test_the_receiver_repr_hides_the_secret(tmp_path) -> None:
    receiver = WebhookReceiver(tmp_path, SECRET, port=0)
    try:
        assert SECRET not in repr(receiver)
    finally:
        receiver.stop()
