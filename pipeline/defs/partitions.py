"""Daily partitions by the job's UTC creation day, up to and including today."""

import datetime as dt
import os

import dagster as dg

DEFAULT_START_DATE = "2025-01-01"

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=os.environ.get("CLOUDGLUE_START_DATE", DEFAULT_START_DATE),
    timezone="UTC",
    # Include today: jobs created today are worth landing before the day is over.
    end_offset=1,
)


def partition_day(partition_key: str) -> dt.date:
    return dt.date.fromisoformat(partition_key)
