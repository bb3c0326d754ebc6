"""The emulator's webhooks over real HTTP: the endpoints, and deliveries of job status changes
(the secret header, retries, the duplicate fault, loopback only), ``complete_after``, DELETE of a
job, and the metadata-mode job."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from pipeline.emulator import Dataset, EmulatorServer, FaultConfig
from pipeline.settings import WEBHOOK_SECRET_HEADER
from pipeline.tables import build_frames
from pipeline.webhooks import WebhookReceiver
from pipeline_tests.conftest import EMULATOR_API_KEY, EMULATOR_END_DATE
from pipeline_tests.emulator.util import job_url, session
from pipeline_tests.webhooks.util import logged, wait_for_events

FAST_RETRIES = (0.01, 0.01, 0.01)


class Endpoint:
    """A loopback HTTP endpoint answering the statuses in ``answers`` in turn (then 200),
    recording each POST's event and secret header."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.posts: list[tuple[dict[str, Any], str | None]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.posts.append((body, self.headers.get(WEBHOOK_SECRET_HEADER)))
                status = endpoint.answers.pop(0) if endpoint.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def endpoint():
    e = Endpoint()
    yield e
    e.close()


def _serve(dataset: Dataset, **kwargs: Any) -> EmulatorServer:
    return EmulatorServer(
        dataset, api_key=EMULATOR_API_KEY, webhook_retry_delays=FAST_RETRIES, **kwargs
    )


def _register(server: EmulatorServer, url: str, events: list[str] | None = None) -> dict:
    r = session().post(
        f"{server.base_url}/webhooks",
        json={"endpoint": url, "subscribed_events": events or ["extract.job.completed"]},
        timeout=10,
    )
    assert r.status_code == 200
    return r.json()


def _pending(dataset: Dataset) -> list[str]:
    return [j for j in dataset.job_ids() if dataset.status(j) == "pending"]


def test_the_webhook_endpoints_create_list_get_update_delete(emulator) -> None:
    s, base = session(), emulator.base_url
    created = _register(emulator, "http://127.0.0.1:1/a")
    assert created["webhook_secret"] and created["active"] is True
    other = _register(emulator, "http://127.0.0.1:1/b", ["extract.job.failed"])
    listed = s.get(f"{base}/webhooks", params={"sort": "asc"}, timeout=10).json()
    assert [h["id"] for h in listed["data"]] == [created["id"], other["id"]]
    assert (listed["total"], listed["limit"], listed["offset"]) == (2, 50, 0)
    assert s.get(f"{base}/webhooks/{created['id']}", timeout=10).json() == created
    updated = s.put(
        f"{base}/webhooks/{created['id']}", json={"active": False, "endpoint": "x"}, timeout=10
    ).json()
    assert (updated["active"], updated["endpoint"]) == (False, "x")
    assert updated["webhook_secret"] == created["webhook_secret"]
    deleted = s.delete(f"{base}/webhooks/{created['id']}", timeout=10).json()
    assert deleted == {"id": created["id"], "object": "webhook"}
    assert s.get(f"{base}/webhooks/{created['id']}", timeout=10).status_code == 404
    assert s.delete(f"{base}/webhooks/{created['id']}", timeout=10).status_code == 404
    bad = s.post(f"{base}/webhooks", json={"endpoint": "x", "subscribed_events": ["nope"]})
    assert bad.status_code == 400 and "subscribed_events" in bad.json()["error"]
    assert session("wrong").post(f"{base}/webhooks", json={}, timeout=10).status_code == 401


def test_a_status_change_is_delivered_with_the_secret_to_subscribed_active_webhooks(
    dataset, endpoint
) -> None:
    idle = Endpoint()
    try:
        with _serve(dataset) as server:
            hook = _register(server, endpoint.url)
            _register(server, idle.url, ["extract.job.failed"])
            inactive = _register(server, idle.url)
            server.webhooks.update(inactive["id"], {"active": False})
            job_id = _pending(dataset)[0]
            dataset.set_status(job_id, "processing")  # not subscribed
            dataset.set_status(job_id, "completed")
            assert server.webhooks.wait_idle(30)
    finally:
        idle.close()
    ((body, secret),) = endpoint.posts
    assert secret == hook["webhook_secret"]
    assert body["event_type"] == "extract.job.completed" and body["event_id"]
    assert body["payload"] == dataset.summary(job_id)
    assert idle.posts == []


