"""Locks, staging directories and atomic directory swaps (local filesystem).

A partition is replaced by building it completely in ``<data_dir>/.staging/<uuid>/`` and then
exchanging it with the live directory in one ``renameat2(RENAME_EXCHANGE)`` call, so a reader
sees the old files or the new ones, never a mix. Where that call is unavailable (non-Linux, or a
filesystem without support) the fallback is two renames, which leaves a short window in which the
partition is missing but never a mixed or half-written one. Each staging dir is guarded by an
fcntl lock on ``<uuid>.lock``; a staging dir whose lock nobody holds belongs to a writer that
died, and the next write removes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from pipeline.storage.errors import StorageFullError

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_STALE_TMP_SECONDS = 3600

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _renameat2 = _libc.renameat2
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    _renameat2.argtypes += [ctypes.c_uint]
    _renameat2.restype = ctypes.c_int
except (OSError, AttributeError):
    _renameat2 = None


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False when the platform cannot."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive fcntl lock held for the block (released by the kernel if we die)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def swap_in(staged: Path, target: Path) -> None:
    """Make ``staged`` (a complete directory) live at ``target``, replacing what was there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.rename(staged, target)
    elif exchange(staged, target):
        shutil.rmtree(staged)
    else:
        old = staged.with_name(staged.name + ".old")
        os.rename(target, old)
        os.rename(staged, target)
        shutil.rmtree(old)
    fsync_dir(target.parent)


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


@contextlib.contextmanager
def naming_full_device(path: Path) -> Iterator[None]:
    """Turn "no space left" while writing ``path`` into a ``StorageFullError`` naming it
    (``OSError`` from Python or from Arrow, whose message carries the errno)."""
    try:
        yield
    except StorageFullError:
        raise
    except OSError as exc:
        code = exc.errno if exc.errno in _FULL else None
        if code is None and "No space left on device" in str(exc):
            code = errno.ENOSPC
        if code is None:
            raise
        raise StorageFullError(code, os.strerror(code), str(path)) from exc


def atomic_write_bytes(path: Path, data: bytes, tmp_dir: Path, *, sync_dir: bool = True) -> None:
    """Write a file so readers see the old or the new content, never a partial one.

    The content is on disk before the file appears under its name; with ``sync_dir`` the name is
    too before this returns. Without it, the caller syncs the directory later (once for many
    files): until then a crash may lose the name, never expose a partial file.
    """
    with naming_full_device(path):
        tmp = _synced_temp(data, tmp_dir, path.parent)
        try:
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if sync_dir:
            fsync_dir(path.parent)


def _synced_temp(data: bytes, tmp_dir: Path, parent: Path) -> Path:
    """A new file in ``tmp_dir`` holding ``data`` on disk (``parent``, where it goes, made)."""
    tmp = tmp_dir / f"{uuid.uuid4().hex}.tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def create_file(path: Path, data: bytes, tmp_dir: Path) -> bool:
    """Give ``path`` the content ``data`` only if it does not exist: True when this call did.

    The content is synced under a temp name, then hard-linked to ``path`` (``link`` fails on an
    existing name, atomically), and the directory synced: a reader or a crash never sees a
    partial file, and of two creators exactly one wins."""
    with naming_full_device(path):
        tmp = _synced_temp(data, tmp_dir, path.parent)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
        return True


def scratch_write(path: Path, data: bytes) -> None:
    """Write a scratch file (nothing lost if a crash loses it) so that it appears whole."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@contextlib.contextmanager
def staging_dir(root: Path) -> Iterator[Path]:
    """A fresh ``<root>/<uuid>`` directory, locked while in use and removed afterwards (dead
    writers' leftovers under ``root`` are removed first)."""
    clean_stale_staging(root)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        name = uuid.uuid4().hex
        lock = root / f"{name}.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # a cleaner removed the lock file between create and lock: retry
    path = root / name
    try:
        path.mkdir()
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        lock.unlink(missing_ok=True)
        os.close(fd)


_STAGING_NAME = re.compile(r"[0-9a-f]{32}\Z")


def clean_stale_staging(root: Path) -> list[str]:
    """Remove staging dirs whose writer is gone (lock free) and old temp files.

    Only entries named like :func:`staging_dir` creates them (32 hex digits) are considered;
    anything else under ``root`` (e.g. another writer's temp dir) is left alone.
    """
    if not root.is_dir():
        return []
    removed = []
    for entry in root.iterdir():
        if entry.suffix == ".lock" and _STAGING_NAME.match(entry.stem):
            try:
                fd = os.open(entry, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                shutil.rmtree(entry.with_suffix(""), ignore_errors=True)
                entry.unlink(missing_ok=True)
                removed.append(entry.stem)
            finally:
                os.close(fd)
        elif _STAGING_NAME.match(entry.name) and not (root / f"{entry.name}.lock").exists():
            # Dirs are created after their lock file and removed before it; none means dead.
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
        elif entry.suffix == ".tmp" and _STAGING_NAME.match(entry.stem):
            try:
                stale = time.time() - entry.stat().st_mtime > _STALE_TMP_SECONDS
            except FileNotFoundError:  # its writer just renamed it into place
                continue
            if stale:
                entry.unlink(missing_ok=True)
                removed.append(entry.name)
    return removed
