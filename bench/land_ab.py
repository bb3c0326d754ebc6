"""Interleaved A/B of ``land_day`` alone: wall and CPU seconds of two code trees, same emulator.

The emulator (bench/run.py's ``Emulator``) runs in its own process. Each round runs one fresh
subprocess per tree, alternating, each landing ``bench/run.py``'s day into a fresh directory and
reporting its own wall and CPU (user + system) seconds; the table shows medians. Alternating
keeps a shared machine's changing load from favouring one side.

    /tmp/venv0/bin/python bench/land_ab.py --trees OLD_TREE NEW_TREE [--workload day]
        [--latency-ms 0] [--runs 5] [--fetch-only]
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

HERE = Path(__file__).resolve().parent


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(base_url: str, concurrency: int, fetch_only: bool) -> None:
    """Land the bench day once with the ``pipeline`` on ``sys.path`` (or, with ``fetch_only``,
    list it and fetch every job without storing anything); print wall, CPU, requests."""
    import run as B

    from pipeline.cloudglue.client import CloudglueClient
    from pipeline.storage.raw import RawStore
    from pipeline.sync import land_day

    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), _cpu()
        with CloudglueClient(B.KEY, base_url, max_concurrency=concurrency) as client:
            if fetch_only:
                jobs = client.list_jobs(B.DAY, B.DAY)
                ids = [job.job_id for job in jobs if job.is_completed]
                outcomes = client.fetch_each(client.fetch_job_json, ids)
                fetched = sum(1 for _id, job in outcomes if not isinstance(job, Exception))
                stats = client.stats.snapshot()
            else:
                result = land_day(client, RawStore(Path(tmp)), B.DAY)
                fetched, stats = result.fetched, result.client_stats
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "requests": stats["requests"],
                "fetched": fetched,
                "file": __import__("pipeline").__file__,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs="+", required=True, help="source trees to compare")
    parser.add_argument("--workload", default="day")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--fetch-only", action="store_true", help="list and fetch the jobs, store nothing"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.concurrency, args.fetch_only)
        return 0

    sys.path.insert(0, str(HERE))
    import run as B

    emulator = B.Emulator(args.workload, args.latency_ms)
    results: dict[str, list[dict]] = {tree: [] for tree in args.trees}
    try:
        for i in range(args.runs):
            order = args.trees if i % 2 == 0 else args.trees[::-1]
            for tree in order:
                env = {**os.environ, "PYTHONPATH": f"{tree}:{tree}/bench"}
                cmd = [sys.executable, str(HERE / "land_ab.py"), "--trees", tree]
                cmd += ["--child", emulator.base_url, "--concurrency", str(args.concurrency)]
                cmd += ["--fetch-only"] if args.fetch_only else []
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                assert row["file"].startswith(tree), row
                results[tree].append(row)
                print(f"{tree}: land {row['wall']:.2f}s cpu {row['cpu']:.2f}s", flush=True)
    finally:
        emulator.close()
    what = "fetch only" if args.fetch_only else "land_day"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{what}, {args.workload} at {args.latency_ms:g} ms, {args.runs} runs, load {load}")
    for tree, rows in results.items():
        wall = statistics.median(r["wall"] for r in rows)
        cpu = statistics.median(r["cpu"] for r in rows)
        print(f"{tree}: median land {wall:.2f}s, cpu {cpu:.2f}s, requests {rows[0]['requests']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
