"""A build worker process of ``DayBuild``: pickled arguments in a file named by its one argument,
the pickled result (or exception) out on stdout.

While the landing runs, stdin stays open: a shard of :class:`pipeline.storage.raw.ArrivingJobs`
reads ``done`` from it once every job has been landed, and end-of-file without it means the landing
(or its process) failed.

A plain ``python -m`` child, not ``multiprocessing``: spawn would re-import the caller's main
module, which hangs any script or notebook that calls ``build_day`` without a main guard.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path


class _WithoutPandas:
    """Reports pandas as not installed. pyarrow imports pandas the first time it converts a
    Python list, only to ask whether the list is a pandas object; a worker never has one, and
    the import would cost it more CPU than a small shard's build."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("a build worker does not use pandas", name=name)


def main() -> None:
    sys.meta_path.insert(0, _WithoutPandas())  # type: ignore[arg-type]
    from pipeline.storage.shards import write_shard

    args = pickle.loads(Path(sys.argv[1]).read_bytes())
    try:
        result = ("ok", write_shard(*args))
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
