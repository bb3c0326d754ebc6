"""The client against the emulator over real HTTP on loopback (no mocks, no fake server)."""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cloudglue.client import CloudglueClient, job_path
from pipeline.cloudglue.errors import (
    ApiError,
    AuthError,
    ConfigError,
    InconsistentPagingError,
    NotFoundError,
    TransportError,
)
from pipeline.emulator import Dataset, EmulatorServer, FaultConfig
from pipeline.settings import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL
from pipeline_tests.cloudglue.fetching import complete, complete_all
from pipeline_tests.conftest import EMULATOR_API_KEY, EMULATOR_END_DATE, emulator_access_log

FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "retry_after_max": 0.05, "timeout": 5.0}


def client_for(server: EmulatorServer, **kwargs) -> CloudglueClient:
    options = {**FAST, **kwargs}
    return CloudglueClient(options.pop("api_key", EMULATOR_API_KEY), server.base_url, **options)


def _multi_page_job(dataset: Dataset, pages: int = 3, page_size: int = 25) -> str:
    """A completed job with at least ``pages`` pages of ``page_size``."""
    return next(
        j
        for j in dataset.job_ids()
        if dataset.status(j) == "completed"
        and dataset.complete_job(j)["total"] > (pages - 1) * page_size
    )


def everything(client: CloudglueClient, dataset: Dataset) -> dict[str, dict]:
    days = dataset.days()
    ids = [job.job_id for job in client.list_jobs(days[0], days[-1])]
    assert ids == dataset.job_ids()
    return complete_all(client, ids)


def ground_truth(dataset: Dataset) -> dict[str, dict]:
    return {job_id: dataset.complete_job(job_id) for job_id in dataset.job_ids()}


# ------------------------------------------------------------------------------ configuration


def test_missing_key_is_a_config_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=API_KEY_ENV) as info:
        CloudglueClient(base_url="http://127.0.0.1:9/v1")
    assert "\n" not in str(info.value)


def test_key_and_url_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, "env-key")
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    assert CloudglueClient().base_url == DEFAULT_BASE_URL
    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:8080/v1/")
    assert CloudglueClient().base_url == "http://127.0.0.1:8080/v1"


@given(st.text(min_size=1, max_size=40))
def test_job_path_keeps_any_id_in_one_segment(job_id):
    segment = job_path(job_id).removeprefix("/extract/")
    assert unquote(segment) == job_id
    assert not set("/?#") & set(segment)
    assert segment not in (".", "..")


# -------------------------------------------------------------------------- listing and fetching


def test_list_jobs_returns_exactly_the_days_jobs_across_pages(emulator, dataset):
    client = client_for(emulator, page_size=7)
    for day in dataset.days():
        assert [j.job_id for j in client.list_jobs(day, day)] == dataset.job_ids_for_day(day)
    first, last = dataset.days()[1], dataset.days()[3]
    expected = [
        job_id for day in reversed(dataset.days()[1:4]) for job_id in dataset.job_ids_for_day(day)
    ]
    assert [j.job_id for j in client.list_jobs(first, last)] == expected
    assert client.list_jobs(EMULATOR_END_DATE + dt.timedelta(days=1), dt.date(2026, 2, 1)) == []


def test_list_jobs_filters_by_status(emulator, dataset):
    client = client_for(emulator)
    days = dataset.days()
    failed = client.list_jobs(days[0], days[-1], status="failed")
    assert failed
    assert [j.job_id for j in failed] == [
        i for i in dataset.job_ids() if dataset.status(i) == "failed"
    ]
    assert all(j.raw["error"] for j in failed)


def test_bad_request_is_not_retried(emulator, dataset):
    client = client_for(emulator)
    with pytest.raises(ApiError, match="HTTP 400") as info:
        client.list_jobs(dataset.days()[0], dataset.days()[0], status="bogus")
    assert info.value.status == 400
    assert client.stats.snapshot()["requests"] == 1


