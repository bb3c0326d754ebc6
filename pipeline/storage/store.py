"""The one interface every read and write of a data dir goes through, and ``open_store``.

A data dir is a local directory (:class:`pipeline.storage.local.LocalStore`) or an object-store
URL such as ``s3://bucket/prefix`` (:class:`pipeline.storage.bucket.BucketStore`). Callers name
things by the keys :mod:`pipeline.storage.layout` builds; only the stores know where a key lives.
"""

from __future__ import annotations

import contextlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import settings
from pipeline.storage.layout import is_parquet

if TYPE_CHECKING:
    import pyarrow.fs


@dataclass(frozen=True)
class FileInfo:
    """A stored file's size and version: the version changes whenever the content is replaced
    (a local file's mtime in ns, an object's ETag)."""

    size: int
    version: str


class Store(ABC):
    """A data dir. Writes of whole files are atomic: a reader sees the old or the new content."""

    url: str

    @property
    def is_local(self) -> bool:
        return False

    def describe(self, key: str = "") -> str:
        """Where ``key`` lives, for people (a path or ``s3://…``; never credentials)."""
        return f"{self.url.rstrip('/')}/{key}" if key else self.url

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The file's content; ``FileNotFoundError`` when there is none."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes, *, durable: bool = True) -> None:
        """Replace the file with ``data`` at once. Without ``durable``, a local store does not sync
        the directory (a crash may lose the name, never expose a partial file)."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Write ``key`` whole and durably only if there is no such file yet: True when this
        call wrote it, False when it was there (two creators at once: exactly one gets True)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file (nothing when it is not there)."""

    @abstractmethod
    def list_files(self, prefix: str) -> dict[str, FileInfo]:
        """The files directly under ``prefix`` (a "directory" key), by name."""

    @abstractmethod
    def list_dirs(self, prefix: str) -> list[str]:
        """The names of the "directories" directly under ``prefix``."""

    @abstractmethod
    def lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        """An exclusive lock on ``name`` across processes (and, for a bucket, machines), held
        for the block; a holder that dies loses it."""

    @abstractmethod
    def update(self, key: str, change: Callable[[bytes | None], bytes | None]) -> None:
        """Read-modify-write ``key`` atomically: ``change`` gets the content (None: no file) and
        returns the new content (None: leave it). Concurrent updates never lose one another."""

    @abstractmethod
    def staging(self) -> contextlib.AbstractContextManager[Path]:
        """A fresh local directory to build partitions in, removed afterwards."""

    @abstractmethod
    def commit_partition(
        self, staged: Path, prefix: str, record: dict[str, Any]
    ) -> dict[str, FileInfo]:
        """Make the staged partition directory (Parquet files) live at ``prefix`` in one step
        for readers, with ``record`` (plus the live file count, ``files``) as its build record;
        returns the live Parquet files, as ``list_files`` would. The caller holds the day's
        lock."""

    @abstractmethod
    def parquet_source(self, prefix: str) -> tuple[pyarrow.fs.FileSystem, str]:
        """A pyarrow filesystem and the path in it of ``prefix``, for reading Parquet."""

    @abstractmethod
    def check_writable(self) -> None:
        """Raise ``OSError`` (saying why) when files could not be written here."""

    @abstractmethod
    def assert_locked(self, name: str) -> None:
        """Raise unless this process (or its parent) still holds the lock ``name``: checked
        before a commit."""

    def record_matches(self, record: dict[str, Any], files: dict[str, FileInfo]) -> bool:
        """Whether a partition's build record describes the partition's ``files`` as listed."""
        return record.get("files") == sum(is_parquet(name) for name in files)

    def exists(self, key: str) -> bool:
        head, _, name = key.rpartition("/")
        return name in self.list_files(head)

    def map(self, function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """``function`` over ``items`` in order (a bucket runs a few at once: each is requests)."""
        return [function(item) for item in items]


def is_bucket_url(data_dir: str | os.PathLike[str]) -> bool:
    return isinstance(data_dir, str) and data_dir.lower().startswith(settings.BUCKET_SCHEMES)


def redacted(data_dir: str | os.PathLike[str]) -> str:
    """A data dir as it may be shown: a bucket URL without any ``user:password@`` or query."""
    text = str(data_dir)
    if not is_bucket_url(text):
        return text
    scheme, _, rest = text.partition("://")
    location, _, path = rest.partition("/")
    return f"{scheme}://{location.rpartition('@')[2]}/{path.partition('?')[0]}".rstrip("/")


_opened: dict[tuple[int, str], Store] = {}
_opened_lock = threading.Lock()


def open_store(data_dir: str | os.PathLike[str] | Store) -> Store:
    """The store of a data dir: a local path, or ``s3://bucket/prefix`` (credentials and endpoint
    the standard AWS ways, see :mod:`pipeline.storage.bucket`). One store per data dir and
    process, so its clients and leases are shared."""
    if isinstance(data_dir, Store):
        return data_dir
    if is_bucket_url(data_dir):
        from pipeline.storage.bucket import BucketStore

        key = (os.getpid(), str(data_dir).rstrip("/"))
        with _opened_lock:
            if key not in _opened:
                _opened[key] = BucketStore(key[1])
            return _opened[key]
    from pipeline.storage.local import LocalStore

    return LocalStore(Path(data_dir))
