"""Asset checks on each day's partitions; the logic lives in ``pipeline.quality``."""

import datetime as dt
import warnings
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet

import dagster as dg
import sqlalchemy as sa
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable as Events
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

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
    wanted = [
        (outcome, key)
        for outcome in outcomes
        if (key := dg.AssetCheckKey(dg.AssetKey(outcome.table), outcome.name)) in selected
    ]
    targets = latest_materializations(instance, {key.asset_key for _, key in wanted}, partition)
    for outcome, key in wanted:
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


def latest_materializations(
    instance: dg.DagsterInstance, asset_keys: AbstractSet[dg.AssetKey], partition: str
) -> dict[dg.AssetKey, AssetCheckEvaluationTargetMaterializationData | None]:
    """Each asset's latest materialization of ``partition``, in one query of the event log's
    indexed columns when it is SQL (SQLite, PostgreSQL): Dagster's ``fetch_materializations``
    reads and deserializes each whole event, one query per asset, every day of a ranged run
    (bench/README.md). The timestamp is the column's, which Dagster writes from the event's to
    the microsecond."""
    storage = instance.event_log_storage
    if not asset_keys:
        return {}
    if not isinstance(storage, SqlEventLogStorage):
        return {key: _fetched_latest(instance, key, partition) for key in asset_keys}
    materialized = DagsterEventType.ASSET_MATERIALIZATION.value
    latest_each = [
        sa.select(
            sa.select(Events.c.id, Events.c.asset_key, Events.c.run_id, Events.c.timestamp)
            .where(
                Events.c.asset_key == key.to_string(),
                Events.c.dagster_event_type == materialized,
                Events.c.partition == partition,
            )
            .order_by(Events.c.id.desc())
            .limit(1)
            .subquery()
        )
        for key in sorted(asset_keys, key=dg.AssetKey.to_string)
    ]
    with storage.index_connection() as conn:
        rows = conn.execute(sa.union_all(*latest_each)).fetchall()
    found = {
        row.asset_key: AssetCheckEvaluationTargetMaterializationData(
            storage_id=row.id,
            run_id=row.run_id,
            timestamp=row.timestamp.replace(tzinfo=dt.UTC).timestamp(),
        )
        for row in rows
    }
    return {key: found.get(key.to_string()) for key in asset_keys}


def _fetched_latest(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """Through Dagster's public API, for event logs that are not SQL."""
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
