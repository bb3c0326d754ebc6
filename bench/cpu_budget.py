"""Where the CPU of a sync goes at 0 ms, against what 3× the baseline's rate would allow.

At 0 ms latency a sync is CPU-bound, and the emulator shares the machine's cores with it. In
3× less wall time than the baseline, ``nproc`` cores give ``nproc × baseline wall / 3`` CPU
seconds to everything: the emulator, our landing and our build. This script measures each part
in fresh subprocesses, medians of ``--runs``:

* **baseline**: ``bench/run.py``'s baseline (wall), against the emulator at 0 ms;
* **emulator**: CPU the emulator spends serving one landing of the day;
* **landing**: ``land_day`` (listing, fetching, zstd landing), CPU of its process;
* **build**, one process streaming the day as the build does, timed in three parts: **read**
  (zstd and JSON parse of each landed job), **flatten** (``JobRows`` into Arrow chunks of the
  six tables) and **write** (each chunk to Parquet as it is handed over).

The build's parts add up to a one-process ``build_day`` without its fixed costs (imports,
staging, swap). ``sync_day`` overlaps landing and build in two worker processes, which costs
more CPU than this sum (worker start-up, sharing the cores).

    /tmp/venv0/bin/python bench/cpu_budget.py [--workload day] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run as B

CORES = os.cpu_count() or 1


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_land(base_url: str, data_dir: Path) -> dict[str, float]:
    from pipeline.cloudglue.client import CloudglueClient
    from pipeline.storage.raw import RawStore
    from pipeline.sync import land_day

    start = _cpu()
    with CloudglueClient(B.KEY, base_url, max_concurrency=B.CONCURRENCY) as client:
        land_day(client, RawStore(data_dir), B.DAY)
    return {"landing": _cpu() - start}


def child_build(data_dir: Path) -> dict[str, float]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.storage.raw import RawStore
    from pipeline.storage.shards import ROW_GROUP_SIZE, fewer_gc_passes
    from pipeline.tables.accumulators import make_accumulator
    from pipeline.tables.catalog import TABLES, new_schema
    from pipeline.tables.rows import JobRows

    store = RawStore(data_dir)
    listing = store.read_listing(B.DAY)
    assert listing is not None
    spent = {"read": 0.0, "flatten": 0.0, "write": 0.0}
    with tempfile.TemporaryDirectory() as out:
        files = iter(range(1_000_000))

        def write(chunk: pa.Table) -> None:  # as the build does, chunk by chunk
            start = time.process_time()
            path = Path(out) / f"{next(files)}.parquet"
            pq.write_table(chunk, path, compression="zstd", row_group_size=ROW_GROUP_SIZE)
            spent["write"] += time.process_time() - start

        accs = {t: make_accumulator(new_schema(t), write) for t in TABLES}
        rows = JobRows(accs, listing.listed_at)
        jobs = iter(store.day_shards(B.DAY, listing, 1)[0])
        with fewer_gc_passes():
            while True:
                start = time.process_time()
                job = next(jobs, None)
                landed = time.process_time()
                spent["read"] += landed - start
                if job is None:
                    break
                rows.add(job)
                spent["flatten"] += time.process_time() - landed
            start = time.process_time()
            for acc in accs.values():
                acc.flush()
            spent["flatten"] += time.process_time() - start
    spent["flatten"] -= spent["write"]  # the sink ran inside add and flush
    return spent


def _child(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="day", choices=B.WORKLOADS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        parts = child_land(rest[0], Path(rest[1])) if kind == "land" else child_build(Path(rest[0]))
        print(json.dumps(parts))
        return 0
    emulator = B.Emulator(args.workload, 0)
    measured: dict[str, list[float]] = {}
    try:
        for i in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                emulator_cpu = emulator.call("cpu")
                parts = _child("land", emulator.base_url, tmp)
                parts["emulator"] = emulator.call("cpu") - emulator_cpu
                parts |= _child("build", tmp)
                cmd = [sys.executable, B.__file__, "--child", "baseline", emulator.base_url]
                parts["baseline wall"] = B.measure([*cmd, f"{tmp}/baseline"], emulator).wall
            print(f"run {i}: " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()), flush=True)
            for name, value in parts.items():
                measured.setdefault(name, []).append(value)
            time.sleep(1)
    finally:
        emulator.close()
    med = {name: statistics.median(values) for name, values in measured.items()}
    budget = CORES * med["baseline wall"] / 3
    build = med["read"] + med["flatten"] + med["write"]
    total = med["emulator"] + med["landing"] + build
    print(f"\n{args.workload} at 0 ms, medians of {args.runs} runs (CPU seconds)")
    for name in ("emulator", "landing", "read", "flatten", "write"):
        print(f"  {name:9s} {med[name]:6.2f}")
    print(f"  build     {build:6.2f}  (read + flatten + write)")
    print(f"  total     {total:6.2f}  (emulator + landing + build)")
    print(
        f"3x the baseline ({med['baseline wall']:.2f} s wall) is {med['baseline wall'] / 3:.2f} s"
        f" of wall: {budget:.2f} CPU s on {CORES} cores, {total / budget:.2f}x over it; with"
        f" flatten free: {(total - med['flatten']) / budget:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
