"""The hostile dataset through ``cloudglue-pipeline sync``: no crash, nothing written outside the
data dir, every usable value kept, and what could not be used reported, never dropped silently."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import dagster as dg
import pytest

import pipeline
from pipeline.emulator import EmulatorServer
from pipeline.emulator.hostile import DEEP_NESTING_LEVELS, HUGE_STRING_BYTES
from pipeline_tests.conftest import open_instance
from pipeline_tests.loopback import Answer, serving
from pipeline_tests.reliability.conftest import (
    assert_readers_see_only_complete_files,
    cli_env,
    completed_result,
    small_dataset,
    sync,
)

TEXT_CREATED_AT = "hostile-text-created-at"


@pytest.fixture(scope="module")
def hostile_sync(tmp_path_factory: pytest.TempPathFactory):
    dataset = small_dataset(hostile=True, jobs=20)
    root = tmp_path_factory.mktemp("hostile")
    with EmulatorServer(dataset, api_key="k") as server:
        env = cli_env(root, server.base_url, key="k")
        done = sync(env, "--max-retries", "0")
    return dataset, root, done


@pytest.mark.slow
def test_the_run_succeeds_and_writes_only_inside_the_data_dir(hostile_sync) -> None:
    _dataset, root, done = hostile_sync
    assert done.returncode == 0, completed_result(done)
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in root.iterdir()) == ["data", "home"]
    for path in (root / "data").rglob("*"):
        assert not path.is_symlink() and path.resolve().is_relative_to(root / "data")
        assert path.name.isascii() and len(path.name) < 128, path
    assert_readers_see_only_complete_files(root / "data")


@pytest.mark.slow
def test_every_listed_job_and_value_is_kept(hostile_sync) -> None:
    dataset, root, _done = hostile_sync
    data = root / "data"
    usable = {
        j
        for d in dataset.days()
        for j in dataset.job_ids_for_day(d)
        if isinstance(dataset.summary(j)["created_at"], int)
    }
    jobs = pipeline.read_table("extract_jobs", data)
    assert sorted(jobs.job_id) == sorted(usable)
    assert {"..", "hostile/../dots", "100%-done%2F", "h" * 500, "hostile-vidéo-東京-🎬"} <= usable
    assert set(jobs.loc[jobs.job_id == "hostile-archived", "status"]) == {"archived"}

    # Unknown fields, at every level, are kept.
    extra = jobs.set_index("job_id").loc["100%-done%2F"]
    assert json.loads(extra.extra_json) == {
        "priority": "high",
        "labels": [{"name": "qa", "color": None}],
        "data": {"model_version": "extract-2099-01"},
    }
    assert json.loads(extra.extract_config_json)["enable_time_travel"] == {"beta": True}
    chapters = pipeline.read_table("chapters", data)
    assert set(chapters.loc[chapters.job_id == "100%-done%2F", "mood"]) == {"tense"}

    segs = pipeline.read_table("segment_entities", data)
    unknown = segs[segs.job_id == "100%-done%2F"]
    assert unknown.segment_id.notna().all() and (unknown.confidence__model == 0.9).all()
    completed = [j for j in usable if dataset.status(j) == "completed"]
    # Duplicates, nulls, lists and strings: one row per entry the API sent, none dropped.
    assert len(segs) == sum(dataset.complete_job(j)["total"] for j in completed)
    assert (segs.groupby(["job_id", "segment_index"]).size() == 1).all()
    assert (segs.job_id == "..").sum() == dataset.complete_job("..")["total"] == 7
    odd = segs[segs.job_id == "hostile/slash/job"].sort_values("segment_index")
    assert json.loads(odd.item_json.iloc[5]) == "a segment that is a string"

    deep = segs[segs.job_id == "h" * 500].sort_values("segment_index").entities_json.iloc[0]
    depth, node = 0, json.loads(deep)
    while isinstance(node, dict):
        node, depth = node["level"], depth + 1
    assert (depth, node) == (DEEP_NESTING_LEVELS, "bottom")
    huge = segs[segs.job_id == "hostile-huge-string"].sort_values("segment_index")
    transcript = json.loads(huge.entities_json.iloc[0])["transcript"]
    assert len(transcript) == HUGE_STRING_BYTES and set(transcript) == {"a", "b"}

    bad = segs[segs.job_id == "hostile/../dots"].sort_values("segment_index")
    assert list(bad.start_time.iloc[:2]) == [30.0, -5.5]  # kept as sent, flagged by the checks


@pytest.mark.slow
def test_bad_times_and_unusable_listings_are_reported(hostile_sync) -> None:
    dataset, root, done = hostile_sync
    day_of = {j: d.isoformat() for d in dataset.days() for j in dataset.job_ids_for_day(d)}
    bad_times_day = day_of["hostile/../dots"]
    assert (
        f"warning: {bad_times_day}: check segment_entities.time_range_valid failed" in done.stdout
    )
    # The job whose created_at is text cannot be put on a day: each day's run that listed it says
    # so in its summary line, its metadata and its log.
    skipped_lines = [line for line in done.stdout.splitlines() if TEXT_CREATED_AT in line]
    assert skipped_lines and all("created_at" in line for line in skipped_lines), done.stdout
    with open_instance(str(root / "home")) as instance:
        record = instance.get_latest_materialization_event(dg.AssetKey("raw_extract_jobs"))
        runs = instance.get_runs()
        logs = [e for r in runs for e in instance.all_logs(r.run_id)]
    assert record is not None
    warned = [e for e in logs if e.user_message and TEXT_CREATED_AT in e.user_message]
    assert warned, "no log line names the skipped job"
    metadata = {
        e.dagster_event.event_specific_data.materialization.partition: (
            e.dagster_event.event_specific_data.materialization.metadata
        )
        for e in logs
        if e.dagster_event is not None
        and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
        and e.dagster_event.asset_key == dg.AssetKey("raw_extract_jobs")
    }
    reported = {day for day, md in metadata.items() if md["jobs_skipped"].value}
    assert reported and all(
        any(TEXT_CREATED_AT in s for s in metadata[day]["skipped_jobs"].value) for day in reported
    )
    assert day_of[TEXT_CREATED_AT] in reported
    assert dt.date.fromisoformat(day_of[TEXT_CREATED_AT]) in dataset.days()


@pytest.fixture
def garbled_listing() -> Iterator[tuple[str, str, str]]:
    """A loopback API whose day listing holds a number and an object without ``job_id`` next to
    one real job (served from the emulator's dataset); yields base URL, day and that job's id."""
    dataset = small_dataset(jobs=12)
    job_id = next(
        j
        for j in dataset.job_ids()
        if dataset.status(j) == "completed" and dataset.complete_job(j)["total"] <= 100
    )
    day = dataset.summary(job_id)["created_at"] // 86_400_000
    listing = [42, {"status": "completed", "created_at": dataset.summary(job_id)["created_at"]}]
    listing.append(dataset.summary(job_id))

    def answer(request: BaseHTTPRequestHandler) -> Answer:
        if request.path.startswith("/v1/extract?"):
            body = {"object": "list", "data": listing, "total": len(listing)}
        else:
            body = dataset.detail_body(job_id, limit=100, include_chapters=True, include_shots=True)
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    iso = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
    with serving(answer) as base_url:
        yield base_url, iso, job_id


def test_listing_items_that_are_no_job_are_reported(garbled_listing, tmp_path) -> None:
    base_url, day, job_id = garbled_listing
    done = sync(cli_env(tmp_path, base_url, key="k"), days=(day, day))
    assert done.returncode == 0, completed_result(done)
    assert list(pipeline.read_table("extract_jobs", tmp_path / "data").job_id) == [job_id]
    warnings = [line for line in done.stdout.splitlines() if "skipped" in line]
    assert len(warnings) == 2, done.stdout
    assert "not an object" in warnings[0] and "int" in warnings[0]
    assert "job_id" in warnings[1]
