"""Requests per second the emulator serves to 16 concurrent clients.

The emulator runs in its own process (``cloudglue-pipeline emulator``); the 16 clients are threads
with one keep-alive ``requests.Session`` each, spread over ``--procs`` client processes so the
clients' own GIL does not cap the number. Two request mixes: job pages of up to 100 segment
entities (a sync's bulk) and tiny listing pages (per-request overhead). Prints the median of
``--runs`` runs of each, plus the CPU the emulator process used (1.0 = one core, its GIL limit).

    /tmp/venv0/bin/python bench/emulator_rps.py [--clients 16] [--procs 4] [--seconds 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import statistics
import subprocess
import sys
import threading
import time
from urllib.parse import quote

import psutil
import requests

from pipeline.emulator import Dataset

END_DATE = dt.date(2026, 1, 15)
KEY = "bench-key"


def _urls(base_url: str, jobs: int, mean_segments: float) -> dict[str, list[str]]:
    ds = Dataset(seed=7, jobs=jobs, days=1, end_date=END_DATE, mean_segments=mean_segments)
    pages = []
    for job_id in ds.job_ids():
        total = ds.detail_body(job_id, limit=1).get("total", 0)
        for offset in range(0, max(total, 1), 100):
            pages.append(
                f"{base_url}/extract/{quote(job_id, safe='')}?limit=100&offset={offset}"
                "&include_chapters=true&include_shots=true"
            )
    listing = [f"{base_url}/extract?limit=1&offset={n}&include_data=false" for n in range(jobs)]
    return {"job pages (limit=100)": pages, "listing (limit=1)": listing}


def _clients(
    urls: list[str], first: int, step: int, threads: int, start: float, stop: float
) -> int:
    """One client process: ``threads`` sessions requesting round-robin from ``start`` to ``stop``
    (wall-clock times shared by every process); returns the number of 200 answers."""
    counts = [0] * threads

    def client(k: int) -> None:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {KEY}"
        i = first + k * step
        time.sleep(max(0.0, start - time.time()))
        while time.time() < stop:
            r = s.get(urls[i % len(urls)], timeout=30)
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code} for {urls[i % len(urls)]}")
            counts[k] += 1
            i += step * threads

    pool = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--mean-segments", type=float, default=200)
    args = parser.parse_args(argv)
    if args.clients % args.procs:
        parser.error("--clients must be a multiple of --procs")
    cmd = [sys.executable, "-m", "pipeline.cli", "emulator", "--port=0", "--days=1"]
    cmd += [f"--jobs={args.jobs}", f"--mean-segments={args.mean_segments}", "--seed=7"]
    cmd += [f"--end-date={END_DATE}", f"--api-key={KEY}", "--log-level=WARNING"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    per_proc = args.clients // args.procs
    try:
        base_url = proc.stdout.readline().strip()
        server = psutil.Process(proc.pid)
        with multiprocessing.get_context("spawn").Pool(args.procs) as pool:
            for name, urls in _urls(base_url, args.jobs, args.mean_segments).items():
                rates, cpus = [], []
                for _ in range(args.runs):
                    start = time.time() + 1.0  # let every process reach the start line
                    stop = start + args.seconds
                    jobs = [(urls, p, args.procs, per_proc, start, stop) for p in range(args.procs)]
                    result = pool.starmap_async(_clients, jobs)
                    time.sleep(max(0.0, start - time.time()))
                    before = server.cpu_times()
                    total = sum(result.get())
                    after = server.cpu_times()
                    rates.append(total / args.seconds)
                    used = after.user + after.system - before.user - before.system
                    cpus.append(used / args.seconds)
                print(
                    f"{name}: median {statistics.median(rates):,.0f} req/s with {args.clients} "
                    f"clients in {args.procs} processes (runs: "
                    f"{', '.join(f'{r:,.0f}' for r in rates)}; emulator CPU "
                    f"{statistics.median(cpus):.2f} cores)"
                )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
