"""End-to-end benchmark: our sync against a plain ``requests`` + pandas baseline, same emulator.

The emulator (``EmulatorServer`` over a ``Dataset`` sized by the workload) runs in its own
process, so its CPU is neither ours nor the baseline's. Each measured run is a fresh subprocess
in a fresh data directory; CPU seconds are the subprocess's user + system time including its own
children (``os.wait4``), peak RSS is the highest sampled sum of RSS over the subprocess and its
children (psutil, every 10 ms). Requests are counted by the emulator, which also reports the
CPU seconds it spent serving each run (at 0 ms it shares the 2 cores with whoever it serves);
with ``--store bucket`` the object store's CPU seconds during each run are reported likewise.

* ours (``--mode cli``): ``cloudglue-pipeline sync --from D --to D --data-dir X`` (Dagster
  in-process runs, the real product path), then the same command again on the same data
  directory (``resync``: nothing new upstream).
* ours (``--mode direct``): ``sync_day`` (land + build) in a subprocess, without Dagster.
* ``--store bucket``: the same runs of ours with the data dir an ``s3://`` prefix in a SeaweedFS
  bucket on loopback (``pipeline_tests.object_store``; its CPU, like the emulator's, is not the
  run's but shares the machine), labelled ``cli/bucket`` and ``direct/bucket``.
* baseline: a sequential ``requests`` loop (list pages, then every completed job's pages with
  ``limit=100``), ``pd.json_normalize`` of the segment entities (and of the listing), then
  ``DataFrame.to_parquet``. Object columns (lists, and ``speaker_count`` being 2 or "several")
  are cast to JSON text first: without that ``to_parquet`` raises on this data.

Every run is checked (row counts against the dataset), and the table shows medians of the runs.

    /tmp/venv0/bin/python bench/run.py [--workload small day] [--latency-ms 50 0] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import psutil
import pyarrow.parquet as pq

DAY = dt.date(2026, 1, 15)
KEY = "bench-key"
SEED = 7
CONCURRENCY = 16
OUT = Path(__file__).resolve().parent / "out"

# name -> (jobs, UTC days ending on DAY, target segment entities in all)
WORKLOADS: dict[str, tuple[int, int, int]] = {
    "small": (50, 1, 10_000),
    "day": (1_000, 1, 200_000),
    "big-day": (5_000, 1, 1_000_000),
    # A small account's first sync of its history: many days of short videos.
    "history": (2_000, 365, 30_000),
    # A busy week of short videos.
    "busy-week": (3_000, 7, 60_000),
}


def workload_days(workload: str) -> list[dt.date]:
    days = WORKLOADS[workload][1]
    return [DAY - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]


# ---- the emulator process ------------------------------------------------------------------


def _dataset_args(workload: str) -> dict[str, Any]:
    """Dataset arguments whose segment-entity total is close to the workload's target."""
    from pipeline.emulator import Dataset

    jobs, days, target = WORKLOADS[workload]
    mean = target / jobs
    ds = Dataset(seed=SEED, jobs=jobs, days=days, end_date=DAY, mean_segments=mean)
    mean *= target / max(1, ds.segment_entity_count())
    return {"seed": SEED, "jobs": jobs, "days": days, "end_date": DAY, "mean_segments": mean}


def _emulator_main(conn: Any, dataset_args: dict[str, Any], latency_ms: float) -> None:
    from pipeline.emulator import Dataset, EmulatorServer

    ds = Dataset(**dataset_args)
    server = EmulatorServer(ds, api_key=KEY, latency_ms=latency_ms).start()
    conn.send((server.base_url, ds.segment_entity_count()))
    while True:
        cmd = conn.recv()
        if cmd == "stop":
            server.stop()
            conn.send(None)
            return
        if cmd == "reset":
            server.stats.reset()
            conn.send(None)
        elif cmd == "requests":
            conn.send(server.stats.requests)
        elif cmd == "cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(usage.ru_utime + usage.ru_stime)


class Emulator:
    """The emulator in a separate process, with its request counter reachable over a pipe."""

    def __init__(self, workload: str, latency_ms: float) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_emulator_main, args=(child, _dataset_args(workload), latency_ms), daemon=True
        )
        self._proc.start()
        self.base_url, self.segments = self._conn.recv()

    def call(self, cmd: str) -> Any:
        self._conn.send(cmd)
        return self._conn.recv()

    def close(self) -> None:
        self.call("stop")
        self._proc.join(10)


