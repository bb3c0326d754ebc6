"""Asset checks on each day's partitions; the logic lives in ``pipeline.quality``."""

import datetime as dt
import warnings
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from pipeline.quality import CHECKS, CheckOutcome


def check_specs(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """Every registered check as a Dagster spec on ``partitions_def``.

    Partitioned check specs are a Dagster preview (1.13): without them a ranged run's evaluations
    cannot each land on their day. The preview note is for us, not for every process that loads
    the definitions (the webserver, the daemon, each run)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                check.name,
                asset=check.table,
                description=check.description,
                partitions_def=partitions_def,
            )
            for check in CHECKS
        ]


def table_check_keys() -> frozenset[dg.AssetCheckKey]:
    """The key of every registered check (each is on one of the six tables)."""
    return frozenset(dg.AssetCheckKey(dg.AssetKey(check.table), check.name) for check in CHECKS)


def check_evaluations(
    outcomes: Iterable[CheckOutcome],
    day: dt.date,
    selected: AbstractSet[dg.AssetCheckKey],
    instance: dg.DagsterInstance,
) -> Iterator[dg.AssetCheckEvaluation]:
    """Each selected check's outcome as its evaluation on the day's partition: a ranged run
    records every day's own result (an ``AssetCheckResult`` cannot name a partition).

    Each evaluation names the day's latest materialization of its asset (the one just recorded)
    as its target, as Dagster does for an ``AssetCheckResult``: the UI counts a partition's check
    as passed or failed only while it targets that partition's latest materialization, and shows
    it as missing otherwise."""
    partition = day.isoformat()
    targets: dict[dg.AssetKey, AssetCheckEvaluationTargetMaterializationData | None] = {}
    for outcome in outcomes:
        key = dg.AssetCheckKey(dg.AssetKey(outcome.table), outcome.name)
        if key not in selected:
            continue
        if key.asset_key not in targets:
            targets[key.asset_key] = _latest_materialization(instance, key.asset_key, partition)
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
            target_materialization_data=targets[key.asset_key],
            partition=partition,
        )


def _latest_materialization(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=records[0].storage_id,
        run_id=records[0].event_log_entry.run_id,
        timestamp=records[0].timestamp,
    )
