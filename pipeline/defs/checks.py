"""Asset checks on each day's partitions; the logic lives in ``pipeline.quality``."""

import datetime as dt
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet

import dagster as dg

from pipeline.defs.partitions import daily_partitions
from pipeline.quality import CHECKS, CheckOutcome

CHECK_SPECS = [
    dg.AssetCheckSpec(
        check.name,
        asset=check.table,
        description=check.description,
        partitions_def=daily_partitions,
    )
    for check in CHECKS
]


def check_evaluations(
    outcomes: Iterable[CheckOutcome], day: dt.date, selected: AbstractSet[dg.AssetCheckKey]
) -> Iterator[dg.AssetCheckEvaluation]:
    """Each selected check's outcome as its evaluation on the day's partition: a ranged run
    records every day's own result (an ``AssetCheckResult`` cannot name a partition)."""
    for outcome in outcomes:
        key = dg.AssetCheckKey(dg.AssetKey(outcome.table), outcome.name)
        if key not in selected:
            continue
        yield dg.AssetCheckEvaluation(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=outcome.passed,
            description=outcome.description,
            severity=(
                dg.AssetCheckSeverity.WARN
                if outcome.check.warn_only
                else dg.AssetCheckSeverity.ERROR
            ),
            metadata=outcome.metadata,
            partition=day.isoformat(),
        )
