"""Each fault mode, its determinism, and bursts that a retrying client outlasts (or does not)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator

import pytest
import requests

from pipeline.emulator import Dataset, EmulatorServer, FaultConfig
from pipeline_tests.conftest import EMULATOR_END_DATE
from pipeline_tests.emulator.util import job_url, session


@pytest.fixture
def serve(dataset: Dataset) -> Iterator:
    """serve(**fault_options) -> a started EmulatorServer with those faults."""
    servers: list[EmulatorServer] = []

    def start(**options) -> EmulatorServer:
        servers.append(EmulatorServer(dataset, faults=FaultConfig(**options)).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _big_job(dataset: Dataset) -> str:
    return next(j for j in dataset.job_ids() if dataset.complete_job(j).get("total", 0) > 100)


def test_faults_are_off_by_default(emulator) -> None:
    s = session()
    for _ in range(20):
        assert s.get(f"{emulator.base_url}/extract", timeout=10).status_code == 200
    assert emulator.stats.faults == {}


@pytest.mark.parametrize(
    ("style", "check"),
    [
        ("seconds", lambda v: v == "0"),
        ("none", lambda v: v is None),
        ("http-date", lambda v: email.utils.parsedate_to_datetime(v).tzinfo is not None),
    ],
)
def test_429_burst_with_each_retry_after_style(serve, style, check) -> None:
    server = serve(rate_limit=1.0, burst=2, retry_after=style, retry_after_seconds=0)
    s = session()
    url = f"{server.base_url}/extract?limit=3"
    for _ in range(2):
        r = s.get(url, timeout=10)
        assert r.status_code == 429 and "error" in r.json()
        assert check(r.headers.get("Retry-After"))
    assert s.get(url, timeout=10).status_code == 200
    assert server.stats.faults == {"rate_limit": 2}


def test_5xx_burst_is_deterministic_then_succeeds(dataset) -> None:
    def statuses(seed: int) -> list[int]:
        faults = FaultConfig(server_error=1.0, burst=6, seed=seed)
        with EmulatorServer(dataset, faults=faults) as server:
            s = session()
            return [s.get(f"{server.base_url}/extract", timeout=10).status_code for _ in range(7)]

    first = statuses(1)
    assert set(first[:6]) <= {500, 502, 503} and first[6] == 200
    assert statuses(1) == first


def test_502_is_a_gateway_html_page(serve) -> None:
    server = serve(server_error=1.0, burst=40)
    s = session()
    codes = {}
    for n in range(40):
        r = s.get(f"{server.base_url}/extract?n={n}", timeout=10)
        codes[r.status_code] = r.headers["Content-Type"]
    assert codes == {500: "application/json", 502: "text/html", 503: "application/json"}


def test_dropped_connection_then_success(serve) -> None:
    server = serve(drop=1.0, burst=1)
    s = session()
    with pytest.raises(requests.ConnectionError):
        s.get(f"{server.base_url}/extract", timeout=10)
    assert s.get(f"{server.base_url}/extract", timeout=10).status_code == 200
    assert server.stats.faults == {"drop": 1}


def test_slow_response_outlasts_a_client_timeout(serve) -> None:
    server = serve(slow=1.0, slow_seconds=0.6)
    s = session()
    started = time.perf_counter()
    with pytest.raises(requests.Timeout):
        s.get(f"{server.base_url}/extract", timeout=0.15)
    assert time.perf_counter() - started < 0.5
    assert s.get(f"{server.base_url}/extract", timeout=5).status_code == 200


def test_truncated_body_shorter_than_content_length(serve) -> None:
    server = serve(truncate=1.0, truncate_style="content-length")
    s = session()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        s.get(f"{server.base_url}/extract", timeout=10)
    assert s.get(f"{server.base_url}/extract", timeout=10).json()["object"] == "list"


def test_truncated_body_is_invalid_json(serve) -> None:
    server = serve(truncate=1.0, truncate_style="invalid-json")
    s = session()
    r = s.get(f"{server.base_url}/extract", timeout=10)
    assert r.status_code == 200 and len(r.content) == int(r.headers["Content-Length"])
    with pytest.raises(requests.JSONDecodeError):
        r.json()
    assert s.get(f"{server.base_url}/extract", timeout=10).json()["object"] == "list"


def test_total_changes_between_pages_until_refetched(serve, dataset) -> None:
    server = serve(changing_total=1.0)
    s = session()
    job_id = _big_job(dataset)
    total = dataset.complete_job(job_id)["total"]
    url = job_url(server.base_url, job_id)
    assert s.get(url, params={"limit": 50, "offset": 0}, timeout=10).json()["total"] == total
    changed = s.get(url, params={"limit": 50, "offset": 50}, timeout=10).json()["total"]
    assert total < changed <= total + 3
    assert s.get(url, params={"limit": 50, "offset": 50}, timeout=10).json()["total"] == total
    assert server.stats.faults == {"changing_total": 1}


def _get_with_retries(s: requests.Session, url: str, retries: int) -> int:
    """A minimal retrying client: retries 429, 5xx, broken connections and bodies."""
    for _ in range(retries + 1):
        try:
            r = s.get(url, timeout=5)
            r.json()
        except (requests.RequestException, ValueError):
            continue
        if r.status_code < 429:
            return r.status_code
    return -1


@pytest.mark.parametrize("kind", ["rate_limit", "server_error", "drop", "truncate"])
def test_burst_below_the_retry_limit_passes_above_it_outlasts(serve, kind) -> None:
    server = serve(**{kind: 1.0, "burst": 3, "retry_after_seconds": 0})
    s = session()
    assert _get_with_retries(s, f"{server.base_url}/extract?limit=1", retries=3) == 200
    assert _get_with_retries(s, f"{server.base_url}/extract?limit=2", retries=2) == -1


def test_rate_picks_a_stable_share_of_urls() -> None:
    a, b = FaultConfig(rate_limit=0.3, seed=1), FaultConfig(rate_limit=0.3, seed=2)
    urls = [f"/v1/extract/job-{n}?limit=100&offset=0" for n in range(2000)]
    hit_a = {u for u in urls if a.decide(u, 0)}
    assert 500 < len(hit_a) < 700
    assert hit_a == {u for u in urls if FaultConfig(rate_limit=0.3, seed=1).decide(u, 0)}
    assert hit_a != {u for u in urls if b.decide(u, 0)}
    assert not any(a.decide(u, 1) for u in urls)


def test_latency_and_faults_combine(dataset) -> None:
    faults = FaultConfig(rate_limit=1.0, retry_after_seconds=0)
    with EmulatorServer(dataset, faults=faults, latency_ms=80) as server:
        started = time.perf_counter()
        assert session().get(f"{server.base_url}/extract", timeout=5).status_code == 429
        assert time.perf_counter() - started >= 0.08


def test_from_specs_parses_cli_syntax() -> None:
    config = FaultConfig.from_specs(
        ["429=0.1", "5xx=0.05", "burst=3", "retry-after=http-date", "slow-seconds=1.5", "total=1"]
    )
    assert config == FaultConfig(
        rate_limit=0.1,
        server_error=0.05,
        burst=3,
        retry_after="http-date",
        slow_seconds=1.5,
        changing_total=1.0,
    )
    for bad in (["nope=1"], ["429"], ["429=2"], ["retry-after=sometimes"]):
        with pytest.raises(ValueError):
            FaultConfig.from_specs(bad)


def test_stopping_wakes_a_slow_handler() -> None:
    dataset = Dataset(seed=1, jobs=3, days=1, end_date=EMULATOR_END_DATE)
    server = EmulatorServer(dataset, faults=FaultConfig(slow=1.0, slow_seconds=30)).start()
    with pytest.raises(requests.Timeout):
        session().get(f"{server.base_url}/extract", timeout=0.1)
    started = time.perf_counter()
    server.stop()
    assert time.perf_counter() - started < 2


def test_page_cap_serves_fewer_items_than_asked_and_reports_its_limit(serve, dataset) -> None:
    server = serve(page_cap=3)
    s = session()
    listed = s.get(f"{server.base_url}/extract", params={"limit": 10}, timeout=10).json()
    assert (len(listed["data"]), listed["limit"], listed["total"]) == (3, 3, len(dataset.job_ids()))
    big = _big_job(dataset)
    page = s.get(job_url(server.base_url, big), params={"limit": 50}, timeout=10).json()
    assert (len(page["data"]["segment_entities"]), page["limit"]) == (3, 3)


def test_shifting_list_moves_later_pages_of_a_first_pass_up_by_one_with_the_same_total(
    serve, dataset
) -> None:
    server = serve(shifting_list=1.0)
    s = session()
    url = f"{server.base_url}/extract"
    ids = dataset.job_ids()
    first = s.get(url, params={"limit": 5, "offset": 0}, timeout=10).json()
    shifted = [s.get(url, params={"limit": 5, "offset": 5}, timeout=10).json() for _ in range(2)]
    s.get(url, params={"limit": 5, "offset": 0}, timeout=10)  # the second pass starts
    again = s.get(url, params={"limit": 5, "offset": 5}, timeout=10).json()
    assert [j["job_id"] for j in first["data"]] == ids[:5]
    assert [j["job_id"] for j in shifted[1]["data"]] == ids[6:11]
    assert [j["job_id"] for j in again["data"]] == ids[5:10]
    assert first["total"] == shifted[0]["total"] == len(ids)
    assert shifted[0]["offset"] == 5
    assert server.stats.faults == {"shifting_list": 2}


def test_trickle_sends_the_whole_body_slowly_in_pieces(serve, dataset) -> None:
    server = serve(trickle=1.0, trickle_seconds=0.4)
    url = f"{server.base_url}/extract?limit=20"
    with session().get(url, timeout=10, stream=True) as r:
        pieces = list(iter(lambda: r.raw.read1(1 << 20), b""))
    assert len(pieces) > 1
    assert len(b"".join(pieces)) == int(r.headers["Content-Length"])
    assert server.stats.faults == {"trickle": 1}
    assert session().get(url, timeout=10).json()["total"] == len(dataset.job_ids())


def test_requests_per_second_are_counted_over_any_one_second_window(emulator) -> None:
    s = session()
    for _ in range(7):
        s.get(f"{emulator.base_url}/extract?limit=1", timeout=10)
    assert emulator.stats.max_per_second == 7
    emulator.stats.reset()
    assert emulator.stats.max_per_second == 0


def test_fault_help_names_every_setting() -> None:
    from dataclasses import fields

    from pipeline.emulator.faults import FAULT_HELP

    for field in fields(FaultConfig):
        assert field.name.replace("_", "-") in FAULT_HELP or field.name in FAULT_HELP, field.name
