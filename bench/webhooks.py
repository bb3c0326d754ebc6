"""Webhooks against polling: how soon a completed job is in the tables, and API requests an hour.

**Latency** (end to end, the deployed shape): the emulator (this process, ``--latency-ms`` per
response) serves 50 jobs a day over the last 7 days; ``cloudglue-pipeline webhooks serve`` runs
in its own process, registered as the emulator's webhook; the days are synced once; then
``dagster-daemon run`` on the repo's ``workspace.yaml`` with the packaged ``dagster.yaml``,
``CLOUDGLUE_WEBHOOKS=on`` and ``webhook_events_sensor`` started. Each trial completes a pending
job in the emulator, at a random phase of the sensor's interval, and times: the event logged by
the receiver, and the job's rows readable in ``segment_entities``. Once with Dagster's default
sensor interval (30 s), once with ``--short-interval``, and once more with the run queue
dequeued every second instead of every 5 s (an instance setting).

**Requests an hour** for an account of 50 jobs a day (each completes or fails once: 50 events a
day), from requests counted by the emulator for each action: a polling tick (the 7-day listing),
the run of one day with one newly completed job, the same run once that job is landed (what the
hourly safety-net poll requests after webhooks ran the day), a summary lookup (events without
``created_at``). Polling: 12 ticks + a run per completion; webhooks: 1 tick + a run per event
+ 1 no-op run (+ a lookup per event when the payload lacks ``created_at``).

**Receiver answer time**: client-side, from sending a delivery to its 200, with a local data dir.

    .venv/bin/python bench/webhooks.py [--trials 3] [--short-interval 5] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pipeline import settings

REPO = Path(__file__).resolve().parent.parent
KEY = "bench-key"
JOBS_PER_DAY = 50
DAYS = 7
BIN = Path(sys.executable).parent


def _dataset():
    from pipeline.emulator import Dataset

    return Dataset(seed=18, jobs=JOBS_PER_DAY * DAYS, days=DAYS)


def _pending(dataset) -> list[str]:
    return [j for j in dataset.job_ids() if dataset.status(j) == "pending"]


def _day(dataset, job_id: str) -> dt.date:
    from pipeline.webhooks.events import created_day

    return created_day(dataset.summary(job_id)["created_at"])


def requests_per_hour() -> None:
    import dagster as dg

    from pipeline.cloudglue.client import CloudglueClient
    from pipeline.defs.resources import CloudglueResource
    from pipeline.defs.sensors import completed_jobs_sensor
    from pipeline.emulator import EmulatorServer
    from pipeline.sync import sync_range

    dataset = _dataset()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-webhooks-requests-"))
    try:
        with EmulatorServer(dataset, api_key=KEY) as server:
            client = CloudglueClient(api_key=KEY, base_url=server.base_url)
            list(sync_range(client, data_dir, dataset.days()))
            resources = {"cloudglue": CloudglueResource(api_key=KEY, base_url=server.base_url)}
            sensor = completed_jobs_sensor()
            first = sensor(dg.build_sensor_context(resources=resources))
            server.stats.reset()
            sensor(dg.build_sensor_context(cursor=first.cursor, resources=resources))
            tick = server.stats.requests
            job_id = _pending(dataset)[0]
            dataset.set_status(job_id, "completed")
            server.stats.reset()
            list(sync_range(client, data_dir, [_day(dataset, job_id)]))
            run = server.stats.requests
            server.stats.reset()
            list(sync_range(client, data_dir, [_day(dataset, job_id)]))
            noop = server.stats.requests
            server.stats.reset()
            client.job_summary(job_id)
            lookup = server.stats.requests
            client.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    events = JOBS_PER_DAY / 24
    ticks_per_hour = 3600 / settings.POLL_SECONDS
    polling = ticks_per_hour * tick + events * run
    hooks = 3600 / settings.POLL_SECONDS_WITH_WEBHOOKS * tick + events * run + noop
    print(f"requests per action ({JOBS_PER_DAY} jobs/day over {DAYS} days listed):")
    print(f"  polling tick {tick}, run of a day with a new job {run}, same run unchanged {noop},")
    print(f"  summary lookup {lookup}; events {events:.2f}/h")
    print("requests per hour:")
    print(f"  polling every 5 min         {polling:7.1f}  (sensor {ticks_per_hour * tick:.0f})")
    print(f"  webhooks + hourly poll      {hooks:7.1f}  (sensor {tick + noop:.0f})")
    print(f"  webhooks, no created_at     {hooks + events * lookup:7.1f}")


def receiver_answer_times() -> None:
    """Client-side seconds from sending a delivery to its answer, local data dir: one sender,
    then 1,000 deliveries (500 events, each twice) from 16 senders at once."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from pipeline.settings import WEBHOOK_SECRET_HEADER
    from pipeline.webhooks import WebhookReceiver

    data_dir = Path(tempfile.mkdtemp(prefix="bench-webhooks-receiver-"))
    secret = "bench-secret"
    try:
        with WebhookReceiver(data_dir, secret, port=0) as receiver:
            local = threading.local()

            def send(body: dict) -> float:
                if not hasattr(local, "session"):
                    local.session = requests.Session()
                started = time.perf_counter()
                r = local.session.post(
                    receiver.url, json=body, headers={WEBHOOK_SECRET_HEADER: secret}, timeout=30
                )
                assert r.status_code == 200, r.status_code
                return time.perf_counter() - started

            def body(n: int) -> dict:
                return {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "extract.job.completed",
                    "payload": {"job_id": f"job-{n}", "created_at": 1_767_225_600_000 + n},
                }

            for label, senders, bodies in (
                ("1 sender, 200 deliveries", 1, [body(n) for n in range(200)]),
                ("16 senders, 1,000 deliveries", 16, [body(n) for n in range(500)] * 2),
            ):
                with ThreadPoolExecutor(senders) as pool:
                    times = sorted(pool.map(send, bodies))
                p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
                print(
                    f"  {label}: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
                    f"max {times[-1] * 1000:.1f} ms"
                )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _wait(what: str, test, timeout: float = 300.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = test()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(step)


def latency(
    interval: int | None, trials: int, latency_ms: float, dequeue_seconds: int | None = None
) -> list[tuple[float, float]]:
    """(seconds to the event logged, seconds to the rows) per trial; ``dequeue_seconds`` sets
    the run queue's dequeue interval (Dagster's default: 5 s) in the instance's copy."""
    import pipeline
    from pipeline.cloudglue.client import CloudglueClient
    from pipeline.emulator import EmulatorServer
    from pipeline.webhooks import EventLog

    dataset = _dataset()
    root = Path(tempfile.mkdtemp(prefix="bench-webhooks-latency-"))
    home, data = root / "home", root / "data"
    home.mkdir()
    shutil.copy(REPO / "pipeline" / "dagster.yaml", home / "dagster.yaml")
    if dequeue_seconds is not None:
        with open(home / "dagster.yaml", "a") as f:
            f.write(
                "run_coordinator:\n  module: dagster.core.run_coordinator\n"
                "  class: QueuedRunCoordinator\n"
                f"  config:\n    dequeue_interval_seconds: {dequeue_seconds}\n"
            )
    procs: list[subprocess.Popen] = []
    server = EmulatorServer(dataset, api_key=KEY, latency_ms=latency_ms).start()
    try:
        client = CloudglueClient(api_key=KEY, base_url=server.base_url)
        hook = client.create_webhook("http://127.0.0.1:1/", ["extract.job.completed"])
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "CLOUDGLUE_API_KEY": KEY,
            "CLOUDGLUE_BASE_URL": server.base_url,
            "CLOUDGLUE_DATA_DIR": str(data),
            "CLOUDGLUE_WEBHOOKS": "on",
            "CLOUDGLUE_WEBHOOK_SECRET": hook["webhook_secret"],
        }
        if interval is not None:
            env["CLOUDGLUE_WEBHOOK_SENSOR_SECONDS"] = str(interval)
        receiver = subprocess.Popen(
            [str(BIN / "cloudglue-pipeline"), "webhooks", "serve", "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        procs.append(receiver)
        client.update_webhook(hook["id"], endpoint=receiver.stdout.readline().split()[4])
        days = dataset.days()
        subprocess.run(
            [str(BIN / "cloudglue-pipeline"), "sync", "--quiet", "--from", str(days[0])],
            env=env,
            check=True,
        )
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=open(root / "daemon.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        procs.append(daemon)
        subprocess.run(
            [
                str(BIN / "dagster"),
                *("sensor", "start", "webhook_events_sensor"),
                *("-w", str(REPO / "workspace.yaml")),
            ],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        log = EventLog(data)
        rng = random.Random(18)
        results = []
        # A first completion lets the daemon's first tick and run happen (not measured).
        for trial, job_id in enumerate(_pending(dataset)[: trials + 1]):
            time.sleep(rng.uniform(0, interval or settings.DEFAULT_WEBHOOK_SENSOR_SECONDS))
            logged_before = len(log.read_new(None)[0])
            wall_started = time.time()
            started = time.monotonic()
            dataset.set_status(job_id, "completed")
            _wait("the event", lambda n=logged_before: len(log.read_new(None)[0]) > n, step=0.01)
            logged = time.monotonic() - started
            day = _day(dataset, job_id)
            expected = len(dataset.complete_job(job_id)["data"]["segment_entities"])
            # A job of 0 segment entities is landed once extract_jobs says completed.
            table = "segment_entities" if expected else "extract_jobs"

            def landed(job_id=job_id, day=day, expected=expected, table=table) -> bool:
                try:
                    rows = pipeline.read_table(table, data, days=[day])
                except (FileNotFoundError, OSError):
                    return False
                mine = rows[rows["job_id"] == job_id]
                if not expected:
                    return mine["status"].tolist() == ["completed"]
                return len(mine) == expected

            try:
                _wait("the rows", landed, step=0.25)
            except SystemExit:
                _diagnose(home, root / "daemon.log")
                raise
            if trial:
                results.append((logged, time.monotonic() - started))
                print(
                    f"  trial {trial}: event logged {logged:.2f} s, rows {results[-1][1]:.1f} s "
                    f"({_run_steps(home, wall_started)})"
                )
        client.close()
        return results
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _run_steps(home: Path, since: float) -> str:
    """When the latest run was created (the sensor's tick) and started (dequeued and launched),
    in seconds after ``since``; the rows are read before the run ends (it commits first)."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        (record,) = instance.get_run_records(limit=1)
    created = record.create_timestamp.timestamp() - since
    begun = (record.start_time or since) - since
    return f"run requested {created:.1f} s, started {begun:.1f} s"


def _diagnose(home: Path, daemon_log: Path) -> None:
    """What the daemon did: the sensor's ticks, the runs and the end of its log."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        for run in instance.get_runs(limit=10):
            print(f"  run {run.run_id[:8]} {run.status.value} {dict(run.tags)}")
    print(daemon_log.read_text(errors="replace")[-4000:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--short-interval", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    requests_per_hour()
    print("receiver answer time (local data dir):")
    receiver_answer_times()
    if args.skip_latency:
        return 0
    configs = (
        ("default (30 s)", None, None),
        (f"{args.short_interval} s", args.short_interval, None),
        (f"{args.short_interval} s, run queue dequeued every 1 s", args.short_interval, 1),
    )
    for label, interval, dequeue in configs:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"completion -> rows in segment_entities, sensor interval {label} (load {load}):")
        results = latency(interval, args.trials, args.latency_ms, dequeue)
        rows = [r for _, r in results]
        print(
            f"  median {statistics.median(rows):.1f} s, max {max(rows):.1f} s "
            f"(event logged: median {statistics.median(e for e, _ in results):.2f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