@pytest.mark.parametrize("page_size", [100, 7])
def test_every_job_reassembles_exactly(emulator, dataset, page_size):
    client = client_for(emulator, page_size=page_size)
    assert everything(client, dataset) == ground_truth(dataset)
    stats = client.stats.snapshot()
    assert stats["jobs_fetched"] == len(dataset.job_ids())
    assert stats["requests"] == emulator.stats.requests
    assert stats["retries"] == 0


def test_thumbnails_are_included_when_asked(emulator, dataset):
    client = client_for(emulator, include_thumbnails=True, page_size=30)
    for job_id in dataset.job_ids()[:15]:
        assert complete(client, job_id) == dataset.complete_job(job_id, include_thumbnails=True)


def test_hostile_jobs_and_ids_reassemble_exactly():
    dataset = Dataset(seed=3, jobs=5, days=2, end_date=EMULATOR_END_DATE, hostile=True)
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY) as server:
        # page_size 2 splits the "duplicates" job's repeated entities across page boundaries.
        client = client_for(server, page_size=2)
        for job_id in dataset.hostile_job_ids():
            assert complete(client, job_id) == dataset.complete_job(job_id), job_id


def test_unknown_status_set_live_is_tolerated(emulator, dataset):
    job_id = dataset.job_ids()[0]
    dataset.set_status(job_id, "archived")
    client = client_for(emulator)
    assert complete(client, job_id) == dataset.complete_job(job_id)
    listed = {j.job_id: j for j in client.list_jobs(dataset.days()[0], dataset.days()[-1])}
    assert listed[job_id].status == "archived" and not listed[job_id].is_completed


# ----------------------------------------------------------------------------------- faults

FAULT_CASES = {
    "drop": ({"drop": 0.3}, "connection"),
    "slow": ({"slow": 0.1, "slow_seconds": 0.6}, "timeout"),
    "server_error": ({"server_error": 0.4}, ("500", "502", "503")),
    "rate_limit_seconds": ({"rate_limit": 0.4, "retry_after_seconds": 0}, "429"),
    "rate_limit_no_header": ({"rate_limit": 0.4, "retry_after": "none"}, "429"),
    "rate_limit_http_date": (
        {"rate_limit": 0.4, "retry_after": "http-date", "retry_after_seconds": 0},
        "429",
    ),
    "truncate_short_body": (
        {"truncate": 0.4, "truncate_style": "content-length"},
        "incomplete_body",
    ),
    "truncate_invalid_json": ({"truncate": 0.4, "truncate_style": "invalid-json"}, "invalid_json"),
    "changing_total": ({"changing_total": 0.5}, None),
    "all_at_once": (
        {
            "drop": 0.05,
            "server_error": 0.1,
            "rate_limit": 0.1,
            "retry_after_seconds": 0,
            "truncate": 0.1,
            "changing_total": 0.2,
            "burst": 2,
        },
        "429",
    ),
}


@pytest.mark.parametrize("case", FAULT_CASES)
def test_faults_are_survived_with_exact_results(dataset, case):
    config, cause = FAULT_CASES[case]
    faults = FaultConfig(seed=11, **config)
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server:
        client = client_for(server, page_size=25, timeout=0.3)
        assert everything(client, dataset) == ground_truth(dataset)
        assert server.stats.faults, "the emulator injected nothing"
    stats = client.stats.snapshot()
    if cause is None:
        assert stats["paging_restarts"] > 0
    else:
        causes = (cause,) if isinstance(cause, str) else cause
        assert any(stats["retries_by_cause"].get(c, 0) > 0 for c in causes), stats
        assert stats["backoff_seconds"] > 0


def test_a_trickling_body_is_cut_at_the_request_deadline_and_retried(dataset):
    """Every piece arrives well within the per-read timeout; the deadline still cuts it."""
    job_id = _multi_page_job(dataset)
    faults = FaultConfig(trickle=1.0, trickle_seconds=3.0)
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server:
        client = client_for(server, page_size=25, timeout=2.0, request_deadline=0.3)
        assert complete(client, job_id) == dataset.complete_job(job_id)
        trickled = server.stats.faults["trickle"]
    assert trickled >= 2
    assert client.stats.snapshot()["retries_by_cause"] == {"timeout": trickled}


