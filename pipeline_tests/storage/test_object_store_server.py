"""The ``object_store`` fixture is a real S3 endpoint: SeaweedFS on loopback, through obstore.

These pin what the object-store implementation relies on: plain PUT/GET/LIST/DELETE,
``If-None-Match: *`` (put mode "create") and ``If-Match`` (put with an e_tag) enforced by the
server, the AWS_* environment alone being enough for ``S3Store.from_url``, and weed listening
on 127.0.0.1 only, on the ports it was given.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import obstore
import psutil
import pytest
import requests
from obstore.exceptions import AlreadyExistsError, PreconditionError
from obstore.store import S3Store

from pipeline_tests.object_store import ObjectStoreServer


@pytest.fixture
def store(object_store: ObjectStoreServer) -> S3Store:
    """An S3Store under a prefix of its own in the session's bucket."""
    return object_store.store(prefix=uuid.uuid4().hex)


def test_put_then_get_returns_the_bytes_and_the_etag(store):
    payload = bytes(range(256)) * 8
    put = obstore.put(store, "a/b.bin", payload)
    got = obstore.get(store, "a/b.bin")
    assert bytes(got.bytes()) == payload
    assert got.meta["size"] == len(payload)
    assert got.meta["e_tag"] == put["e_tag"]
    # SeaweedFS's ETag of a single PUT is the quoted MD5 of the bytes, as AWS S3's.
    assert put["e_tag"] == f'"{hashlib.md5(payload).hexdigest()}"'


def test_conditional_create_rejects_an_existing_key(store):
    obstore.put(store, "lease.json", b"first", mode="create")
    with pytest.raises(AlreadyExistsError):
        obstore.put(store, "lease.json", b"second", mode="create")
    assert bytes(obstore.get(store, "lease.json").bytes()) == b"first"


def test_if_match_rejects_a_wrong_etag_and_accepts_the_right_one(store):
    first = obstore.put(store, "lease.json", b"v1")
    with pytest.raises(PreconditionError):
        obstore.put(store, "lease.json", b"lost", mode={"e_tag": '"0123456789abcdef"'})
    assert bytes(obstore.get(store, "lease.json").bytes()) == b"v1"
    second = obstore.put(store, "lease.json", b"v2", mode={"e_tag": first["e_tag"]})
    assert second["e_tag"] != first["e_tag"]
    assert bytes(obstore.get(store, "lease.json").bytes()) == b"v2"
    # The e_tag that was right a moment ago is now stale.
    with pytest.raises(PreconditionError):
        obstore.put(store, "lease.json", b"late", mode={"e_tag": first["e_tag"]})


def test_if_match_on_a_missing_key_fails(store):
    # SeaweedFS answers 412 (AWS S3 answers 404 NoSuchKey): either way the write is refused.
    with pytest.raises(PreconditionError):
        obstore.put(store, "absent.json", b"x", mode={"e_tag": '"0123456789abcdef"'})


def test_delete_with_if_match_is_conditional(store):
    """SeaweedFS honours If-Match on DELETE (412 on a wrong ETag). obstore has no conditional
    delete, so the request is a presigned DELETE with the header added."""
    put = obstore.put(store, "lease.json", b"v1")
    url = obstore.sign(store, "DELETE", "lease.json", dt.timedelta(minutes=5))
    wrong = requests.delete(url, headers={"If-Match": '"0123456789abcdef"'}, timeout=10)
    assert wrong.status_code == 412
    assert bytes(obstore.get(store, "lease.json").bytes()) == b"v1"
    right = requests.delete(url, headers={"If-Match": put["e_tag"]}, timeout=10)
    assert right.status_code == 204
    with pytest.raises(FileNotFoundError):
        obstore.head(store, "lease.json")


def test_list_under_a_prefix_and_delete(store):
    keys = [f"tables/t/created_date=2026-01-0{d}/part-00000.parquet" for d in (1, 2, 3)]
    for key in [*keys, "tables/u/x.parquet", "raw/y.json.zst"]:
        obstore.put(store, key, b"x")
    listed = sorted(m["path"] for m in obstore.list(store, prefix="tables/t").collect())
    assert listed == keys
    obstore.delete(store, keys[1])
    # obstore raises the builtin FileNotFoundError for a missing key on GET and HEAD.
    with pytest.raises(FileNotFoundError):
        obstore.get(store, keys[1])
    with pytest.raises(FileNotFoundError):
        obstore.head(store, keys[1])
    obstore.delete(store, keys[1])  # deleting a missing key is no error
    listed = sorted(m["path"] for m in obstore.list(store, prefix="tables/t").collect())
    assert listed == [keys[0], keys[2]]
    # Delimited listing: the "directories" under tables/.
    result = obstore.list_with_delimiter(store, prefix="tables")
    assert sorted(result["common_prefixes"]) == ["tables/t", "tables/u"]


def test_the_aws_environment_alone_configures_obstore(s3_env, object_store):
    """What the pipeline does with a ``s3://bucket/prefix`` data dir: S3Store.from_url, with
    endpoint, credentials, region and allow-http from AWS_* only."""
    assert s3_env.startswith(f"s3://{object_store.bucket}/")
    store = S3Store.from_url(s3_env)
    obstore.put(store, "hello.txt", b"hi")
    explicit = object_store.store(prefix=s3_env.removeprefix(f"s3://{object_store.bucket}/"))
    assert bytes(obstore.get(explicit, "hello.txt").bytes()) == b"hi"


def test_fresh_prefixes_are_distinct_and_empty(object_store):
    a, b = object_store.fresh_prefix(), object_store.fresh_prefix()
    assert a != b
    store = S3Store.from_url(a, **_explicit(object_store))
    assert obstore.list(store).collect() == []


def test_weed_listens_on_loopback_only_and_only_on_its_ports(object_store):
    proc = psutil.Process(object_store.pid)
    listening = [c for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}
    ports = {c.laddr.port for c in listening}
    assert object_store.ports["s3.port"] in ports
    # WebDAV is off: its port is only probed at start, never listened on.
    expected = set(object_store.ports.values()) - {object_store.ports["webdav.port"]}
    assert ports == expected


def test_the_s3_endpoint_wants_credentials(object_store):
    anonymous = requests.get(
        f"{object_store.endpoint}/{object_store.bucket}?list-type=2", timeout=5
    )
    assert anonymous.status_code == 403
    wrong = S3Store(
        object_store.bucket,
        **{**_explicit(object_store), "secret_access_key": "not-the-secret"},
    )
    with pytest.raises(obstore.exceptions.BaseError):
        obstore.put(wrong, f"{uuid.uuid4().hex}/x", b"x")


def _explicit(server: ObjectStoreServer) -> dict:
    return {
        "endpoint": server.endpoint,
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
        "region": server.region,
        "client_options": {"allow_http": True},
    }
