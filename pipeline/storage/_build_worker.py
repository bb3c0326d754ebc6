"""A build worker process of ``write_day_shards``: pickled arguments in on stdin, the pickled
result (or exception) out on stdout.

A plain ``python -m`` child, not ``multiprocessing``: spawn would re-import the caller's main
module, which hangs any script or notebook that calls ``build_day`` without a main guard.
"""

from __future__ import annotations

import pickle
import sys


def main() -> None:
    from pipeline.storage.parquet import _write_shard

    args = pickle.load(sys.stdin.buffer)
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
