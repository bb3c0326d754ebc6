"""Build processes that ``sync_range`` hands landed days to: each builds and commits the days of a
batch (``build_day``) and checks them in one DuckDB pass (``check_days``).

They start once per range, not once per day (a Python process with pyarrow and DuckDB is costly
to start: bench/README.md), and let a range's builds use every CPU while the parent process
fetches. The parent holds the days' locks; a worker dies with its parent (``PR_SET_PDEATHSIG``),
so it never commits a day whose lock is gone (in a bucket, where the lock is a lease, it checks
before each commit that the lease is still its parent's). A plain ``python`` child speaking
pickles over its stdin and stdout, not ``multiprocessing``: see
``pipeline.storage._build_worker``. It runs ``main`` of this module as imported (not as
``__main__``), so results unpickle in the parent as ``pipeline.sync.day_builders.BuiltDay``.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# Days handed to a build process at once at most: a batch is checked in one DuckDB pass, and its
# results come back together.
BATCH_DAYS = 32
_HEADER = struct.Struct("!Q")


@dataclass
class BuiltDay:
    """What a build process did with one day: its partitions and checks, or why it failed."""

    day: dt.date
    built: Any = None
    checks: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    seconds: float = 0.0


def _send(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next pickled value, or raises EOFError when the other side is gone."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class _Worker:
    def __init__(self, results: queue.Queue[list[BuiltDay]]) -> None:
        cmd = [sys.executable, "-c", "from pipeline.sync.day_builders import main; main()"]
        # numpy's import starts a BLAS thread per CPU, which a worker never uses.
        env = {"OPENBLAS_NUM_THREADS": "1", **os.environ}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.batch: list[dt.date] = []
        self._results = results
        self._reader = threading.Thread(target=self._read, daemon=True, name="day-builder")
        self._reader.start()

    @property
    def idle(self) -> bool:
        return not self.batch

    def build(self, data_dir: Any, days: list[tuple[dt.date, bool, Path | None]]) -> None:
        """Build ``days``: ``(day, fresh, copies)``, as ``build_day`` takes them."""
        self.batch = [day for day, _, _ in days]
        try:
            assert self.proc.stdin is not None
            _send(self.proc.stdin, (data_dir, days))
        except (BrokenPipeError, OSError):
            pass  # the reader reports how the process ended

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            try:
                built = _receive(self.proc.stdout)
            except EOFError:
                break
            except Exception:  # a result that does not unpickle: the batch fails, loudly
                self.proc.kill()
                break
            self.batch = []
            self._results.put(built)
        code = self.proc.wait()
        if self.batch:
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            error = RuntimeError(f"a build process failed ({how})")
            self._results.put([BuiltDay(day, error=error) for day in self.batch])
            self.batch = []

    def close(self) -> None:
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join()


class DayBuilders:
    """Up to ``processes`` build processes, started as landed days wait for one."""

    def __init__(self, data_dir: Any, processes: int) -> None:
        """``data_dir``: the range's ``Store`` (it pickles as its location and lock owner)."""
        self.data_dir = data_dir
        self.processes = max(1, processes)
        self._waiting: list[tuple[dt.date, bool, Path | None]] = []
        self._workers: list[_Worker] = []
        self._results: queue.Queue[list[BuiltDay]] = queue.Queue()
        self._pending = 0

    def submit(self, day: dt.date, *, fresh: bool = False, copies: Path | None = None) -> None:
        """Build ``day``; ``fresh`` and ``copies`` as ``build_day`` takes them."""
        self._waiting.append((day, fresh, copies))
        self._pending += 1
        self._dispatch()

    def _dispatch(self) -> None:
        while self._waiting:
            worker = next((w for w in self._workers if w.idle), None)
            if worker is None and len(self._workers) < self.processes:
                worker = _Worker(self._results)
                self._workers.append(worker)
            if worker is None:
                return
            batch, self._waiting = self._waiting[:BATCH_DAYS], self._waiting[BATCH_DAYS:]
            worker.build(self.data_dir, batch)

    def done(self, *, wait: bool) -> Iterator[BuiltDay]:
        """Days built since the last call; with ``wait``, every submitted day."""
        while self._pending:
            try:
                batch = self._results.get(block=wait)
            except queue.Empty:
                return
            self._pending -= len(batch)
            self._dispatch()
            yield from batch

    def close(self) -> None:
        for worker in self._workers:
            worker.close()


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (elsewhere: nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main() -> None:
    _die_with_parent()
    from pipeline.storage._build_worker import _WithoutPandas

    sys.meta_path.insert(0, _WithoutPandas())  # type: ignore[arg-type]
    from pipeline.quality import check_days
    from pipeline.sync.build import build_day

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            data_dir, days = _receive(stdin)
        except EOFError:
            return
        results = []
        for day, fresh, copies in days:
            started = time.monotonic()
            try:
                built = build_day(data_dir, day, locked=True, fresh=fresh, copies=copies)
                result = BuiltDay(day, built=built)
            except Exception as exc:
                result = BuiltDay(day, error=exc)
            result.seconds = time.monotonic() - started
            results.append(result)
        built = [r for r in results if r.error is None]
        try:
            written = {r.day: r.built for r in built}
            checks = check_days(data_dir, list(written), built=written)
            for r in built:
                r.checks = checks[r.day]
        except Exception as exc:
            for r in built:
                r.error = exc
        try:
            _send(stdout, results)
        except Exception:  # an error that does not pickle: its type and message do
            for r in results:
                if r.error is not None:
                    r.error = RuntimeError(f"{type(r.error).__name__}: {r.error}")
            _send(stdout, results)
