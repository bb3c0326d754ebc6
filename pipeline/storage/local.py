"""A data dir on a local filesystem: atomic renames, fcntl locks, partition directories swapped
in whole (see :mod:`pipeline.storage.atomic`)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.storage.atomic import (
    atomic_write_bytes,
    create_file,
    file_lock,
    fsync_dir,
    fsync_file,
    naming_full_device,
    staging_dir,
    swap_in,
)
from pipeline.storage.layout import BUILD_RECORD, LOCKS, STAGING, is_parquet
from pipeline.storage.store import FileInfo, Store

if TYPE_CHECKING:
    import pyarrow.fs


class LocalStore(Store):
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.url = str(self.root)
        # Temp files of whole-file writes live outside every listed directory.
        self._tmp = self.root / STAGING

    def __reduce__(self) -> tuple[Any, ...]:
        return (LocalStore, (self.root,))

    @property
    def is_local(self) -> bool:
        return True

    def path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def describe(self, key: str = "") -> str:
        return str(self.path(key))

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def write_bytes(self, key: str, data: bytes, *, durable: bool = True) -> None:
        atomic_write_bytes(self.path(key), data, self._tmp, sync_dir=durable)

    def create(self, key: str, data: bytes) -> bool:
        return create_file(self.path(key), data, self._tmp)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def list_files(self, prefix: str) -> dict[str, FileInfo]:
        try:
            entries = list(os.scandir(self.path(prefix)))
        except (FileNotFoundError, NotADirectoryError):
            return {}
        out = {}
        for entry in entries:
            try:
                if not entry.is_file():
                    continue
                st = entry.stat()
            except FileNotFoundError:
                continue
            out[entry.name] = FileInfo(st.st_size, str(st.st_mtime_ns))
        return out

    def list_dirs(self, prefix: str) -> list[str]:
        try:
            return [e.name for e in os.scandir(self.path(prefix)) if e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.root / LOCKS / f"{name}.lock")

    def assert_locked(self, name: str) -> None:
        """Nothing to check: an fcntl lock dies with its holder, and a build process with its
        parent."""

    def update(self, key: str, change: Callable[[bytes | None], bytes | None]) -> None:
        with self.lock("update-" + key.replace("/", "-")):
            try:
                old: bytes | None = self.read_bytes(key)
            except FileNotFoundError:
                old = None
            new = change(old)
            if new is not None:
                self.write_bytes(key, new)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        with staging_dir(self.root / STAGING) as path:
            yield path

    def commit_partition(
        self, staged: Path, prefix: str, record: dict[str, Any]
    ) -> dict[str, FileInfo]:
        files = {}
        for entry in os.scandir(staged):
            if is_parquet(entry.name):
                st = entry.stat()  # a rename keeps size and mtime
                files[entry.name] = FileInfo(st.st_size, str(st.st_mtime_ns))
        path = staged / BUILD_RECORD
        with naming_full_device(path):
            path.write_text(json.dumps({**record, "files": len(files)}))
            fsync_file(path)
            fsync_dir(staged)
        swap_in(staged, self.path(prefix))
        return files

    def parquet_source(self, prefix: str) -> tuple[pyarrow.fs.FileSystem, str]:
        import pyarrow.fs

        return pyarrow.fs.LocalFileSystem(), str(self.path(prefix))

    def check_writable(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-"):
            pass