@pytest.mark.parametrize(
    "answers, posts, delivered", [([500, 502], 3, 1), ([500, 500, 503, 404], 4, 0)]
)
def test_a_delivery_is_retried_up_to_3_times_until_a_200(dataset, answers, posts, delivered):
    endpoint = Endpoint(answers)
    try:
        with _serve(dataset) as server:
            _register(server, endpoint.url)
            dataset.set_status(_pending(dataset)[0], "completed")
            assert server.webhooks.wait_idle(30)
    finally:
        endpoint.close()
    assert len(endpoint.posts) == posts
    assert len({body["event_id"] for body, _ in endpoint.posts}) == 1
    assert (server.webhooks.stats.delivered, server.webhooks.stats.failed) == (
        delivered,
        1 - delivered,
    )


def test_an_endpoint_that_does_not_answer_gets_4_attempts(dataset) -> None:
    dead = Endpoint()
    dead.close()  # its port now refuses connections
    with _serve(dataset) as server:
        _register(server, dead.url)
        dataset.set_status(_pending(dataset)[0], "completed")
        assert server.webhooks.wait_idle(30)
    assert (server.webhooks.stats.attempts, server.webhooks.stats.failed) == (4, 1)


def test_nothing_is_delivered_to_a_non_loopback_address(dataset) -> None:
    with _serve(dataset) as server:
        _register(server, "http://192.0.2.10/hook")
        _register(server, "http://example.com/hook")
        dataset.set_status(_pending(dataset)[0], "completed")
        assert server.webhooks.wait_idle(30)
    assert (server.webhooks.stats.attempts, server.webhooks.stats.refused) == (0, 2)


def test_the_duplicate_fault_delivers_events_twice_and_the_receiver_keeps_one(
    dataset, tmp_path
) -> None:
    pending = _pending(dataset)
    faults = FaultConfig(duplicate_delivery=1.0)
    with _serve(dataset, faults=faults) as server:
        hook = _register(server, "http://127.0.0.1:1/")
        with WebhookReceiver(tmp_path, hook["webhook_secret"], port=0) as receiver:
            server.webhooks.update(hook["id"], {"endpoint": receiver.url})
            for job_id in pending:
                dataset.set_status(job_id, "completed")
            assert server.webhooks.wait_idle(30)
    assert server.webhooks.stats.duplicates == len(pending)
    events = logged(tmp_path)
    assert Counter(e["payload"]["job_id"] for e in events) == Counter(pending)


def test_complete_after_completes_every_waiting_job_and_delivers_its_events(
    tmp_path,
) -> None:
    dataset = Dataset(seed=5, jobs=40, days=3, end_date=EMULATOR_END_DATE)
    waiting = [j for j in dataset.job_ids() if dataset.status(j) in ("pending", "processing")]
    assert waiting
    server = _serve(dataset, complete_after=1.0)
    # Registered before the clock starts, so no completion can precede the endpoint.
    hook = server.webhooks.create(
        {"endpoint": "http://127.0.0.1:1/", "subscribed_events": ["extract.job.completed"]}
    )
    with WebhookReceiver(tmp_path, hook["webhook_secret"], port=0) as receiver:
        server.webhooks.update(hook["id"], {"endpoint": receiver.url})
        with server:
            events = wait_for_events(tmp_path, len(waiting))
    assert {dataset.status(j) for j in waiting} == {"completed"}
    assert sorted(e["payload"]["job_id"] for e in events) == sorted(waiting)
    assert {e["event_type"] for e in events} == {"extract.job.completed"}


def test_delete_job_removes_it_and_answers_its_id(emulator) -> None:
    s = session()
    job_id = emulator.dataset.job_ids()[3]
    r = s.delete(job_url(emulator.base_url, job_id), timeout=10)
    assert (r.status_code, r.json()) == (200, {"id": job_id})
    assert s.get(job_url(emulator.base_url, job_id), timeout=10).status_code == 404
    assert job_id not in emulator.dataset.job_ids()
    again = s.delete(job_url(emulator.base_url, job_id), timeout=10)
    assert again.status_code == 404 and set(again.json()) == {"error"}
    assert s.delete(f"{emulator.base_url}/extract", timeout=10).status_code == 405


def test_every_dataset_has_a_metadata_mode_job_with_file_level_entities_only(dataset) -> None:
    metadata = [
        j
        for j in dataset.job_ids()
        if dataset.summary(j)["extract_config"].get("enable_metadata_mode") is True
    ]
    assert len(metadata) == 1
    job = dataset.complete_job(metadata[0])
    assert job["status"] == "completed" and job["data"]["entities"]
    assert job["data"]["segment_entities"] == [] and job["total"] == 0
    config = job["extract_config"]
    assert config["enable_segment_level_entities"] is False
    assert "enable_transcript_mode" not in config  # the two modes exclude each other
    frames = build_frames([job])
    assert len(frames["video_entities"]) == 1 and len(frames["segment_entities"]) == 0
    assert frames["extract_jobs"]["enable_metadata_mode"].tolist() == [True]
