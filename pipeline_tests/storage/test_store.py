"""The ``Store`` interface against a local directory and a real bucket (SeaweedFS on loopback):
plain file operations, read-modify-write under contention (threads and processes), a bucket's
one-object partitions, per-day leases (waiting, expiry after a SIGKILL, a race to take over,
a lease lost to another owner) and what credentials may never show up in.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import signal
import subprocess
import threading
import time
import traceback
from pathlib import Path

import obstore
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline
from pipeline.settings import LEASE_SECONDS_ENV
from pipeline.storage.bucket import BucketStore
from pipeline.storage.errors import BucketError, LeaseLost
from pipeline.storage.layout import BUILD_RECORD, SINGLE_PART, day_lock_name
from pipeline.storage.lease import Leases
from pipeline.storage.parquet import write_day
from pipeline.storage.raw import LandedJobs
from pipeline.storage.store import open_store
from pipeline_tests.object_store import ObjectStoreServer
from pipeline_tests.stores import (
    PROJECT,
    PYTHON,
    bucket_prefix,
    multipart_uploads,
    s3_request,
    walk,
)

DAY = dt.date(2026, 1, 1)
LOCK = day_lock_name(DAY)


def _child(code: str, *args: str, **popen: object) -> subprocess.Popen[str]:
    """``python -c code args`` with this process's environment (AWS_* included)."""
    return subprocess.Popen(
        [PYTHON, "-c", code, *args],
        cwd=PROJECT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


# ----------------------------------------------------------------------------- file operations


def test_write_read_delete_list_and_exists(local_or_bucket: str) -> None:
    store = open_store(local_or_bucket)
    assert store.list_files("a") == {} and store.list_dirs("a") == []
    assert not store.exists("a/one.bin")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("a/one.bin")
    store.delete("a/one.bin")  # nothing there: nothing happens

    store.write_bytes("a/one.bin", b"1")
    store.write_bytes("a/two.bin", b"22", durable=False)
    store.write_bytes("a/b/three.bin", b"333")
    store.write_bytes("a/c/d/four.bin", b"4444")
    assert store.read_bytes("a/one.bin") == b"1"
    assert store.exists("a/two.bin") and store.exists("a/b/three.bin")
    assert not store.exists("a/b") and not store.exists("a/three.bin")
    files = store.list_files("a")
    assert sorted(files) == ["one.bin", "two.bin"]
    assert files["two.bin"].size == 2
    assert sorted(store.list_dirs("a")) == ["b", "c"]
    assert store.list_dirs("a/c") == ["d"] and store.list_files("a/c") == {}
    assert walk(store, "a") == ["a/b/three.bin", "a/c/d/four.bin", "a/one.bin", "a/two.bin"]

    version = files["one.bin"].version
    store.write_bytes("a/one.bin", b"replaced")
    replaced = store.list_files("a")["one.bin"]
    assert replaced.size == 8 and store.read_bytes("a/one.bin") == b"replaced"
    if not store.is_local:  # an ETag; a local mtime may repeat within the clock's resolution
        assert replaced.version != version

    store.delete("a/one.bin")
    store.delete("a/b/three.bin")
    assert not store.exists("a/one.bin")
    assert sorted(store.list_files("a")) == ["two.bin"]
    # An emptied "directory" holds no file (SeaweedFS still lists it as a common prefix).
    assert store.list_files("a/b") == {} and walk(store, "a/b") == []
    store.check_writable()


def _append(token: str):
    def change(old: bytes | None) -> bytes:
        return json.dumps([*(json.loads(old) if old else []), token]).encode()

    return change


def test_concurrent_updates_from_threads_never_lose_one(local_or_bucket: str) -> None:
    store = open_store(local_or_bucket)
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        start.wait()
        for i in range(12):
            store.update("shared/list.json", _append(f"t{n}-{i}"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tokens = json.loads(store.read_bytes("shared/list.json"))
    assert sorted(tokens) == sorted(f"t{n}-{i}" for n in range(8) for i in range(12))
    # Each writer's own updates land in its order.
    for n in range(8):
        mine = [t for t in tokens if t.startswith(f"t{n}-")]
        assert mine == [f"t{n}-{i}" for i in range(12)]
    # A change returning None leaves the file as it is.
    store.update("shared/list.json", lambda old: None)
    assert json.loads(store.read_bytes("shared/list.json")) == tokens


def test_create_writes_only_when_absent_and_of_racing_creators_one_wins(
    local_or_bucket: str,
) -> None:
    store = open_store(local_or_bucket)
    for round_ in range(5):
        key = f"created/{round_}.json"
        start = threading.Barrier(8)
        won: list[int] = []

        def creator(
            n: int, key: str = key, start: threading.Barrier = start, won: list[int] = won
        ) -> None:
            start.wait()
            if store.create(key, f"writer {n}".encode()):
                won.append(n)

        threads = [threading.Thread(target=creator, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1
        assert store.read_bytes(key) == f"writer {won[0]}".encode()
        assert not store.create(key, b"later")
        assert store.read_bytes(key) == f"writer {won[0]}".encode()
    assert sorted(store.list_files("created")) == [f"{n}.json" for n in range(5)]


_UPDATER = """
import json, sys
from pipeline.storage.store import open_store
store = open_store(sys.argv[1])
token, count = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
for i in range(count):
    store.update(
        "shared/list.json",
        lambda old, i=i: json.dumps([*(json.loads(old) if old else []), f"{token}-{i}"]).encode(),
    )
"""


def test_concurrent_updates_from_two_processes_never_lose_one(local_or_bucket: str) -> None:
    store = open_store(local_or_bucket)
    store.update("shared/list.json", _append("seed"))
    procs = [_child(_UPDATER, local_or_bucket, name, "40") for name in ("p", "q")]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
    for proc in procs:  # both start at once
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    tokens = json.loads(store.read_bytes("shared/list.json"))
    expected = ["seed", *(f"{p}-{i}" for p in "pq" for i in range(40))]
    assert sorted(tokens) == sorted(expected) and tokens[0] == "seed"


# ----------------------------------------------------------------------- one-object partitions


def test_a_bucket_commits_a_multi_file_partition_as_one_object(s3_env: str, tmp_path: Path) -> None:
    store = open_store(s3_env)
    prefix = f"tables/t/created_date={DAY.isoformat()}"
    # A stray file of another layout (e.g. copied from a local data dir) is removed.
    store.write_bytes(f"{prefix}/part-01-00007.parquet", b"not even parquet")
    staged = tmp_path / "staged"
    staged.mkdir()
    parts = {
        "part-00-00000.parquet": pa.table({"a": [1, 2], "b": ["x", "y"]}),
        "part-00-00001.parquet": pa.table({"a": [3], "c": [1.5]}),
        "part-01-00000.parquet": pa.table({"a": [4, 5, 6], "b": ["z", None, "w"]}),
    }
    for name, table in parts.items():
        pq.write_table(table, staged / name)
    (staged / "notes.txt").write_text("not a part")

    live = store.commit_partition(staged, prefix, {"fingerprint": "f1", "rows": 6})
    assert live == {k: v for k, v in store.list_files(prefix).items() if k == SINGLE_PART}

    files = store.list_files(prefix)
    assert sorted(files) == [BUILD_RECORD, SINGLE_PART]
    got = pq.read_table(pa.BufferReader(store.read_bytes(f"{prefix}/{SINGLE_PART}")))
    assert got.column_names == ["a", "b", "c"]
    assert got.to_pylist() == [
        {"a": 1, "b": "x", "c": None},
        {"a": 2, "b": "y", "c": None},
        {"a": 3, "b": None, "c": 1.5},
        {"a": 4, "b": "z", "c": None},
        {"a": 5, "b": None, "c": None},
        {"a": 6, "b": "w", "c": None},
    ]
    record = json.loads(store.read_bytes(f"{prefix}/{BUILD_RECORD}"))
    assert record["fingerprint"] == "f1" and record["rows"] == 6 and record["files"] == 1
    assert record["part_version"] == files[SINGLE_PART].version
    assert store.record_matches(record, files)
    # The object replaced behind the record's back no longer matches it.
    pq.write_table(pa.table({"a": [7]}), tmp_path / "other.parquet")
    store.write_bytes(f"{prefix}/{SINGLE_PART}", (tmp_path / "other.parquet").read_bytes())
    assert not store.record_matches(record, store.list_files(prefix))


# ------------------------------------------------------------------------------------- leases


@pytest.fixture
def short_leases(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setenv(LEASE_SECONDS_ENV, "2")
    return 2.0


def _raw(object_store: ObjectStoreServer, url: str):
    """obstore on the data dir's prefix, past the Store (to play another owner)."""
    return object_store.store(prefix=bucket_prefix(url))


def test_a_second_holder_waits_while_the_first_holds_past_the_lease_time(
    s3_env: str, short_leases: float
) -> None:
    first, second = BucketStore(s3_env), BucketStore(s3_env)
    got = threading.Event()
    took: list[float] = []

    def take() -> None:
        with second.lock(LOCK):
            took.append(time.monotonic())
            got.set()

    thread = threading.Thread(target=take)
    with first.lock(LOCK):
        thread.start()
        # Longer than the time to live: the holder's renewals keep the second waiting.
        assert not got.wait(short_leases * 1.75)
        first.assert_locked(LOCK)
        released = time.monotonic()
    thread.join(15)
    assert got.is_set() and took[0] >= released
    assert not first.exists(Leases.key(LOCK))  # released: the lease object is gone


_HOLDER = """
import sys, time
from pipeline.storage.bucket import BucketStore
store = BucketStore(sys.argv[1])
with store.lock(sys.argv[2]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_killed_holder_frees_the_day_once_its_lease_expires(
    s3_env: str, short_leases: float
) -> None:
    holder = _child(_HOLDER, s3_env, LOCK)
    try:
        assert holder.stdout.readline() == "held\n", holder.stderr.read()
        store = BucketStore(s3_env)
        with pytest.raises(LeaseLost):
            store.assert_locked(LOCK)
        time.sleep(short_leases)  # the holder renews meanwhile: still its lease
        assert json.loads(store.read_bytes(Leases.key(LOCK)))["owner"] != store.leases.owner
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed = time.monotonic()
        with store.lock(LOCK):
            waited = time.monotonic() - killed
            store.assert_locked(LOCK)
    finally:
        holder.kill()
        holder.communicate()
    # Its last renewal was at most a third of the time to live before the kill.
    assert short_leases / 3 <= waited <= short_leases + 2.5, waited


_RACER = """
import json, logging, sys, time
from pipeline.storage.bucket import BucketStore
logging.basicConfig(level=logging.INFO, format="%(message)s")
store = BucketStore(sys.argv[1])
print("ready", flush=True)
start = float(sys.stdin.readline())
spans = []
for n in range(int(sys.argv[2])):
    while time.time() < start + 1.5 * n:
        time.sleep(0.0005)
    with store.lock(f"race-{n}"):
        begin = time.time()
        time.sleep(0.3)
        spans.append((begin, time.time()))
print(json.dumps(spans), flush=True)
"""


def test_two_processes_taking_over_one_expired_lease_one_wins(
    s3_env: str, object_store: ObjectStoreServer, short_leases: float
) -> None:
    rounds = 3
    raw = _raw(object_store, s3_env)
    dead = {"owner": "dead:1:x", "expires_at": time.time() - 1, "ttl": 2}
    for n in range(rounds):
        obstore.put(raw, Leases.key(f"race-{n}"), json.dumps(dead).encode())
    racers = [_child(_RACER, s3_env, str(rounds)) for _ in range(2)]
    for proc in racers:
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
    start = time.time() + 0.3
    for proc in racers:
        proc.stdin.write(f"{start}\n")
        proc.stdin.flush()
    outs = [proc.communicate(timeout=60) for proc in racers]
    assert all(proc.returncode == 0 for proc in racers), outs
    spans = [json.loads(out) for out, _ in outs]
    for n in range(rounds):
        (a0, a1), (b0, b1) = spans[0][n], spans[1][n]
        assert a1 <= b0 or b1 <= a0, f"round {n}: both held the lease at once"
    # Each expired lease was taken over exactly once; the loser waited and then created it anew.
    takeovers = sum(err.count("took over the expired lease") for _, err in outs)
    assert takeovers == rounds, [err for _, err in outs]


def _job(job_id: str, n: int) -> dict:
    segs = [{"start_time": i, "end_time": i + 1, "entities": {"k": i}} for i in range(n)]
    return {"job_id": job_id, "status": "completed", "data": {"segment_entities": segs}, "total": n}


def test_a_holder_whose_lease_was_taken_over_raises_lease_lost_and_writes_nothing(
    s3_env: str, object_store: ObjectStoreServer, short_leases: float
) -> None:
    store = BucketStore(s3_env)
    raw = _raw(object_store, s3_env)
    other = {"owner": "elsewhere:7:abc", "expires_at": time.time() + 60, "ttl": 60}
    with store.lock(LOCK):
        store.assert_locked(LOCK)
        obstore.put(raw, Leases.key(LOCK), json.dumps(other).encode())
        with pytest.raises(LeaseLost, match="elsewhere:7:abc"):
            store.assert_locked(LOCK)
        with pytest.raises(LeaseLost):
            write_day(store, DAY, [_job("a", 3)], fetched_at=0, locked=True)
        time.sleep(short_leases / 3 + 0.5)  # a renewal runs, fails and marks the lease lost
        with pytest.raises(LeaseLost):
            write_day(store, DAY, [_job("a", 3)], fetched_at=0, locked=True)
    # No partition was written, and leaving the block did not delete the other owner's lease.
    assert not [k for k in walk(store, "tables") if "created_date=" in k]
    assert json.loads(store.read_bytes(Leases.key(LOCK))) == other
    # The same store takes a lease again once the other one's is gone.
    obstore.delete(raw, Leases.key(LOCK))
    with store.lock(LOCK):
        assert (
            write_day(store, DAY, [_job("a", 3)], fetched_at=0, locked=True).rows[
                "segment_entities"
            ]
            == 3
        )


# -------------------------------------------------------------------------------- credentials


def _texts(exc: BaseException) -> str:
    return "".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def _calls_of(bad: BucketStore, staged: Path) -> dict:
    """One call of each kind the store makes, for a store whose credentials are refused."""
    return {
        "read": lambda: bad.read_bytes("tables/extract_jobs/_schema.json"),
        "write": lambda: bad.write_bytes("x", b"1"),
        "delete": lambda: bad.delete("x"),
        "list files": lambda: bad.list_files("tables"),
        "list dirs": lambda: bad.list_dirs("tables"),
        "exists": lambda: bad.exists("x"),
        "update": lambda: bad.update("u", lambda old: b"1"),
        "lock": lambda: bad.lock("day-x").__enter__(),
        "assert locked": lambda: bad.assert_locked("day-x"),
        "commit": lambda: bad.commit_partition(staged, "tables/t/created_date=x", {}),
        "writable": bad.check_writable,
        "read_table": lambda: pipeline.read_table("segment_entities", bad),
        "pyarrow": lambda: bad.parquet_source("tables")[0].get_file_info(
            bad.parquet_source("tables/extract_jobs/_schema.json")[1]
        ),
    }


def test_credentials_never_show_in_errors_reprs_or_pickles(
    s3_env: str, object_store: ObjectStoreServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret, key_id = object_store.secret_key, object_store.access_key
    good = BucketStore(s3_env)
    write_day(good, DAY, [_job("a", 2)], fetched_at=0)
    for text in (repr(good), str(good), good.describe("x"), good.url):
        assert secret not in text and key_id not in text
    for blob in (pickle.dumps(good), pickle.dumps(LandedJobs(good, DAY, ()))):
        assert secret.encode() not in blob and key_id.encode() not in blob
    # Unpickled (in a build process), the store reads the credentials from its environment.
    again = pickle.loads(pickle.dumps(good))
    assert again.read_bytes("tables/segment_entities/_schema.json")
    assert again.leases.owner == good.leases.owner

    wrong_key, wrong_secret = "AKIDWRONG0123456789", "wrong-secret-4f9a8b7c6d5e4f3a2b1c"
    cases = {
        "wrong secret": {"AWS_SECRET_ACCESS_KEY": wrong_secret},
        "wrong key id": {"AWS_ACCESS_KEY_ID": wrong_key, "AWS_SECRET_ACCESS_KEY": wrong_secret},
    }
    for case, env in cases.items():
        with monkeypatch.context() as mp:
            for name, value in env.items():
                mp.setenv(name, value)
            bad = BucketStore(s3_env)
            staged = tmp_path / case.replace(" ", "-")
            staged.mkdir()
            pq.write_table(pa.table({"a": [1]}), staged / SINGLE_PART)
            calls = _calls_of(bad, staged)
            for what, call in calls.items():
                # A BucketError (an OSError saying what and where), but pyarrow's own read.
                expected = OSError if what == "pyarrow" else BucketError
                with pytest.raises(expected) as failure:
                    call()
                text = _texts(failure.value)
                for value in (secret, key_id, wrong_secret, wrong_key):
                    assert value not in text, f"{case}: {what}: {text}"
            assert wrong_secret.encode() not in pickle.dumps(bad)


def test_a_url_with_credentials_is_refused_without_echoing_them(s3_env: str) -> None:
    bucket_and_prefix = s3_env.split("://", 1)[1]
    for url in (
        f"s3://AKIDINURL:pass-in-url-secret@{bucket_and_prefix}",
        f"s3://AKIDINURL@{bucket_and_prefix}",
        f"s3://{bucket_and_prefix}?secret=pass-in-url-secret",
    ):
        with pytest.raises(BucketError) as refused:
            open_store(url)
        text = _texts(refused.value)
        assert "never the URL" in str(refused.value) and "AWS_ACCESS_KEY_ID" in str(refused.value)
        assert "pass-in-url-secret" not in text and "AKIDINURL" not in text
    with pytest.raises(BucketError, match="names no bucket"):
        open_store("s3:///prefix")


def test_aws_profile_files_alone_reach_the_bucket(
    object_store: ObjectStoreServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n"
        f"[pipeline-test]\naws_access_key_id = {object_store.access_key}\n"
        f"aws_secret_access_key = {object_store.secret_key}\n"
    )
    (home / ".aws" / "config").write_text(
        f"[profile pipeline-test]\nregion = {object_store.region}\n"
        f"endpoint_url = {object_store.endpoint}\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_PROFILE", "pipeline-test")
    url = object_store.fresh_prefix()
    store = BucketStore(url)
    store.write_bytes("hello.txt", b"from a profile")
    assert store.read_bytes("hello.txt") == b"from a profile"
    assert bytes(obstore.get(_raw(object_store, url), "hello.txt").bytes()) == b"from a profile"
    write_day(store, DAY, [_job("a", 4)], fetched_at=0)  # leases, commits and the schema
    assert len(pipeline.read_table("segment_entities", store)) == 4  # through pyarrow's S3
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(BucketError, match="no-such-profile"):
        BucketStore(url)


def test_list_multipart_uploads_sees_an_upload_in_progress(
    s3_env: str, object_store: ObjectStoreServer
) -> None:
    """The raw ListMultipartUploads the crash tests use to prove no upload was left open does
    find one: start one by hand (CreateMultipartUpload), list it, abort it."""
    prefix = bucket_prefix(s3_env)
    key = f"{prefix}/tables/t/created_date=2026-01-01/part-00000.parquet"
    assert multipart_uploads(object_store, prefix) == []
    created = s3_request(object_store, "POST", key, {"uploads": ""})
    assert created.status_code == 200, created.text
    [(listed_key, upload_id)] = multipart_uploads(object_store, prefix)
    assert listed_key == key and upload_id in created.text
    aborted = s3_request(object_store, "DELETE", key, {"uploadId": upload_id})
    assert aborted.status_code in (200, 204), aborted.text
    assert multipart_uploads(object_store, prefix) == []
