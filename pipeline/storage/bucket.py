"""A data dir in an S3-compatible bucket (``s3://bucket/prefix``), through obstore.

Credentials, region and endpoint come the standard AWS ways: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` (or ``AWS_DEFAULT_REGION``),
``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) for S3-compatible stores, and ``AWS_PROFILE``
(static keys, region and ``endpoint_url`` from ``~/.aws/credentials`` and ``~/.aws/config``);
with no keys at all, obstore's own chain (web identity, instance metadata). They are never part
of the URL, and no message here carries them.

A partition is one object, ``part-00000.parquet``, replaced by a single PUT: S3 makes a PUT
visible whole or not at all, so a reader listing ``tables/<t>/**/*.parquet`` sees the old day or
the new one. No multipart upload is ever started, so a killed run leaves nothing behind in the
bucket but its leases, which expire. Days are locked by leases (:mod:`pipeline.storage.lease`).
"""

from __future__ import annotations

import configparser
import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from pipeline.storage.atomic import staging_dir
from pipeline.storage.errors import BucketError
from pipeline.storage.layout import BUILD_RECORD, SINGLE_PART, is_parquet
from pipeline.storage.lease import Leases
from pipeline.storage.store import FileInfo, Store

if TYPE_CHECKING:
    import pyarrow.fs

# S3's limit for one PUT; a day's partition of one table is far below it.
MAX_SINGLE_PUT = 5 * 2**30
# Requests in flight for a listing's pages or a batch of small writes.
_THREADS = 8


def _aws_settings() -> dict[str, str]:
    """The AWS settings from the environment, and from ``AWS_PROFILE``'s files for what the
    environment does not set."""
    env = os.environ
    out = {
        "access_key_id": env.get("AWS_ACCESS_KEY_ID", ""),
        "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY", ""),
        "session_token": env.get("AWS_SESSION_TOKEN", ""),
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", ""),
        "endpoint": env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL", ""),
    }
    profile = env.get("AWS_PROFILE")
    if profile:
        home = Path.home() / ".aws"
        credentials = configparser.ConfigParser()
        credentials.read(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / "credentials")
        config = configparser.ConfigParser()
        config.read(env.get("AWS_CONFIG_FILE") or home / "config")
        sections = [credentials[s] for s in (profile,) if credentials.has_section(s)] + [
            config[s] for s in (f"profile {profile}", profile) if config.has_section(s)
        ]
        if not sections:
            raise BucketError(f"AWS_PROFILE={profile!r}: no such profile in {home}")
        names = {
            "access_key_id": "aws_access_key_id",
            "secret_access_key": "aws_secret_access_key",
            "session_token": "aws_session_token",
            "region": "region",
            "endpoint": "endpoint_url",
        }
        for ours, theirs in names.items():
            if not out[ours]:
                out[ours] = next((s[theirs] for s in sections if theirs in s), "")
    return {k: v for k, v in out.items() if v}


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if not parts.netloc:
        raise BucketError(f"{url!r} names no bucket: write s3://bucket or s3://bucket/prefix")
    if parts.username or parts.password or parts.query:
        raise BucketError(
            "a bucket data dir is s3://bucket/prefix with nothing else: credentials come from "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE, never the URL"
        )
    return parts.netloc, parts.path.strip("/")


