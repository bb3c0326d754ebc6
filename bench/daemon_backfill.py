"""A backfill of every day of ``history`` launched as the UI launches it, run by the Dagster daemon.

Starts the emulator (the ``history`` workload of ``bench/run.py``, its own process), a fresh
DAGSTER_HOME with the packaged ``dagster.yaml`` and ``dagster-daemon run`` on the repo's
``workspace.yaml``; adds an asset backfill of all seven assets over the workload's 365 partitions
(what the UI's "Materialize" of a partition range adds); waits for the daemon to finish it and
prints its wall time, its runs and their durations, and checks every partition of every asset is
materialized and the tables hold the workload's segment entities.

    .venv/bin/python bench/daemon_backfill.py [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as pads

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as B

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workload", default="history", choices=B.WORKLOADS)
    args = parser.parse_args()
    days = B.workload_days(args.workload)
    emulator = B.Emulator(args.workload, args.latency_ms)
    root = Path(tempfile.mkdtemp(prefix="daemon-backfill-"))
    home, data = root / "home", root / "data"
    home.mkdir()
    shutil.copy(REPO / "pipeline" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CLOUDGLUE_API_KEY": B.KEY,
        "CLOUDGLUE_BASE_URL": emulator.base_url,
        "CLOUDGLUE_DATA_DIR": str(data),
        "CLOUDGLUE_START_DATE": days[0].isoformat(),
    }
    os.environ.update(env)
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.storage.dagster_run import RunsFilter

    from pipeline.definitions import defs

    daemon_exe = Path(sys.executable).with_name("dagster-daemon")
    daemon = subprocess.Popen(
        [str(daemon_exe), "run", "-w", str(REPO / "workspace.yaml")],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=open(root / "daemon.log", "wb"),  # noqa: SIM115
        start_new_session=True,
    )
    try:
        with dg.DagsterInstance.get() as instance:
            graph = defs().resolve_asset_graph()
            keys = sorted(graph.materializable_asset_keys, key=str)
            backfill = PartitionBackfill.from_asset_partitions(
                backfill_id="bench",
                asset_graph=graph,
                partition_names=[d.isoformat() for d in days],
                asset_selection=keys,
                backfill_timestamp=time.time(),
                tags={},
                dynamic_partitions_store=instance,
                all_partitions=False,
                title=None,
                description=None,
                run_config=None,
            )
            started = time.monotonic()
            instance.add_backfill(backfill)
            while True:
                status = instance.get_backfill("bench").status
                if status not in (BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING):
                    break
                if time.monotonic() - started > 1800:
                    raise SystemExit("the backfill did not finish in 30 minutes")
                time.sleep(0.5)
            wall = time.monotonic() - started
            runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": "bench"}))
            print(f"backfill {status.value} in {wall:.1f} s, {len(runs)} runs")
            start_tag = "dagster/asset_partition_range_start"
            for run in sorted(runs, key=lambda r: r.tags.get(start_tag, "")):
                stats = instance.get_run_stats(run.run_id)
                span = (
                    f"{run.tags.get('dagster/asset_partition_range_start')}.."
                    f"{run.tags.get('dagster/asset_partition_range_end')}"
                )
                seconds = (stats.end_time or 0) - (stats.launch_time or stats.start_time or 0)
                print(f"  {span} {run.status.value} {seconds:.1f} s from launch to end")
            wanted = {d.isoformat() for d in days}
            for key in keys:
                have = instance.get_materialized_partitions(key)
                if have != wanted:
                    raise SystemExit(f"{key.to_user_string()}: {len(have)} of {len(days)} days")
        rows = pads.dataset(data / "tables" / "segment_entities", partitioning="hive").count_rows()
        if rows != emulator.segments:
            raise SystemExit(f"{rows} segment entities, expected {emulator.segments}")
        print(f"every partition materialized; {rows} segment entities")
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(60)
        emulator.close()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
