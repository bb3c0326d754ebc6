"""Syncing UTC days: the one engine that the CLI, the Dagster assets and the sensors call.
Nothing here knows Dagster.

``plan`` lists a range once and finds which days changed upstream since they were built;
``ranged.sync_range`` lands, builds, commits and checks a range's days, handing landed days to
``day_builders`` processes; ``one_day`` holds its one-day forms (``land_day``, ``sync_day``);
``build.build_day`` builds one day from its landing; ``results`` holds what they report and
``errors`` why a day failed. Other packages import the names below from ``pipeline.sync``; the
tuning constants stay in their modules (patch them there).
"""

from pipeline.sync.build import build_day
from pipeline.sync.one_day import land_day, sync_day
from pipeline.sync.plan import (
    DayState,
    changed_days,
    completed_fingerprints,
    day_states,
    list_range,
    unchanged_build,
)
from pipeline.sync.ranged import sync_range
from pipeline.sync.results import DayResult, LandingResult, RangeStats

__all__ = [
    "DayResult",
    "DayState",
    "LandingResult",
    "RangeStats",
    "build_day",
    "changed_days",
    "completed_fingerprints",
    "day_states",
    "land_day",
    "list_range",
    "sync_day",
    "sync_range",
    "unchanged_build",
]