# ---- one measured subprocess ---------------------------------------------------------------


@dataclass
class Measure:
    wall: float
    cpu: float
    peak_rss: int
    requests: int
    emulator_cpu: float
    store_cpu: float = 0.0


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def _cpu_of(pid: int | None) -> float:
    if pid is None:
        return 0.0
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def measure(
    cmd: list[str],
    emulator: Emulator,
    env: dict[str, str] | None = None,
    store_pid: int | None = None,
) -> Measure:
    """Run ``cmd`` to completion; wall, CPU (incl. its children), peak tree RSS, requests, and
    the CPU the emulator and the object store (``store_pid``) spent meanwhile."""
    emulator.call("reset")
    emulator_cpu = emulator.call("cpu")
    store_cpu = _cpu_of(store_pid)
    peak = 0
    done = threading.Event()
    started = time.perf_counter()
    popen = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(popen.stdout.read()), daemon=True)
    reader.start()

    def sample() -> None:
        nonlocal peak
        proc = psutil.Process(popen.pid)
        while not done.is_set():
            try:
                peak = max(peak, _tree_rss(proc))
            except psutil.Error:
                return
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(popen.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    reader.join()
    popen.returncode = os.waitstatus_to_exitcode(status)
    if popen.returncode != 0:
        sys.stderr.write(b"".join(out).decode(errors="replace")[-4000:])
        raise SystemExit(f"{cmd[:4]}... exited with {popen.returncode}")
    return Measure(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss=max(peak, usage.ru_maxrss * 1024),
        requests=emulator.call("requests"),
        emulator_cpu=emulator.call("cpu") - emulator_cpu,
        store_cpu=_cpu_of(store_pid) - store_cpu,
    )


def _rows(data_dir: Path | str, table: str) -> int:
    from pipeline.storage.read import parquet_files
    from pipeline.storage.store import open_store

    store = open_store(data_dir)
    fs, _ = store.parquet_source("")
    files = parquet_files(store, table)
    return sum(pq.ParquetFile(fs.open_input_file(p)).metadata.num_rows for _, p in files)


# ---- the two contestants, run as ``bench/run.py --child ...`` ------------------------------


def child_direct(base_url: str, data_dir: Path | str, concurrency: int, first: dt.date) -> None:
    """``sync_range`` (landing and build, overlapped for big days) without Dagster."""
    from pipeline.cloudglue.client import CloudglueClient
    from pipeline.sync import sync_range

    days = [first + dt.timedelta(days=n) for n in range((DAY - first).days + 1)]
    with CloudglueClient(KEY, base_url, max_concurrency=concurrency) as client:
        failed = [r for r in sync_range(client, data_dir, days) if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} day(s) failed: {failed[0].error}")


def child_baseline(base_url: str, data_dir: Path, first: dt.date) -> None:
    """What a person would write first: sequential requests, json_normalize, to_parquet."""
    import pandas as pd
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {KEY}"
    lo = int(dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
    hi = int(dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC).timestamp() * 1000) + 86_400_000
    listed: list[dict[str, Any]] = []
    offset = 0
    while True:
        params = {
            "limit": 100,
            "offset": offset,
            "include_data": "false",
            "created_after": (first - dt.timedelta(days=1)).isoformat(),
            "created_before": (DAY + dt.timedelta(days=1)).isoformat(),
        }
        page = session.get(f"{base_url}/extract", params=params, timeout=60).json()
        listed += [j for j in page["data"] if lo <= j["created_at"] < hi]
        offset += len(page["data"])
        if not page["data"] or offset >= page["total"]:
            break
    segments: list[dict[str, Any]] = []
    for job in listed:
        if job["status"] != "completed":
            continue
        offset = 0
        while True:
            params = {"limit": 100, "offset": offset, "include_chapters": "true"}
            params["include_shots"] = "true"
            url = f"{base_url}/extract/{job['job_id']}"
            page = session.get(url, params=params, timeout=60).json()
            for seg in page["data"]["segment_entities"]:
                segments.append({"job_id": job["job_id"], "segment_index": offset, **seg})
                offset += 1
            if offset >= page["total"] or not page["data"]["segment_entities"]:
                break
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, records in (("jobs", listed), ("segment_entities", segments)):
        frame = pd.json_normalize(records, sep="__")
        for col in frame.columns[frame.dtypes == "object"]:
            frame[col] = frame[col].map(
                lambda v: v if v is None or isinstance(v, str) else json.dumps(v)
            )
        frame.to_parquet(data_dir / f"{name}.parquet", compression="zstd")


# ---- the harness ---------------------------------------------------------------------------


def _cmd_ours(
    mode: str, base_url: str, data_dir: Path | str, first: dt.date, store_env: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, **store_env}
    if mode == "direct":
        cmd = [sys.executable, __file__, "--child", "direct", base_url, str(data_dir), str(first)]
        return cmd, env
    env.update(
        CLOUDGLUE_API_KEY=KEY,
        DAGSTER_HOME=str(OUT / "dagster_home"),
        CLOUDGLUE_START_DATE=first.isoformat(),
    )
    (OUT / "dagster_home").mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("cloudglue-pipeline")
    cmd = [str(exe), "sync", "--from", str(first), "--to", str(DAY), "--data-dir", str(data_dir)]
    cmd += ["--base-url", base_url, "--concurrency", str(CONCURRENCY), "--quiet"]
    return cmd, env


def _median(values: list[float]) -> float:
    return statistics.median(values)


def run_workload(
    workload: str,
    latency_ms: float,
    modes: list[str],
    runs: int,
    baseline_runs: int,
    bucket: Any = None,
) -> list[dict[str, Any]]:
    """``bucket``: a running SeaweedFS (``--store bucket``), else local data dirs only."""
    emulator = Emulator(workload, latency_ms)
    first_day = workload_days(workload)[0]
    rows = []
    stores = [(name, bucket.env() if name == "bucket" else {}) for name in STORES]
    try:
        expected = emulator.segments
        base_dir = OUT / f"{workload}-{latency_ms:g}ms"
        shutil.rmtree(base_dir, ignore_errors=True)
        results: dict[str, list[Measure]] = {}
        resync: dict[str, list[Measure]] = {}
        for i in range(runs):
            for mode in modes:
                for store, store_env in stores:
                    who = mode if store == "local" else f"{mode}/{store}"
                    data_dir: Path | str = base_dir / f"{mode}-{i}"
                    if store == "bucket":
                        data_dir = bucket.fresh_prefix()
                    cmd, env = _cmd_ours(mode, emulator.base_url, data_dir, first_day, store_env)
                    store_pid = bucket.pid if store == "bucket" else None
                    first = measure(cmd, emulator, env, store_pid)
                    with mock.patch.dict(os.environ, store_env):
                        got = _rows(data_dir, "segment_entities")
                    if got != expected:
                        raise SystemExit(f"{who}: {got} segment entities, expected {expected}")
                    again = measure(cmd, emulator, env, store_pid)
                    results.setdefault(who, []).append(first)
                    resync.setdefault(who, []).append(again)
                    print(f"  {workload} {latency_ms:g}ms {who} run {i}: {first} resync {again}")
                    if store == "local":
                        shutil.rmtree(data_dir, ignore_errors=True)
        for i in range(baseline_runs):
            data_dir = base_dir / f"baseline-{i}"
            cmd = [sys.executable, __file__, "--child", "baseline", emulator.base_url]
            cmd += [str(data_dir), str(first_day)]
            m = measure(cmd, emulator)
            got = pq.ParquetFile(data_dir / "segment_entities.parquet").metadata.num_rows
            if got != expected:
                raise SystemExit(f"baseline: {got} segment entities, expected {expected}")
            results.setdefault("baseline", []).append(m)
            print(f"  {workload} {latency_ms:g}ms baseline run {i}: {m}")
            shutil.rmtree(data_dir, ignore_errors=True)
    finally:
        emulator.close()
    base = results.get("baseline")
    for name, ms in results.items():
        row: dict[str, Any] = {
            "workload": workload,
            "latency_ms": latency_ms,
            "who": name,
            "runs": len(ms),
            "segments": expected,
            "wall": _median([m.wall for m in ms]),
            "cpu": _median([m.cpu for m in ms]),
            "peak_rss": _median([m.peak_rss for m in ms]),
            "requests": int(_median([m.requests for m in ms])),
            "emulator_cpu": _median([m.emulator_cpu for m in ms]),
            "store_cpu": _median([m.store_cpu for m in ms]),
        }
        row["rate"] = expected / row["wall"]
        row["cpu_per_1k"] = row["cpu"] / expected * 1000
        if latency_ms > 0:
            row["floor"] = row["requests"] * latency_ms / 1000 / CONCURRENCY
        if name in resync:
            row["resync_wall"] = _median([m.wall for m in resync[name]])
            row["resync_requests"] = int(_median([m.requests for m in resync[name]]))
        if base and name != "baseline":
            b_wall = _median([m.wall for m in base])
            row["x_rate"] = b_wall / row["wall"]
            row["x_cpu"] = row["cpu"] / _median([m.cpu for m in base])
            row["x_rss"] = row["peak_rss"] / _median([m.peak_rss for m in base])
        rows.append(row)
    return rows


STORES = ["local"]


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "commit": commit,
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "loadavg": os.getloadavg(),
    }


