"""The deployment as production runs it, on one machine: PostgreSQL, the emulator, a code server
(`dagster code-server start`) and `dagster-daemon run` on the production `deploy/dagster.yaml`,
sharing only the instance (Postgres) and the data dir (an ``s3://`` prefix of a SeaweedFS bucket).
A backfill of 20 days is added to the
instance as the UI adds it; the daemon queues its runs and the code server starts each in its
own process (DefaultRunLauncher). One run's process tree is SIGKILLed while it fetches; the
code server reports the run failed and the run retry daemon re-runs it. Meanwhile a second
backfill of one of the days runs next to the run that holds it.

Checked: every day of every asset materialized, and the tables equal those of a
`cloudglue-pipeline sync` of the same days; at most `default_limit` (2) steps in the
`cloudglue_api` pool at once and so at most 2 x 16 requests in flight at the emulator; two runs
never work on the same day at once; the killed run's days are landed by its retry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qs, unquote

import dagster as dg
import psutil
import pytest
import yaml
from dagster._core.events import DagsterEventType
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES, RunsFilter
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    BACKFILL_ID_TAG,
    PARENT_RUN_ID_TAG,
    PARTITION_NAME_TAG,
)
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from pipeline.defs.assets import API_POOL
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.settings import DEFAULT_MAX_CONCURRENCY
from pipeline_tests.conftest import EMULATOR_END_DATE, emulator_access_log
from pipeline_tests.postgres import Postgres, free_port
from pipeline_tests.reliability.conftest import CLI, snapshot

KEY = "sk-deploy-5b1e0c7a"
DAYS, JOBS, DAYS_PER_RUN, POOL_LIMIT = 20, 120, 5, 2
BIN = Path(sys.executable).parent
LOCATION = "cloudglue_pipeline"
# Whatever the caller's shell set must not leak into the processes under test.
_OWN_ENV = ("CLOUDGLUE_API_KEY", "CLOUDGLUE_BASE_URL", "CLOUDGLUE_DATA_DIR", "DAGSTER_HOME")


class Services:
    """Processes started for the test, each in its own session, stopped by their ids."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "wb") as log:
            self.procs.append(
                subprocess.Popen(
                    cmd,
                    env=env,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def check_alive(self) -> None:
        for proc in self.procs:
            assert proc.poll() is None, f"{proc.args[:3]} exited: {self.tail()}"

    def tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
            for p in sorted(self.logs.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@contextlib.contextmanager
def services(logs: Path) -> Iterator[Services]:
    logs.mkdir(parents=True, exist_ok=True)
    running = Services(logs)
    try:
        yield running
    finally:
        running.stop()


def _wait(condition, what: str, timeout: float, procs: Services, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        procs.check_alive()
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{procs.tail()}"
        time.sleep(step)


def _remote_asset_graph(instance: dg.DagsterInstance, workspace: Path):
    """The asset graph as the code server reports it (what the UI's backfill dialog uses), or
    None while the location is not loaded."""
    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)])) as ctx:
        request = ctx.create_request_context()
        if request.has_code_location_error(LOCATION) or not request.has_code_location(LOCATION):
            return None
        return request.asset_graph


def _add_backfill(instance, graph, backfill_id: str, days: list[dt.date]) -> None:
    instance.add_backfill(
        PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id,
            asset_graph=graph,
            partition_names=[d.isoformat() for d in days],
            asset_selection=sorted(graph.materializable_asset_keys, key=str),
            backfill_timestamp=time.time(),
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=None,
            description=None,
            run_config=None,
        )
    )


def _days_of(run: dg.DagsterRun) -> list[dt.date]:
    tags = run.tags
    if PARTITION_NAME_TAG in tags:
        return [dt.date.fromisoformat(tags[PARTITION_NAME_TAG])]
    first = dt.date.fromisoformat(tags[ASSET_PARTITION_RANGE_START_TAG])
    last = dt.date.fromisoformat(tags[ASSET_PARTITION_RANGE_END_TAG])
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _events(instance, run_id: str, kind: DagsterEventType) -> list:
    return list(instance.all_logs(run_id, of_type=kind))


