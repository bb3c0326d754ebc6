"""Helpers for tests that run against a local data dir and a bucket alike: walk every file of a
data dir through its :class:`~pipeline.storage.store.Store`, and talk S3 to the test server
directly (SigV4-signed requests for what obstore does not expose, e.g. ListMultipartUploads).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import requests

from pipeline.storage.store import Store, open_store
from pipeline_tests.object_store import ObjectStoreServer

# The project's sources, for ``python -c`` children started in another working directory.
PROJECT = str(Path(__file__).resolve().parents[1])
PYTHON = sys.executable


def walk(data_dir: str | os.PathLike[str] | Store, prefix: str) -> list[str]:
    """Every file key under ``prefix`` (recursively), sorted."""
    store = open_store(data_dir)
    out = [f"{prefix}/{name}" for name in store.list_files(prefix)]
    for name in store.list_dirs(prefix):
        out.extend(walk(store, f"{prefix}/{name}"))
    return sorted(out)


def read_tree(
    data_dir: str | os.PathLike[str] | Store, roots: tuple[str, ...] = ("tables", "raw")
) -> dict[str, bytes]:
    """Every file under ``roots`` with its bytes (to prove nothing changed)."""
    store = open_store(data_dir)
    keys = [key for root in roots for key in walk(store, root)]
    return dict(zip(keys, store.map(store.read_bytes, keys), strict=True))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def s3_request(
    server: ObjectStoreServer,
    method: str,
    key: str = "",
    query: dict[str, str] | None = None,
    body: bytes = b"",
) -> requests.Response:
    """One AWS SigV4-signed request to the test server (path style: ``/<bucket>/<key>``)."""
    now = dt.datetime.now(dt.UTC)
    amz_date, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    host = server.endpoint.split("://", 1)[1]
    payload = hashlib.sha256(body).hexdigest()
    path = quote(f"/{server.bucket}/{key}" if key else f"/{server.bucket}", safe="/-_.~")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted((query or {}).items())
    )
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query,
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed,
            payload,
        ]
    )
    scope = f"{date}/{server.region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signing = ("AWS4" + server.secret_key).encode()
    for part in (date, server.region, "s3", "aws4_request"):
        signing = _hmac(signing, part)
    signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={server.access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    del headers["host"]  # requests sends the same Host itself
    url = server.endpoint + path + (f"?{canonical_query}" if canonical_query else "")
    return requests.request(method, url, data=body, headers=headers, timeout=30)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def multipart_uploads(server: ObjectStoreServer, prefix: str = "") -> list[tuple[str, str]]:
    """``(key, upload id)`` of every multipart upload in progress in the bucket under ``prefix``
    (a raw ListMultipartUploads request; one page: the tests start at most a few)."""
    query = {"uploads": ""}
    if prefix:
        query["prefix"] = prefix
    response = s3_request(server, "GET", query=query)
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.content)
    out = []
    for upload in (e for e in root if _local(e.tag) == "Upload"):
        fields = {_local(e.tag): e.text for e in upload}
        out.append((fields["Key"], fields["UploadId"]))
    return out


def bucket_prefix(data_dir: str) -> str:
    """The key prefix of an ``s3://bucket/prefix`` data dir inside its bucket."""
    return data_dir.split("://", 1)[1].partition("/")[2].strip("/")
