"""The raw landing, in a local data dir and in a bucket."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from pipeline.storage.layout import job_file_name, job_file_stem, raw_day_prefix
from pipeline.storage.raw import RawStore

DAY = dt.date(2026, 11, 1)


@given(st.text(min_size=1, max_size=600))
def test_job_file_stem_is_safe_and_bounded(job_id):
    stem = job_file_stem(job_id)
    assert "/" not in stem and "." not in stem and "%" not in stem
    assert 0 < len(stem) <= 81


def test_distinct_ids_get_distinct_files():
    assert job_file_stem("a/b") != job_file_stem("a_b")
    assert job_file_stem("x" * 500) != job_file_stem("x" * 499)


def test_hostile_ids_stay_inside_the_day_directory(local_or_bucket):
    store = RawStore(local_or_bucket)
    for job_id in ["../../etc/passwd", "a/b/c", "%2e%2e", "ünï©ødé", "x" * 500, ".."]:
        store.put_job(DAY, {"job_id": job_id, "status": "completed", "total": 0})
        assert job_file_name(job_id) in store.store.list_files(raw_day_prefix(DAY))
        assert store.get_job(DAY, job_id)["job_id"] == job_id
    assert store.store.list_dirs("raw") == [raw_day_prefix(DAY).split("/")[1]]


def test_listing_round_trip_and_iteration_in_job_id_order(local_or_bucket):
    store = RawStore(local_or_bucket)
    complete = {"job_id": "b", "status": "completed", "data": {"segment_entities": []}, "total": 0}
    store.put_job(DAY, complete)
    listed_at = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    summaries = [
        {"job_id": "c", "status": "pending"},
        {"job_id": "b", "status": "completed"},
        {"job_id": "a", "status": "failed", "error": "boom"},
    ]
    store.write_listing(DAY, summaries, listed_at)
    listing = store.read_listing(DAY)
    assert listing.listed_at == listed_at
    assert [job["job_id"] for job in store.iter_day_jobs(DAY)] == ["a", "b", "c"]
    assert list(store.iter_day_jobs(DAY))[1] == complete


def test_prune_removes_unlisted_jobs(local_or_bucket):
    store = RawStore(local_or_bucket)
    store.put_job(DAY, {"job_id": "keep", "status": "completed"})
    store.put_job(DAY, {"job_id": "gone", "status": "completed"})
    removed = store.prune(DAY, ["keep"])
    assert removed == [f"{job_file_stem('gone')}.json.zst"]
    assert store.has_job(DAY, "keep") and not store.has_job(DAY, "gone")


def test_big_integers_survive_the_landing_exactly(local_or_bucket):
    store = RawStore(local_or_bucket)
    job = {"job_id": "big", "status": "completed", "data": {"entities": {"n": 10**30}}}
    store.put_job(DAY, job)
    assert store.get_job(DAY, "big") == job
