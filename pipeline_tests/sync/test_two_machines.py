"""Runs on two machines at once: two syncs of overlapping day ranges, in two processes that share
nothing but the bucket (and the API) -- each its own HOME, working directory, TMPDIR and
DAGSTER_HOME -- both succeed, and the tables equal a local day-by-day sync's.

Through ``sync_range`` (a ``python -c`` child each, started together: one of them has to wait
for the other's leases on the shared days) and through the CLI (Dagster in-process, its
instance in each machine's DAGSTER_HOME).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest

from pipeline.cloudglue.client import CloudglueClient
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.sync import sync_day
from pipeline_tests.cli.conftest import CLI
from pipeline_tests.stores import PYTHON, walk
from pipeline_tests.sync.test_ranged import _assert_same_tables

KEY = "two-machines-key"
END = dt.date(2026, 1, 15)

_SYNC_RANGE = """
import datetime as dt, logging, sys
from pipeline.cloudglue.client import CloudglueClient
from pipeline.sync import sync_range
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
first, last = (dt.date.fromisoformat(d) for d in sys.argv[2:4])
days = [first + dt.timedelta(n) for n in range((last - first).days + 1)]
print("ready", flush=True)
sys.stdin.readline()
with CloudglueClient(max_concurrency=4) as client:  # key and base URL from the environment
    results = list(sync_range(client, sys.argv[1], days))
failed = [(r.day, r.error) for r in results if r.error is not None]
print("failed", failed, flush=True)
sys.exit(1 if failed or len(results) != len(days) else 0)
"""


def _machine(root: Path, server: EmulatorServer) -> tuple[dict[str, str], Path]:
    """A fresh "machine": its own HOME, working dir, TMPDIR and DAGSTER_HOME; the bucket's
    AWS_* and the API's settings are all it shares with the other."""
    dirs = {name: root / name for name in ("home", "work", "tmp", "dagster_home")}
    for path in dirs.values():
        path.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDGLUE_", "DAGSTER_"))}
    env.update(
        HOME=str(dirs["home"]),
        TMPDIR=str(dirs["tmp"]),
        DAGSTER_HOME=str(dirs["dagster_home"]),
        CLOUDGLUE_API_KEY=KEY,
        CLOUDGLUE_BASE_URL=server.base_url,
    )
    return env, dirs["work"]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sync_range", "cli"])
def test_two_machines_syncing_overlapping_days_into_one_bucket_give_exact_tables(
    how: str, s3_env: str, tmp_path: Path
) -> None:
    dataset = Dataset(seed=21, jobs=36, days=6, end_date=END, hostile=True)
    days = [d.isoformat() for d in dataset.days()]
    ranges = [(days[0], days[3]), (days[2], days[5])]  # days 3 and 4 in both
    with EmulatorServer(dataset, api_key=KEY, latency_ms=20) as server:
        procs = []
        for n, (first, last) in enumerate(ranges):
            env, work = _machine(tmp_path / f"machine-{n}", server)
            if how == "cli":
                cmd = [str(CLI), "sync", "--from", first, "--to", last, "--data-dir", s3_env]
                cmd += ["--concurrency", "4", "--quiet"]
            else:
                cmd = [PYTHON, "-c", _SYNC_RANGE, s3_env, first, last]
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=work,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        if how == "sync_range":
            for proc in procs:
                assert proc.stdout.readline() == "ready\n", proc.stderr.read()
            for proc in procs:
                proc.stdin.write("go\n")
                proc.stdin.flush()
        outs = [proc.communicate(timeout=300) for proc in procs]
        for proc, (out, err) in zip(procs, outs, strict=True):
            assert proc.returncode == 0, f"{proc.args[:3]}\n{out}\n{err}"
        if how == "sync_range":  # they ran at once: one waited for the other's lease
            assert any("waiting for day-" in err for _, err in outs), [e for _, e in outs]

        with CloudglueClient(KEY, server.base_url, max_concurrency=4) as client:
            for day in dataset.days():
                sync_day(client, tmp_path / "daily", day)

    _assert_same_tables(s3_env, tmp_path / "daily")
    assert walk(s3_env, ".locks") == []  # every lease released
    for n in range(2):  # each machine's staging was its own and is gone
        tmp = tmp_path / f"machine-{n}" / "tmp"
        assert (tmp / "cloudglue-pipeline-staging").is_dir()  # it built there
        assert not [p for p in tmp.rglob("*.parquet")], list(tmp.rglob("*"))
    if how == "cli":
        for n in range(2):
            assert any((tmp_path / f"machine-{n}" / "dagster_home").rglob("*.db"))
