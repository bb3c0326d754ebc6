"""``check_days``: each day's check outcomes, kept with a digest of their inputs so a day whose
landing and partitions did not change is not read again."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from pipeline.quality.cache import (
    DayInputs,
    keep_outcomes,
    kept_outcomes,
    known_inputs,
    list_inputs,
)
from pipeline.quality.queries import run_checks
from pipeline.quality.registry import CheckOutcome
from pipeline.storage.raw import RawStore
from pipeline.storage.store import Store, open_store

if TYPE_CHECKING:
    from pipeline.storage.results import DayWriteResult


def check_day(data_dir: str | os.PathLike[str] | Store, day: dt.date) -> list[CheckOutcome]:
    """Every check for one day's partitions (see :func:`check_days`)."""
    return check_days(data_dir, [day])[day]


def check_days(
    data_dir: str | os.PathLike[str] | Store,
    days: Iterable[dt.date],
    *,
    built: Mapping[dt.date, DayWriteResult] | None = None,
) -> dict[dt.date, list[CheckOutcome]]:
    """Every check for each day's partitions, read back in one DuckDB pass over the days.

    The outcomes are kept under ``.cache/checks/`` in the data dir with a digest of their inputs:
    a day whose landing and partitions did not change (a re-sync with nothing new) is not read
    again. ``built``: the days' build results that know their inputs (``build_day``'s writes,
    ``unchanged_build``'s finds): nothing is listed again for them, and a day just written has
    no outcomes kept yet.
    """
    built = built or {}
    files = open_store(data_dir)
    store = RawStore(files)
    outcomes: dict[dt.date, list[CheckOutcome]] = {}
    todo: dict[dt.date, tuple[DayInputs, str]] = {}

    def cached(day: dt.date) -> tuple[dt.date, DayInputs, str, list[CheckOutcome] | None]:
        result = built.get(day)
        known = known_inputs(result)
        inputs = known or list_inputs(store, day)
        key = inputs.cache_key(store, day)
        if known is not None and result is not None and result.written:
            return day, inputs, key, None
        return day, inputs, key, kept_outcomes(store, day, key)

    for day, inputs, key, found in files.map(cached, list(days)):
        if found is not None:
            outcomes[day] = found
        else:
            todo[day] = (inputs, key)
    if todo:
        checked = run_checks(store, {day: inputs for day, (inputs, _) in todo.items()})
        files.map(lambda day: keep_outcomes(store, day, todo[day][1], checked[day]), list(todo))
        outcomes.update(checked)
    return outcomes
