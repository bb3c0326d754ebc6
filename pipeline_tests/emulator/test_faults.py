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