def render(rows: list[dict[str, Any]]) -> str:
    head = (
        "| workload | latency | who | runs | wall s | requests | seg ent/s | CPU s "
        "| CPU s / 1k seg | emulator CPU s | store CPU s | peak RSS MiB "
        "| ours/base rate | ours/base CPU | ours/base RSS | floor s | resync s (requests) |"
    )
    lines = [head, "|" + "---|" * 17]
    for r in rows:
        resync = f"{r['resync_wall']:.2f} ({r['resync_requests']})" if "resync_wall" in r else ""
        floor = f"{r['floor']:.2f}" if "floor" in r else ""
        lines.append(
            f"| {r['workload']} | {r['latency_ms']:g} ms | {r['who']} | {r['runs']} "
            f"| {r['wall']:.2f} | {r['requests']:,} | {r['rate']:,.0f} | {r['cpu']:.2f} "
            f"| {r['cpu_per_1k']:.3f} | {r['emulator_cpu']:.2f} | {r.get('store_cpu', 0):.2f} "
            f"| {r['peak_rss'] / 2**20:,.0f} "
            f"| {_x(r.get('x_rate'))} | {_x(r.get('x_cpu'))} | {_x(r.get('x_rss'))} "
            f"| {floor} | {resync} |"
        )
    return "\n".join(lines)


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}×"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", nargs="+", default=["small", "day"], choices=WORKLOADS)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[50.0, 0.0])
    parser.add_argument("--mode", nargs="+", default=["cli"], choices=["cli", "direct"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-runs", type=int, default=None, help="default: --runs")
    parser.add_argument(
        "--store",
        nargs="+",
        default=["local"],
        choices=["local", "bucket"],
        help="where ours writes: a local dir, an s3:// prefix in a SeaweedFS bucket, or both",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, base_url, data_dir, first = args.child
        if kind == "direct":
            target = data_dir if data_dir.startswith("s3://") else Path(data_dir)
            child_direct(base_url, target, CONCURRENCY, dt.date.fromisoformat(first))
        else:
            child_baseline(base_url, Path(data_dir), dt.date.fromisoformat(first))
        return 0
    info = machine()
    print(f"machine: {info}", flush=True)
    rows: list[dict[str, Any]] = []
    baseline_runs = args.runs if args.baseline_runs is None else args.baseline_runs
    STORES[:] = args.store
    with contextlib.ExitStack() as stack:
        bucket = None
        if "bucket" in args.store:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from pipeline_tests.object_store import seaweedfs_server

            bucket = stack.enter_context(seaweedfs_server())
        for workload in args.workload:
            for latency in args.latency_ms:
                rows += run_workload(workload, latency, args.mode, args.runs, baseline_runs, bucket)
    info["loadavg_end"] = os.getloadavg()
    table = render(rows)
    print(f"\nmachine: {info}\n\n{table}")
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (OUT / f"results-{stamp}.json").write_text(
        json.dumps({"machine": info, "rows": rows}, indent=1, default=str)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