class BucketStore(Store):
    def __init__(self, url: str, owner: str | None = None) -> None:
        self.bucket, self.prefix = _split(url)
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        aws = _aws_settings()
        self._aws = aws
        config: dict[str, Any] = {k: v for k, v in aws.items() if k != "endpoint"}
        client: dict[str, Any] = {"timeout": "60s", "connect_timeout": "5s"}
        if "endpoint" in aws:
            config["endpoint"] = aws["endpoint"]
            client["allow_http"] = aws["endpoint"].startswith("http://")
        retry = {"max_retries": 5, "retry_timeout": dt.timedelta(seconds=60)}
        self._store = S3Store(
            self.bucket,
            prefix=self.prefix or None,
            client_options=client,
            retry_config=retry,
            **config,
        )
        self.leases = Leases(self._store, lambda: self.url, owner)
        self._fs: pyarrow.fs.FileSystem | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # The URL and the lease owner only: a build process reads the credentials from its own
        # environment, so none is written into a pickle.
        return (BucketStore, (self.url, self.leases.owner))

    def _fail(self, exc: BaseException, what: str, key: str) -> BucketError:
        where = self.describe(key)
        if isinstance(exc, UnauthenticatedError | PermissionDeniedError):
            why = (
                "access denied: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
                " and the bucket's policy"
            )
        else:
            why = str(exc).split("\n")[0][:300]
        return BucketError(f"cannot {what} {where}: {why}")

    @contextlib.contextmanager
    def _errors(self, what: str, key: str) -> Iterator[None]:
        try:
            yield
        except (NotFoundError, FileNotFoundError) as exc:
            raise FileNotFoundError(f"no such object: {self.describe(key)}") from exc
        except (AlreadyExistsError, PreconditionError):
            raise
        except BaseError as exc:
            raise self._fail(exc, what, key) from None

    def read_bytes(self, key: str) -> bytes:
        with self._errors("read", key):
            return bytes(obstore.get(self._store, key).bytes())

    def write_bytes(self, key: str, data: bytes, *, durable: bool = True) -> None:
        with self._errors("write", key):
            obstore.put(self._store, key, data, use_multipart=False)

    def create(self, key: str, data: bytes) -> bool:
        try:
            with self._errors("write", key):
                obstore.put(self._store, key, data, mode="create", use_multipart=False)
        except (AlreadyExistsError, PreconditionError):
            return False
        return True

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError), self._errors("delete", key):
            obstore.delete(self._store, key)

    def _listing(self, prefix: str) -> dict[str, Any]:
        with self._errors("list", prefix):
            return obstore.list_with_delimiter(self._store, prefix.rstrip("/") + "/")

    def list_files(self, prefix: str) -> dict[str, FileInfo]:
        objects = self._listing(prefix)["objects"]
        # Some stores (SeaweedFS) list a "directory" emptied by deletes as an object named like
        # the prefix itself: it is no file in it.
        own = prefix.strip("/")
        return {
            meta["path"].rsplit("/", 1)[-1]: FileInfo(meta["size"], str(meta["e_tag"]))
            for meta in objects
            if meta["path"].strip("/") != own
        }

    def list_dirs(self, prefix: str) -> list[str]:
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in self._listing(prefix)["common_prefixes"]]

    def exists(self, key: str) -> bool:
        try:
            with self._errors("look up", key):
                obstore.head(self._store, key)
        except FileNotFoundError:
            return False
        return True

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with contextlib.ExitStack() as held:
            # Only taking the lease is this store's error (said as every other request's is);
            # the block's own errors pass through untouched.
            with self._errors("take the lease", self.leases.key(name)):
                held.enter_context(self.leases.hold(name))
            yield

    def assert_locked(self, name: str) -> None:
        with self._errors("read the lease", self.leases.key(name)):
            self.leases.assert_held(name)

    def update(self, key: str, change: Callable[[bytes | None], bytes | None]) -> None:
        while True:
            try:
                with self._errors("read", key):
                    current = obstore.get(self._store, key)
                    old: bytes | None = bytes(current.bytes())
                mode: Any = {"e_tag": current.meta["e_tag"]}
            except FileNotFoundError:
                old, mode = None, "create"
            new = change(old)
            if new is None:
                return
            try:
                with self._errors("write", key):
                    obstore.put(self._store, key, new, mode=mode, use_multipart=False)
                return
            except (AlreadyExistsError, PreconditionError):
                continue  # another writer got there first: merge into theirs

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        with staging_dir(Path(tempfile.gettempdir()) / "cloudglue-pipeline-staging") as path:
            yield path

    def commit_partition(
        self, staged: Path, prefix: str, record: dict[str, Any]
    ) -> dict[str, FileInfo]:
        part = _one_file(staged)
        size = part.stat().st_size
        key = f"{prefix}/{SINGLE_PART}"
        if size > MAX_SINGLE_PUT:
            raise BucketError(
                f"cannot write {self.describe(key)}: {size} bytes is over S3's limit for one PUT"
            )
        with self._errors("write", key):
            # One PUT: readers see the whole new object or the old one.
            etag = obstore.put(self._store, key, part, use_multipart=False)["e_tag"]
        strays = [n for n in self.list_files(prefix) if is_parquet(n) and n != SINGLE_PART]
        for name in strays:  # e.g. a local data dir's part files copied into the bucket
            self.delete(f"{prefix}/{name}")
        # The record names the object it describes: a partition replaced by a run that died
        # before writing its record is not taken for the one the record describes.
        body = json.dumps({**record, "files": 1, "part_version": str(etag)}).encode()
        self.write_bytes(f"{prefix}/{BUILD_RECORD}", body)
        return {SINGLE_PART: FileInfo(size, str(etag))}

    def record_matches(self, record: dict[str, Any], files: dict[str, FileInfo]) -> bool:
        part = files.get(SINGLE_PART)
        return part is not None and record.get("part_version") == part.version

    def parquet_source(self, prefix: str) -> tuple[pyarrow.fs.FileSystem, str]:
        if self._fs is None:
            import pyarrow.fs

            aws = self._aws
            kwargs: dict[str, Any] = {
                "access_key": aws.get("access_key_id"),
                "secret_key": aws.get("secret_access_key"),
                "session_token": aws.get("session_token"),
                "region": aws.get("region") or "us-east-1",
            }
            if "endpoint" in aws:
                endpoint = urlsplit(aws["endpoint"])
                kwargs["endpoint_override"] = endpoint.netloc
                kwargs["scheme"] = endpoint.scheme or "https"
            self._fs = pyarrow.fs.S3FileSystem(**{k: v for k, v in kwargs.items() if v})
        path = "/".join(p for p in (self.bucket, self.prefix, prefix) if p)
        return self._fs, path

    def check_writable(self) -> None:
        key = f".locks/.write-test-{self.leases.owner.rsplit(':', 1)[-1]}"
        self.write_bytes(key, b"")
        self.delete(key)

    def map(self, function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        if len(items) < 2:
            return [function(item) for item in items]
        with ThreadPoolExecutor(min(_THREADS, len(items))) as pool:
            return list(pool.map(function, items))


def _one_file(staged: Path) -> Path:
    """The staged partition as one Parquet file: its only file, or its files' row groups
    rewritten in order into one (columns a file lacks are null)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.storage.shards import ROW_GROUP_SIZE

    parts = sorted(p for p in staged.iterdir() if is_parquet(p.name))
    if len(parts) == 1:
        return parts[0]
    schema = pa.unify_schemas([pq.read_schema(p) for p in parts], promote_options="permissive")
    merged = staged.parent / f"{staged.name}.merged.parquet"
    with pq.ParquetWriter(merged, schema, compression="zstd") as writer:
        for path in parts:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=ROW_GROUP_SIZE):
                columns = [
                    batch.column(f.name).cast(f.type)
                    if f.name in batch.schema.names
                    else pa.nulls(batch.num_rows, f.type)
                    for f in schema
                ]
                writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))
    return merged