def _run_pid(instance, run_id: str) -> int | None:
    for record in _events(instance, run_id, DagsterEventType.ENGINE_EVENT):
        text = record.dagster_event.message or ""
        if text.startswith("Started process for run (pid: "):
            return int(text.split("pid: ", 1)[1].split(")", 1)[0])
    return None


def _kill_tree(pid: int) -> None:
    """SIGKILL a run worker and its step processes at once, as a lost container would."""
    root = psutil.Process(pid)
    for proc in [*root.children(recursive=True), root]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def _step_intervals(instance, run_id: str, died_at: float | None) -> list[tuple[float, float]]:
    """(start, end) of each step attempt of the run: STEP_START to its success, failure or
    retry, or to the process's death."""
    starts = [e.timestamp for e in _events(instance, run_id, DagsterEventType.STEP_START)]
    ends = sorted(
        e.timestamp
        for kind in (
            DagsterEventType.STEP_SUCCESS,
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.STEP_UP_FOR_RETRY,
        )
        for e in _events(instance, run_id, kind)
    )
    if died_at is not None and len(ends) < len(starts):
        ends.append(died_at)
    assert len(starts) == len(ends), (run_id, starts, ends)
    return list(zip(sorted(starts), ends, strict=True))


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, delta in edges:
        now += delta
        most = max(most, now)
    return most


def _run_timings(instance, run: dg.DagsterRun) -> tuple[float, float]:
    """(seconds from launch to end, seconds of that outside the step)."""
    record = instance.get_run_record_by_id(run.run_id)
    starting = _events(instance, run.run_id, DagsterEventType.RUN_STARTING)
    launched = starting[0].timestamp if starting else record.start_time
    total = record.end_time - launched
    steps = sum(e - s for s, e in _step_intervals(instance, run.run_id, record.end_time))
    return total, total - steps