def test_a_request_deadline_that_always_passes_fails_naming_it(dataset):
    faults = FaultConfig(trickle=1.0, trickle_seconds=3.0, burst=10)
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server:
        client = client_for(server, max_retries=1, request_deadline=0.2)
        with pytest.raises(TransportError, match=r"within the 0\.2s deadline"):
            client.fetch_job_json(dataset.job_ids()[0])


@pytest.mark.parametrize("concurrent_pages", [True, False])
def test_a_server_that_caps_pages_lower_than_asked_costs_requests_never_data(
    dataset, concurrent_pages
):
    """Pages advance by the entities received and the job ends when they add up to `total`."""
    with EmulatorServer(
        dataset, api_key=EMULATOR_API_KEY, faults=FaultConfig(page_cap=7)
    ) as server:
        client = client_for(server, page_size=25, concurrent_pages=concurrent_pages)
        assert everything(client, dataset) == ground_truth(dataset)
        capped = server.stats.requests
        server.stats.reset()
        server.faults = FaultConfig()
        everything(client_for(server, page_size=25), dataset)
        assert capped > server.stats.requests
    assert client.stats.snapshot()["paging_restarts"] == 0


@pytest.mark.parametrize("concurrent_pages", [True, False])
def test_a_list_that_shifts_while_paged_is_read_again_and_misses_nothing(dataset, concurrent_pages):
    """Later pages move up by one with the same `total` (a job removed before them, another
    added after): only the item at each page edge shows it."""
    days = dataset.days()
    faults = FaultConfig(shifting_list=1.0)
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server:
        client = client_for(server, page_size=10, concurrent_pages=concurrent_pages)
        jobs = client.list_jobs(days[0], days[-1])
        assert server.stats.faults["shifting_list"] > 0
    assert [job.job_id for job in jobs] == dataset.job_ids()
    assert client.stats.snapshot()["paging_restarts"] == 1


def test_a_list_that_never_settles_fails_clearly_rather_than_short(dataset):
    days = dataset.days()
    faults = FaultConfig(shifting_list=1.0, burst=10)
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server:
        client = client_for(server, page_size=10, max_paging_restarts=2)
        with pytest.raises(InconsistentPagingError, match="kept changing while it was paged"):
            client.list_jobs(days[0], days[-1])
    assert client.stats.snapshot()["paging_restarts"] == 2


def test_retry_after_is_honoured(dataset):
    faults = FaultConfig(rate_limit=1.0, retry_after_seconds=1)
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server:
        client = client_for(server, retry_after_max=60)
        job_id = dataset.job_ids()[0]
        assert complete(client, job_id) == dataset.complete_job(job_id)
    stats = client.stats.snapshot()
    assert stats["retries_by_cause"] == {"429": 1}
    assert stats["backoff_seconds"] == 1.0


def test_a_retryable_status_that_outlasts_the_retries_is_an_api_error(dataset):
    faults = FaultConfig(server_error=1.0, burst=10)
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server:
        client = client_for(server, max_retries=2)
        with pytest.raises(ApiError, match=r"after 3 attempt\(s\): HTTP 50[023]") as info:
            client.fetch_job_json(dataset.job_ids()[0])
    assert info.value.status in (500, 502, 503)
    assert client.stats.snapshot()["requests"] == 3


def test_total_backoff_is_bounded(dataset):
    faults = FaultConfig(rate_limit=1.0, retry_after_seconds=30, burst=10)
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server:
        client = client_for(server, retry_after_max=60, max_total_backoff=5)
        with pytest.raises(ApiError, match="max_total_backoff=5s") as info:
            client.fetch_job_json(dataset.job_ids()[0])
    assert info.value.status == 429
    assert client.stats.snapshot()["backoff_seconds"] == 0


