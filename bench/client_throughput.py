"""Jobs and requests per second of ``CloudglueClient`` against the emulator at 50 ms latency.

The emulator runs in its own process (``cloudglue-pipeline emulator --latency-ms 50``) so it does
not share the client's GIL. Each run uses a fresh client to list one day and fetch every job in
it completely (``list_jobs``, then ``fetch_job_json`` under ``fetch_each`` as the landing does);
the table shows the median of ``--runs`` runs per concurrency. With a fixed latency, throughput
should grow with concurrency until the client's or the emulator's CPU becomes the limit. Every
run is checked against the dataset's segment-entity count, so a fast but wrong run cannot pass.

    /tmp/venv0/bin/python bench/client_throughput.py [--jobs 150] [--concurrency 1 4 8 16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import time

from pipeline.cloudglue.client import CloudglueClient
from pipeline.emulator import Dataset

END_DATE = dt.date(2026, 1, 15)
KEY = "bench-key"


def _run(base_url: str, concurrency: int, expected_segments: int) -> tuple[float, int, int]:
    """One full day sync: (seconds, jobs, requests)."""
    with CloudglueClient(KEY, base_url, max_concurrency=concurrency) as client:
        started = time.perf_counter()
        listed = client.list_jobs(END_DATE, END_DATE)
        outcomes = client.fetch_each(client.fetch_job_json, (j.job_id for j in listed))
        segments = 0
        for _job_id, job in outcomes:
            if isinstance(job, Exception):
                raise job
            segments += job.segments
        elapsed = time.perf_counter() - started
        stats = client.stats.snapshot()
    if segments != expected_segments or stats["jobs_fetched"] != len(listed):
        raise SystemExit(f"wrong result: {segments} segment entities, {stats}")
    return elapsed, len(listed), stats["requests"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=150)
    parser.add_argument("--mean-segments", type=float, default=150)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    dataset = Dataset(
        seed=7, jobs=args.jobs, days=1, end_date=END_DATE, mean_segments=args.mean_segments
    )
    expected = dataset.segment_entity_count()
    cmd = [sys.executable, "-m", "pipeline.cli", "emulator", "--port=0", "--days=1", "--seed=7"]
    cmd += [f"--jobs={args.jobs}", f"--mean-segments={args.mean_segments}"]
    cmd += [f"--end-date={END_DATE}", f"--api-key={KEY}", f"--latency-ms={args.latency_ms}"]
    cmd += ["--log-level=WARNING"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        base_url = proc.stdout.readline().strip()
        print(
            f"{args.jobs} jobs, {expected:,} segment entities, latency {args.latency_ms:g} ms, "
            f"median of {args.runs} runs\n"
        )
        print("| concurrency | jobs/s | requests/s | seconds | requests |")
        print("|---:|---:|---:|---:|---:|")
        for concurrency in args.concurrency:
            runs = [_run(base_url, concurrency, expected) for _ in range(args.runs)]
            seconds = statistics.median(r[0] for r in runs)
            jobs_s = statistics.median(r[1] / r[0] for r in runs)
            requests_s = statistics.median(r[2] / r[0] for r in runs)
            print(
                f"| {concurrency} | {jobs_s:,.1f} | {requests_s:,.1f} | {seconds:.2f} "
                f"| {runs[0][2]} |",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
