"""A full device: writing fails naming the path, nothing committed before changes, and the next
run completes. A small tmpfs data dir, over real HTTP against the emulator."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import pipeline
from pipeline.cloudglue.client import CloudglueClient
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.storage.errors import StorageFullError
from pipeline.storage.raw import RawStore
from pipeline.sync import build_day, land_day, sync_day
from pipeline_tests.conftest import EMULATOR_API_KEY, EMULATOR_END_DATE


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted for the test (skipped where this process cannot mount)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _fill(directory: Path, leave: int) -> Path:
    """A file taking all but ``leave`` bytes of the device's free space."""
    st = os.statvfs(directory)
    filler = directory / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return filler


def _partitions(data_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(data_dir)): p.read_bytes()
        for p in sorted((data_dir / "tables").rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("stage", ["landing", "build"])
def test_a_full_device_fails_naming_the_path_and_the_next_run_completes(small_fs, stage):
    dataset = Dataset(seed=7, jobs=40, days=2, end_date=EMULATOR_END_DATE)
    first, second = dataset.days()
    data_dir = small_fs / "data"
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY) as server:
        client = CloudglueClient(EMULATOR_API_KEY, server.base_url)
        sync_day(client, data_dir, first)
        committed = _partitions(data_dir)
        if stage == "build":
            land_day(client, RawStore(data_dir), second)
        filler = _fill(small_fs, leave=4096)
        with pytest.raises(StorageFullError) as info:
            if stage == "build":
                build_day(data_dir, second)
            else:
                sync_day(client, data_dir, second)
        message = str(info.value)
        assert info.value.filename and info.value.filename.startswith(str(data_dir))
        assert info.value.filename in message and "no space left" in message
        assert _partitions(data_dir) == committed

        filler.unlink()
        sync_day(client, data_dir, second)
    jobs = pipeline.read_table("extract_jobs", data_dir)
    assert sorted(jobs.job_id) == sorted(dataset.job_ids())
