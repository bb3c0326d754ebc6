"""A build worker process of ``DayBuild``: length-prefixed pickled arguments in on stdin, the
pickled result (or exception) out on stdout.

While the landing runs, stdin stays open: a shard of :class:`pipeline.storage.raw.ArrivingJobs`
reads ``done`` from it once every job has been landed, and end-of-file without it means the landing
(or its process) failed.

A plain ``python -m`` child, not ``multiprocessing``: spawn would re-import the caller's main
module, which hangs any script or notebook that calls ``build_day`` without a main guard.
"""

from __future__ import annotations

import os
import pickle
import sys

STDIN = 0


def read_exactly(fd: int, size: int) -> bytes:
    """``size`` bytes from ``fd`` (unbuffered, so later signals on it are not swallowed)."""
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            raise EOFError("build worker: stdin closed before its arguments were complete")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


# A shard following a landing yields the CPU to it: the landing is what keeps requests in flight.
FOLLOWER_NICENESS = 5


def main() -> None:
    from pipeline.storage.parquet import _write_shard
    from pipeline.storage.raw import ArrivingJobs

    size = int.from_bytes(read_exactly(STDIN, 8), "big")
    args = pickle.loads(read_exactly(STDIN, size))
    if isinstance(args[4], ArrivingJobs) and FOLLOWER_NICENESS:
        os.nice(FOLLOWER_NICENESS)
    try:
        result = ("ok", _write_shard(*args))
    except Exception as exc:
        result = ("error", exc)
    try:
        data = pickle.dumps(result)
    except Exception:
        data = pickle.dumps(("error", RuntimeError(f"{type(result[1]).__name__}: {result[1]}")))
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
