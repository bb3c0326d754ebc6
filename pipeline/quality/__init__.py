"""Data-quality checks of each day's written partitions, read back from the data dir with DuckDB.

``registry`` names every check once (the Dagster layer makes its specs from it), ``queries`` runs
them over a batch of days, ``cache`` keeps each day's outcomes with a digest of their inputs, and
``days.check_days`` ties the three together.
"""

from pipeline.quality.days import check_day, check_days
from pipeline.quality.registry import CHECKS, Check, CheckOutcome

__all__ = ["CHECKS", "Check", "CheckOutcome", "check_day", "check_days"]