def test_an_unreadable_body_that_outlasts_the_retries_names_the_url(dataset):
    faults = FaultConfig(truncate=1.0, truncate_style="invalid-json", burst=10)
    job_id = dataset.job_ids()[0]
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server:
        client = client_for(server, max_retries=1)
        with pytest.raises(TransportError) as info:
            client.fetch_job_json(job_id)
    message = str(info.value)
    assert f"{server.base_url}/extract/{job_id}?" in message
    assert "not valid JSON" in message
    assert EMULATOR_API_KEY not in message


def test_a_total_that_keeps_changing_fails_naming_the_job(dataset):
    big = next(i for i in dataset.job_ids() if dataset.complete_job(i).get("total", 0) > 100)
    faults = FaultConfig(changing_total=1.0, burst=10)
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server:
        client = client_for(server, max_paging_restarts=2)
        with pytest.raises(InconsistentPagingError, match=big):
            client.fetch_job_json(big)
    assert client.stats.snapshot()["paging_restarts"] == 2


# ------------------------------------------------------------------------ auth and not found


def test_wrong_key_is_an_auth_error_naming_the_variable(emulator, dataset):
    client = client_for(emulator, api_key="wrong-key-0123")
    with pytest.raises(AuthError, match=API_KEY_ENV) as info:
        client.list_jobs(dataset.days()[0], dataset.days()[-1])
    assert "401" in str(info.value)
    assert "wrong-key-0123" not in str(info.value)
    assert client.stats.snapshot()["requests"] == 1


def test_a_job_deleted_after_listing_is_one_not_found_among_the_fetched(emulator, dataset):
    client = client_for(emulator)
    days = dataset.days()
    ids = [j.job_id for j in client.list_jobs(days[0], days[-1])]
    gone = ids[5]
    dataset.delete_job(gone)
    outcomes = dict(client.fetch_each(client.fetch_job_json, ids))
    assert set(outcomes) == set(ids)
    assert isinstance(outcomes[gone], NotFoundError) and "404" in str(outcomes[gone])
    assert all(outcomes[j].job_id == j for j in ids if j != gone)


# ------------------------------------------------------------------------------- concurrency


def test_requests_in_flight_are_concurrent_but_capped(dataset):
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, latency_ms=20) as server:
        client = client_for(server, max_concurrency=4, page_size=20)
        assert everything(client, dataset) == ground_truth(dataset)
        assert 1 < server.stats.max_in_flight <= 4


def test_pages_of_one_big_job_are_fetched_concurrently_but_capped(dataset):
    big = max(dataset.job_ids(), key=lambda i: dataset.complete_job(i).get("total", 0))
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, latency_ms=20) as server:
        client = client_for(server, max_concurrency=3, page_size=10)
        assert complete(client, big) == dataset.complete_job(big)
        assert 1 < server.stats.max_in_flight <= 3


def test_list_pages_after_the_first_are_fetched_concurrently_but_capped(dataset):
    days = dataset.days()
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, latency_ms=20) as server:
        jobs = client_for(server, max_concurrency=3, page_size=4).list_jobs(days[0], days[-1])
        assert [job.job_id for job in jobs] == dataset.job_ids()
        assert 1 < server.stats.max_in_flight <= 3
        # Each page after the first starts at the previous page's last item.
        assert server.stats.requests == 1 + -(-(len(dataset.job_ids()) - 4) // 3)
        server.stats.reset()
        client = client_for(server, max_concurrency=3, page_size=4, concurrent_pages=False)
        assert client.list_jobs(days[0], days[-1]) == jobs
        assert server.stats.max_in_flight == 1


def test_pages_are_sequential_when_concurrent_pages_is_off(dataset):
    big = max(dataset.job_ids(), key=lambda i: dataset.complete_job(i).get("total", 0))
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, latency_ms=5) as server:
        client = client_for(server, max_concurrency=3, page_size=10, concurrent_pages=False)
        assert complete(client, big) == dataset.complete_job(big)
        assert server.stats.max_in_flight == 1
        assert server.stats.requests > 30


