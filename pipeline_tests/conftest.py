"""Shared fixtures: a small emulator dataset with a fixed end date, served on a free port."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from pipeline.emulator import Dataset, EmulatorServer

EMULATOR_END_DATE = dt.date(2026, 1, 15)
EMULATOR_API_KEY = "emulator-key"


@pytest.fixture
def dataset() -> Dataset:
    """A fresh 60-job, 5-day dataset (every status, strategy and special size is present)."""
    return Dataset(seed=7, jobs=60, days=5, end_date=EMULATOR_END_DATE)


@pytest.fixture
def emulator(dataset: Dataset) -> Iterator[EmulatorServer]:
    """The started emulator serving ``dataset``; its key is ``EMULATOR_API_KEY``."""
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY) as server:
        yield server