@pytest.mark.slow
def test_a_backfill_through_the_daemon_on_postgres_lands_every_day_exact(
    tmp_path: Path, postgres: Postgres, production_home: Path, data_dir: str
) -> None:
    dataset = Dataset(seed=31, jobs=JOBS, days=DAYS, end_date=EMULATOR_END_DATE)
    days = dataset.days()
    assert len(days) == DAYS
    day_of_job = {j: d for d in days for j in dataset.job_ids_for_day(d)}
    workspace = tmp_path / "workspace.yaml"
    port = free_port()
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": LOCATION}}
                ]
            }
        )
    )
    config = yaml.safe_load((production_home / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == POOL_LIMIT

    t_start = time.monotonic()
    with (
        emulator_access_log() as answered,
        EmulatorServer(dataset, api_key=KEY, latency_ms=30) as server,
        services(tmp_path / "logs") as procs,
    ):
        env = {k: v for k, v in os.environ.items() if k not in _OWN_ENV}
        env.update(postgres.env())
        env.update(
            {
                "DAGSTER_HOME": str(production_home),
                "CLOUDGLUE_API_KEY": KEY,
                "CLOUDGLUE_BASE_URL": server.base_url,
                "CLOUDGLUE_DATA_DIR": data_dir,
                "CLOUDGLUE_DAYS_PER_RUN": str(DAYS_PER_RUN),
                # The killed run's days are free for its retry a few seconds after it died.
                "CLOUDGLUE_LEASE_SECONDS": "6",
            }
        )
        # The code location and its runs (children of the code server) get their own working
        # directory and temp dir, apart from the daemon's.
        code_tmp = tmp_path / "code" / "tmp"
        code_tmp.mkdir(parents=True)
        procs.start(
            "code-server",
            [str(BIN / "dagster"), "code-server", "start", "-m", "pipeline.definitions",
             "--location-name", LOCATION, "-h", "127.0.0.1", "-p", str(port)],
            {**env, "TMPDIR": str(code_tmp)},
            tmp_path / "code",
        )
        with _instance_env(env), dg.DagsterInstance.get() as instance:
            graph = _wait(
                lambda: _remote_asset_graph(instance, workspace),
                "the code server",
                120,
                procs,
                step=0.5,
            )
            procs.start(
                "daemon",
                [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                env,
                tmp_path / "daemon",
            )
            started = time.monotonic()
            wall_start = time.time()
            print(f"\ncode server up after {started - t_start:.1f} s", flush=True)
            _add_backfill(instance, graph, "year", days)
            ranges = [days[i : i + DAYS_PER_RUN] for i in range(0, DAYS, DAYS_PER_RUN)]
            # A person materializes one day while the backfill runs.
            lone = ranges[2][2]
            _add_backfill(instance, graph, "lone", [lone])

            # Kill the first range's run once it is fetching that range's jobs.
            def fetching_run():
                runs = instance.get_runs(RunsFilter(tags={BACKFILL_ID_TAG: "year"}))
                for run in runs:
                    if run.status != dg.DagsterRunStatus.STARTED or _days_of(run) != ranges[0]:
                        continue
                    fetched = [
                        t for _, t, _ in answered.rows
                        if "/extract/" in t
                        and day_of_job.get(unquote(t.partition("?")[0].rsplit("/", 1)[1]))
                        in ranges[0]
                    ]
                    pid = _run_pid(instance, run.run_id)
                    if len(fetched) >= 3 and pid:
                        return run, pid
                return None

            victim, pid = _wait(fetching_run, "the first run to fetch", 180, procs, step=0.02)
            _kill_tree(pid)
            killed_at = time.time()
            print(f"killed {victim.run_id} at {time.monotonic() - started:.1f} s", flush=True)

            def finished():
                backfills = [instance.get_backfill(b) for b in ("year", "lone")]
                active = instance.get_runs(
                    RunsFilter(statuses=[*IN_PROGRESS_RUN_STATUSES])
                )
                return not active and all(
                    b.status not in (BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING)
                    for b in backfills
                ) and any(
                    r.tags.get(PARENT_RUN_ID_TAG) == victim.run_id
                    and r.status == dg.DagsterRunStatus.SUCCESS
                    for r in instance.get_runs()
                )

            _wait(finished, "the backfills and the retry", 300, procs, step=0.5)
            wall = time.monotonic() - started
            runs = instance.get_runs()
            max_in_flight = server.stats.max_in_flight

            # Every day of every asset is materialized on the instance.
            wanted = {d.isoformat() for d in days}
            for key in graph.materializable_asset_keys:
                assert instance.get_materialized_partitions(key) == wanted, key

            # The killed run failed (reported by the code server), its retry landed its days.
            assert instance.get_run_by_id(victim.run_id).status == dg.DagsterRunStatus.FAILURE
            retry = next(r for r in runs if r.tags.get(PARENT_RUN_ID_TAG) == victim.run_id)
            assert _days_of(retry) == ranges[0]
            assert retry.status == dg.DagsterRunStatus.SUCCESS

            # The pool: never more than POOL_LIMIT steps at once, across all run processes.
            steps = {
                r.run_id: _step_intervals(
                    instance, r.run_id, killed_at if r.run_id == victim.run_id else None
                )
                for r in runs
            }
            assert _max_overlap([i for v in steps.values() for i in v]) <= POOL_LIMIT
            assert instance.event_log_storage.get_concurrency_info(API_POOL).slot_count == 2
            assert max_in_flight <= POOL_LIMIT * DEFAULT_MAX_CONCURRENCY

            # No day is worked on by two runs at once: a run holds its days' locks from its
            # listing to its last commit, so for two runs of a day, one's listing starts only
            # after the other's commit of the day. (The killed run is left out: its retry
            # starts after the kill.)
            _assert_days_never_overlap(instance, runs, answered.rows, victim.run_id)

            for r in sorted(runs, key=lambda r: r.tags.get(BACKFILL_ID_TAG, "")):
                rec = instance.get_run_record_by_id(r.run_id)
                t0 = rec.create_timestamp.timestamp()
                spans = [
                    (round(a - wall_start, 1), round(b - wall_start, 1)) for a, b in steps[r.run_id]
                ]
                print(
                    f"  {_days_of(r)[0]}+{len(_days_of(r))} {r.status.value:8} created "
                    f"{t0 - wall_start:6.1f} started {(rec.start_time or t0) - wall_start:6.1f} "
                    f"ended {(rec.end_time or t0) - wall_start:6.1f} step {spans}"
                )
            timings = {
                r.run_id: _run_timings(instance, r)
                for r in runs
                if r.status == dg.DagsterRunStatus.SUCCESS
            }

    # The same days through `cloudglue-pipeline sync` (in-process runs, SQLite instance): the
    # reference tables and the figures to compare with.
    with EmulatorServer(dataset, api_key=KEY, latency_ms=30) as server:
        ref_home = tmp_path / "ref_home"
        ref_env = {k: v for k, v in os.environ.items() if k not in _OWN_ENV}
        ref_env.update(
            {
                "DAGSTER_HOME": str(ref_home),
                "CLOUDGLUE_API_KEY": KEY,
                "CLOUDGLUE_BASE_URL": server.base_url,
                "CLOUDGLUE_DAYS_PER_RUN": str(DAYS_PER_RUN),
            }
        )
        t0 = time.monotonic()
        done = subprocess.run(
            [str(CLI), "sync", "--from", days[0].isoformat(), "--to", days[-1].isoformat(),
             "--data-dir", str(tmp_path / "reference"), "--quiet"],
            env=ref_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        sync_wall = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    assert snapshot(data_dir) == snapshot(tmp_path / "reference")

    with _instance_env(ref_env), dg.DagsterInstance.get() as ref:
        ref_timings = [_run_timings(ref, r) for r in ref.get_runs()]
    _report(wall, timings, sync_wall, ref_timings, max_in_flight)


def _assert_days_never_overlap(instance, runs, rows, killed: str) -> None:
    listings: dict[dt.date, list[float]] = {}
    for at, target, _status in rows:
        path, _, query = target.partition("?")
        if path.endswith("/extract"):  # a page of a listing; the run's first is what counts
            after = parse_qs(query)["created_after"][0]
            first = dt.date.fromisoformat(after[:10]) + dt.timedelta(days=1)
            listings.setdefault(first, []).append(at)
    windows: dict[dt.date, list[tuple[float, float, str]]] = {}
    for run in runs:
        if run.run_id == killed or run.status != dg.DagsterRunStatus.SUCCESS:
            continue
        days = _days_of(run)
        step_start = min(
            e.timestamp for e in _events(instance, run.run_id, DagsterEventType.STEP_START)
        )
        listed = min(t for t in listings[days[0]] if t >= step_start)
        commits: dict[str, float] = {}
        for e in _events(instance, run.run_id, DagsterEventType.ASSET_MATERIALIZATION):
            part = e.dagster_event.partition
            commits[part] = max(commits.get(part, 0.0), e.timestamp)
        for day in days:
            windows.setdefault(day, []).append((listed, commits[day.isoformat()], run.run_id))
    shared = {d: w for d, w in windows.items() if len(w) > 1}
    assert shared, "no day was run by two runs: the test did not exercise the locks"
    for day, spans in shared.items():
        spans.sort()
        for (_s1, e1, r1), (s2, _e2, r2) in itertools.pairwise(spans):
            assert e1 <= s2, f"{day}: runs {r1} and {r2} worked on it at once"


@contextlib.contextmanager
def _instance_env(env: dict[str, str]) -> Iterator[None]:
    """This process sees the instance the services see (DagsterInstance.get reads the env)."""
    keys = ("DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME",
            "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
    with mock.patch.dict(os.environ, {k: env[k] for k in keys if k in env}):
        yield


def _report(wall, timings, sync_wall, ref_timings, max_in_flight) -> None:
    def mean(xs):
        return sum(xs) / len(xs) if xs else 0.0

    runs = list(timings.values())
    print(
        f"\ndeployment: {DAYS} days, {JOBS} jobs, {len(runs)} successful runs in {wall:.1f} s "
        f"(backfill added to all runs done, incl. a killed run and its retry); run launch-to-end "
        f"mean {mean([t for t, _ in runs]):.1f} s, outside the step "
        f"{mean([o for _, o in runs]):.1f} s"
        f"; emulator max in flight {max_in_flight}\n"
        f"sync:       same days, {len(ref_timings)} in-process runs in {sync_wall:.1f} s; run "
        f"mean {mean([t for t, _ in ref_timings]):.1f} s, outside the step "
        f"{mean([o for _, o in ref_timings]):.1f} s"
    )
