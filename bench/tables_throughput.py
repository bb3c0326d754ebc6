"""Segment entities per second through flatten + write (``write_day``), and peak memory.

Synthesizes one day of realistic jobs with the emulator's ``Dataset(mean_segments=...)``,
streams them (sorted by ``job_id``) into ``write_day`` on one core, and reports:

* the CPU time to generate the job dicts alone (subtracted, so the rate is flatten + write only;
  CPU time of this process, as the machine may be shared),
* segment entities per second through ``write_day`` (all six tables, incl. ``entity_values``),
* peak RSS during the write (sampled with psutil) and the process's ``ru_maxrss``,
* the same segments through ``pd.json_normalize`` + ``DataFrame.to_parquet`` (zstd), the
  baseline, and through ``write_day`` again, both from already materialized dicts.

Usage: ``python bench/tables_throughput.py [--segments 200000] [--baseline-segments 50000]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

from pipeline.emulator import Dataset
from pipeline.storage import write_day

DAY = dt.date(2026, 1, 15)
JOBS_PER_100K = 500


class PeakRss:
    """Samples this process's RSS every few milliseconds while active."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def __enter__(self) -> PeakRss:
        self.start = self._proc.memory_info().rss
        self.peak = self.start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _jobs(ds: Dataset) -> Iterator[dict[str, Any]]:
    for job_id in sorted(ds.job_ids()):
        summary = ds.summary(job_id)
        yield ds.complete_job(job_id) if summary["status"] == "completed" else summary


def _segments(job: dict[str, Any]) -> list[Any]:
    return (job.get("data") or {}).get("segment_entities") or []


def _baseline(segs: list[Any], path: Path) -> None:
    """json_normalize + to_parquet; object columns (lists, mixed types) become text, without
    which to_parquet fails on this data (e.g. ``speaker_count`` is 2 or "several")."""
    frame = pd.json_normalize(segs, sep="__")
    for col in frame.columns[frame.dtypes == "object"]:
        frame[col] = frame[col].map(
            lambda v: v if v is None or isinstance(v, str) else json.dumps(v)
        )
    frame.to_parquet(path, compression="zstd")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=200_000)
    parser.add_argument("--baseline-segments", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    jobs = max(1, args.segments * JOBS_PER_100K // 100_000)
    mean = args.segments / jobs
    ds = Dataset(seed=args.seed, jobs=jobs, days=1, end_date=DAY, mean_segments=mean)
    # The dataset's total is only about jobs * mean: rescale once to get close to the target.
    mean *= args.segments / max(1, ds.segment_entity_count())
    ds = Dataset(seed=args.seed, jobs=jobs, days=1, end_date=DAY, mean_segments=mean)
    data_dir = Path(tempfile.mkdtemp(prefix="tables-bench-"))
    try:
        c0 = time.process_time()
        n_segments = sum(len(_segments(job)) for job in _jobs(ds))
        gen_cpu = time.process_time() - c0

        with PeakRss() as rss:
            t0, c0 = time.perf_counter(), time.process_time()
            result = write_day(data_dir, DAY, _jobs(ds), fetched_at=dt.datetime.now(dt.UTC))
            total_seconds, total_cpu = time.perf_counter() - t0, time.process_time() - c0
        write_seconds = total_cpu - gen_cpu
        on_disk = sum(p.stat().st_size for p in (data_dir / "tables").rglob("*.parquet"))
        print(f"jobs: {jobs:,}  segment entities: {n_segments:,}  (one day, one core)")
        print(f"rows: {result.rows}")
        print(f"files: { {t: r.files for t, r in result.tables.items()} }")
        print(f"generate job dicts only: {gen_cpu:.2f} s CPU")
        print(f"write_day incl. generation: {total_cpu:.2f} s CPU, {total_seconds:.2f} s wall")
        print(
            f"flatten + write: {write_seconds:.2f} s CPU = "
            f"{n_segments / write_seconds:,.0f} segment entities/s "
            f"({result.rows['entity_values'] / write_seconds:,.0f} entity_values rows/s)"
        )
        print(
            f"RSS before {_mib(rss.start)}, peak during write_day {_mib(rss.peak)} "
            f"(+{_mib(rss.peak - rss.start)}); Parquet on disk {_mib(on_disk)}"
        )

        # Baseline and write_day on the same materialized dicts (generation excluded).
        sample: list[dict[str, Any]] = []
        count = 0
        for job in _jobs(ds):
            sample.append(job)
            count += len(_segments(job))
            if count >= args.baseline_segments:
                break
        segs = [s for job in sample for s in _segments(job)]
        t0 = time.process_time()
        _baseline(segs, data_dir / "baseline.parquet")
        base_seconds = time.process_time() - t0
        shutil.rmtree(data_dir / "tables")
        t0 = time.process_time()
        write_day(data_dir, DAY, sample, fetched_at=None)
        ours_seconds = time.process_time() - t0
        print(
            f"materialized {len(segs):,} segment entities: "
            f"json_normalize + to_parquet {len(segs) / base_seconds:,.0f}/s, "
            f"write_day (six tables) {len(segs) / ours_seconds:,.0f}/s, "
            f"ratio {base_seconds / ours_seconds:.2f}x"
        )
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(
            f"process ru_maxrss (whole run, incl. the sample): {usage.ru_maxrss / 2**10:,.0f} MiB"
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
