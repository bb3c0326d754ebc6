"""Daily partitions by the job's UTC creation day, up to and including today."""

import datetime as dt

import dagster as dg

from pipeline.settings import start_date_text


def daily_partitions() -> dg.DailyPartitionsDefinition:
    """The partitions from CLOUDGLUE_START_DATE as it is set now: the definitions call this when
    Dagster loads them, not when the module is imported."""
    return dg.DailyPartitionsDefinition(
        start_date=start_date_text(),
        timezone="UTC",
        # Include today: jobs created today are worth landing before the day is over.
        end_offset=1,
    )


def partition_day(partition_key: str) -> dt.date:
    return dt.date.fromisoformat(partition_key)