def test_fetch_each_pulls_ids_lazily(emulator, dataset):
    client = client_for(emulator, max_concurrency=3)
    pulled = 0

    def ids():
        nonlocal pulled
        for job_id in dataset.job_ids():
            pulled += 1
            yield job_id

    yielded = 0
    for _ in client.fetch_each(client.fetch_job_json, ids()):
        yielded += 1
        assert pulled - yielded < 3
    assert yielded == pulled == len(dataset.job_ids())


def test_request_rate_cap_holds_at_the_server_from_the_first_second(dataset):
    """Counted by the emulator: no one-second window sees more than the cap, not even the
    first (a bucket that starts full let a burst through on top of the rate).

    The emulator stamps a request when its handler thread runs: on a loaded machine (the suite
    runs on 2 cores, two tests at a time) a stamp can be late by more than the limiter's margin,
    so a pass is taken from up to three tries; a limiter that lets a burst through fails all."""
    rate = 8
    seen = []
    for _ in range(3):
        with EmulatorServer(dataset, api_key=EMULATOR_API_KEY) as server:
            client = client_for(server, max_requests_per_second=rate, max_concurrency=4)
            ids = dataset.job_ids()[:14]
            assert len(complete_all(client, ids)) == len(ids)
            assert client.stats.snapshot()["requests"] > rate
            seen.append(server.stats.max_per_second)
        if seen[-1] == rate:
            break
    assert seen[-1] == rate, seen


# ---------------------------------------------------------------------------------- secrecy


SECRET = "sk-live-SECRET-7c1d9e"


def test_the_key_never_appears_in_logs_reprs_or_errors(dataset, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    faults = FaultConfig(drop=0.3, server_error=0.3, rate_limit=0.2, truncate=0.2, burst=5)
    texts = []
    with EmulatorServer(dataset, api_key=SECRET, faults=faults) as server:
        client = client_for(server, api_key=SECRET, max_retries=2)
        texts += [repr(client), repr(client._transport), str(client.stats.snapshot())]
        for run in (
            lambda: complete_all(client, dataset.job_ids()),
            lambda: client_for(server, api_key=SECRET + "x").fetch_job_json(dataset.job_ids()[0]),
        ):
            with pytest.raises((ApiError, TransportError, AuthError)) as info:
                run()
            texts.append("".join(traceback.format_exception(info.value, chain=True)))
    assert caplog.records, "nothing was logged"
    assert {"pipeline.cloudglue", "urllib3.connectionpool"} <= {r.name for r in caplog.records}
    texts += [r.getMessage() for r in caplog.records]
    assert not [t for t in texts if SECRET in t]


@pytest.mark.parametrize(("style", "seconds"), [("seconds", 1), ("http-date", 2)])
def test_a_real_retry_after_is_waited_out_over_http(dataset, style, seconds):
    """Not only parsed: the retry reaches the server after the time it asked for."""
    job_id = next(j for j in dataset.job_ids() if dataset.status(j) == "completed")
    faults = FaultConfig(rate_limit=1.0, burst=1, retry_after=style, retry_after_seconds=seconds)
    with (
        emulator_access_log() as answers,
        EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server,
    ):
        client = client_for(server, retry_after_max=5.0)
        assert complete(client, job_id) == dataset.complete_job(job_id)
    first_page = [(t, s) for t, target, s in answers.rows if "offset=0" in target]
    assert [s for _, s in first_page] == [429, 200]
    # At least 1 s either way: an HTTP date has whole seconds, so the instant it names can be up
    # to 1 s sooner than asked. Without Retry-After the client would wait ~0.01 s here.
    assert first_page[1][0] - first_page[0][0] >= 0.95
    assert client.stats.snapshot()["backoff_seconds"] >= 0.95
