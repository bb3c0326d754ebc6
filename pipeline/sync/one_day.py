"""``land_day`` and ``sync_day``: ``sync_range`` of one day, raising the day's error."""

from __future__ import annotations

import datetime as dt

from pipeline.cloudglue.client import CloudglueClient
from pipeline.progress import ProgressCallback
from pipeline.storage import DayWriteResult
from pipeline.storage.raw import RawStore
from pipeline.sync.build import DataDir
from pipeline.sync.ranged import sync_range
from pipeline.sync.results import DayResult, LandingResult


def _one_day(
    client: CloudglueClient,
    data_dir: DataDir,
    day: dt.date,
    *,
    build: bool,
    progress: ProgressCallback | None,
) -> DayResult:
    (result,) = sync_range(client, data_dir, [day], build=build, progress=progress)
    if result.error is not None:
        raise result.error
    return result


def land_day(
    client: CloudglueClient,
    store: RawStore,
    day: dt.date,
    *,
    progress: ProgressCallback | None = None,
) -> LandingResult:
    """Land one day: list it, fetch the completed jobs not landed yet, write the listing."""
    result = _one_day(client, store.store, day, build=False, progress=progress)
    assert result.landing is not None
    return result.landing


def sync_day(
    client: CloudglueClient,
    data_dir: DataDir,
    day: dt.date,
    *,
    progress: ProgressCallback | None = None,
) -> tuple[LandingResult, DayWriteResult]:
    """``sync_range`` of one day: its landing and its committed partitions (raises if it failed)."""
    result = _one_day(client, data_dir, day, build=True, progress=progress)
    assert result.landing is not None and result.built is not None
    return result.landing, result.built
