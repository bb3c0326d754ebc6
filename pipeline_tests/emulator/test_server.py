"""The emulator over real HTTP: paging reassembles the ground truth, errors, auth, live changes,
stats and logging."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time

import pytest
import requests

from pipeline.emulator import Dataset, EmulatorServer
from pipeline_tests.conftest import EMULATOR_API_KEY, EMULATOR_END_DATE
from pipeline_tests.emulator.util import fetch_complete, job_url, session


@pytest.mark.parametrize("limit", [1, 7, 50, 100])
def test_paging_every_job_reassembles_the_ground_truth(emulator, limit) -> None:
    s = session()
    ids = emulator.dataset.job_ids()
    for job_id in ids:
        assert fetch_complete(s, emulator.base_url, job_id, limit) == (
            emulator.dataset.complete_job(job_id)
        )
    # the listing pages cover exactly the same jobs, newest first
    listed, offset = [], 0
    while True:
        page = s.get(
            f"{emulator.base_url}/extract",
            params={"limit": limit, "offset": offset, "include_data": "false"},
            timeout=10,
        ).json()
        listed += page["data"]
        offset += limit
        if offset >= page["total"]:
            break
    assert [j["job_id"] for j in listed] == ids
    assert listed == [emulator.dataset.summary(j) for j in ids]


def test_thumbnails_reassemble_the_ground_truth(emulator) -> None:
    s = session()
    for job_id in emulator.dataset.job_ids()[:12]:
        got = fetch_complete(s, emulator.base_url, job_id, 33, thumbnails=True)
        assert got == emulator.dataset.complete_job(job_id, include_thumbnails=True)


def test_hostile_jobs_are_served_at_their_percent_encoded_paths() -> None:
    dataset = Dataset(seed=3, jobs=12, days=2, end_date=EMULATOR_END_DATE, hostile=True)
    hostile = dataset.hostile_job_ids()
    assert {"..", "hostile/slash/job", "h" * 500, "hostile-vidéo-東京-🎬"} <= set(hostile)
    with EmulatorServer(dataset) as server:
        s = session()
        for job_id in hostile:
            assert fetch_complete(s, server.base_url, job_id, 4) == dataset.complete_job(job_id)
        # an unencoded slash is a different path, not the job
        r = s.get(f"{server.base_url}/extract/hostile/slash/job", timeout=10)
        assert r.status_code == 404


def test_400_for_bad_parameters(emulator) -> None:
    s = session()
    first = emulator.dataset.job_ids()[0]
    job = job_url(emulator.base_url, first)
    seg = f"{emulator.base_url}/segmentations/{emulator.dataset.summary(first)['segmentation_id']}"
    bad = [
        (f"{emulator.base_url}/extract", {"limit": 0}),
        (f"{emulator.base_url}/extract", {"limit": 101}),
        (f"{emulator.base_url}/extract", {"limit": "ten"}),
        (f"{emulator.base_url}/extract", {"offset": -1}),
        (f"{emulator.base_url}/extract", {"status": "archived"}),
        (f"{emulator.base_url}/extract", {"created_after": "2026-1-5"}),
        (f"{emulator.base_url}/extract", {"created_before": "2026-02-30"}),
        (f"{emulator.base_url}/extract", {"include_data": "maybe"}),
        (job, {"limit": 0}),
        (job, {"limit": 101}),
        (job, {"offset": -5}),
        (job, {"include_chapters": "yes"}),
        (seg, {"limit": 500}),
    ]
    for url, params in bad:
        r = s.get(url, params=params, timeout=10)
        assert r.status_code == 400, (url, params)
        assert set(r.json()) == {"error"} and r.json()["error"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {EMULATOR_API_KEY}"}],
)
def test_401_without_or_with_a_wrong_key(emulator, headers) -> None:
    for path in ("/extract", "/extract/x", "/segmentations/x"):
        r = requests.get(emulator.base_url + path, headers=headers, timeout=10)
        assert r.status_code == 401
        assert set(r.json()) == {"error"}


def test_404_for_unknown_job_segmentation_and_path(emulator) -> None:
    s = session()
    for path in (
        "/extract/no-such-job",
        "/segmentations/00000000-0000-4000-8000-000000000000",
        "/nothing",
        "/extract/",
    ):
        r = s.get(emulator.base_url + path, timeout=10)
        assert r.status_code == 404, path
        assert set(r.json()) == {"error"}


def test_detail_shapes_per_status(emulator) -> None:
    s = session()
    by_status: dict[str, str] = {}
    for job_id in emulator.dataset.job_ids():
        by_status.setdefault(emulator.dataset.status(job_id), job_id)
    assert set(by_status) == {"pending", "processing", "completed", "failed", "not_applicable"}
    for status, job_id in by_status.items():
        body = s.get(job_url(emulator.base_url, job_id), timeout=10).json()
        assert ("data" in body) == ("total" in body) == (status == "completed")
        assert ("error" in body) == (status == "failed")
        summary = emulator.dataset.summary(job_id)
        assert {k: body.get(k) for k in summary} == summary
        assert status == "completed" or body == summary


def test_405_for_other_methods(emulator) -> None:
    r = session().post(f"{emulator.base_url}/extract", json={"url": "x"}, timeout=10)
    assert r.status_code == 405 and set(r.json()) == {"error"}
    assert emulator.stats.requests == 1


def test_date_filters_are_exclusive_whole_days(emulator) -> None:
    s = session()
    for day in emulator.dataset.days():
        params = {
            "created_after": (day - dt.timedelta(days=1)).isoformat(),
            "created_before": (day + dt.timedelta(days=1)).isoformat(),
            "limit": 100,
            "include_data": "false",
        }
        body = s.get(f"{emulator.base_url}/extract", params=params, timeout=10).json()
        assert [j["job_id"] for j in body["data"]] == emulator.dataset.job_ids_for_day(day)


def test_status_changes_and_deletion_while_serving(emulator) -> None:
    s = session()
    ds = emulator.dataset
    job_id = next(j for j in ds.job_ids() if ds.status(j) == "pending")

    def pending_ids() -> list[str]:
        params = {"status": "pending", "limit": 100, "include_data": "false"}
        body = s.get(f"{emulator.base_url}/extract", params=params, timeout=10).json()
        return [j["job_id"] for j in body["data"]]

    assert job_id in pending_ids()
    ds.set_status(job_id, "processing")
    assert job_id not in pending_ids()
    assert "data" not in s.get(job_url(emulator.base_url, job_id), timeout=10).json()
    ds.set_status(job_id, "completed")
    assert fetch_complete(s, emulator.base_url, job_id, 100) == ds.complete_job(job_id)
    ds.delete_job(job_id)
    assert s.get(job_url(emulator.base_url, job_id), timeout=10).status_code == 404
    assert job_id not in ds.job_ids()
    body = s.get(f"{emulator.base_url}/extract", params={"limit": 100}, timeout=10).json()
    assert job_id not in {j["job_id"] for j in body["data"]}


def test_stats_count_requests_and_concurrency(dataset) -> None:
    with EmulatorServer(dataset, latency_ms=150) as server:
        barrier = threading.Barrier(8)

        def worker() -> None:
            s = session()
            barrier.wait()
            s.get(f"{server.base_url}/extract", params={"limit": 1}, timeout=10)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert server.stats.requests == 8
        assert server.stats.max_in_flight >= 4
        deadline = time.monotonic() + 2  # handlers finish their bookkeeping after replying
        while server.stats.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stats.reset()
        assert (server.stats.requests, server.stats.max_in_flight) == (0, 0)


def test_latency_applies_to_every_request(dataset) -> None:
    with EmulatorServer(dataset, latency_ms=120) as server:
        started = time.perf_counter()
        session().get(f"{server.base_url}/extract", params={"limit": 1}, timeout=10)
        assert time.perf_counter() - started >= 0.12


def test_keep_alive_serves_many_requests_on_one_connection(emulator) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        f = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(
                b"GET /v1/extract?limit=1 HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: Bearer {EMULATOR_API_KEY}\r\n\r\n".encode()
            )
            assert f.readline().startswith(b"HTTP/1.1 200")
            length = 0
            while (line := f.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert f.read(length).startswith(b'{"object":"list"')


def test_logs_one_line_per_request_without_the_key(emulator, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.emulator")
    s = session()
    s.get(f"{emulator.base_url}/extract", params={"limit": 2}, timeout=10)
    s.get(f"{emulator.base_url}/extract/missing", timeout=10)
    requests.get(f"{emulator.base_url}/extract", timeout=10)
    deadline = time.monotonic() + 2
    while len(caplog.records) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if r.name == "pipeline.emulator"]
    assert len(lines) == 3
    assert "200" in lines[0] and "404" in lines[1] and "401" in lines[2]
    assert not any(EMULATOR_API_KEY in line or "Bearer" in line for line in lines)


def test_binds_loopback_by_default(emulator) -> None:
    assert emulator.base_url == f"http://127.0.0.1:{emulator.port}/v1"
