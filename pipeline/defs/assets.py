"""The raw landing asset and the six table assets built from it, one UTC day per partition."""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from pipeline.cloudglue.errors import AuthError, ConfigError
from pipeline.defs.checks import CHECK_SPECS, check_results
from pipeline.defs.partitions import daily_partitions, partition_day
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.progress import current_reporter
from pipeline.storage.raw import RawStore
from pipeline.sync import build_day, land_day, sync_day
from pipeline.tables import TABLE_DESCRIPTIONS, TABLE_NAMES

GROUP = "cloudglue"

# Transient failures the client's own retries could not absorb (an API outage) get two more
# chances a few minutes apart; a day that keeps failing then shows red in the UI.
RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
# One run per day: a failing day fails alone, retries alone and is re-run alone.
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
# Runs that call the API share one pool, so a 30-day backfill does not multiply our rate.
API_POOL = "cloudglue_api"
# A run tagged with this set to "off" fails at once instead of retrying (the CLI sets it: the
# client has already retried each request, and a person is waiting).
RETRIES_TAG = "cloudglue/dagster_retries"


def _step_failure(context: dg.AssetExecutionContext, day: object, exc: Exception) -> dg.Failure:
    """A failure naming the day and the error; the RetryPolicy applies unless the run's
    RETRIES_TAG is "off" (a person is waiting: fail at once, not after minutes of retries)."""
    return dg.Failure(
        description=f"{day}: {type(exc).__name__}: {exc}",
        allow_retries=context.run.tags.get(RETRIES_TAG) != "off",
    )


@dg.asset(
    group_name=GROUP,
    partitions_def=daily_partitions,
    kinds={"python", "json"},
    retry_policy=RETRY_POLICY,
    backfill_policy=BACKFILL_POLICY,
    pool=API_POOL,
    description=(
        "Every extract job created on the day, as listed by the Cloudglue API, and the complete "
        "JSON of each completed job (zstd) under <data_dir>/raw/. A landed job is never "
        "downloaded again. In a run that also materializes the tables, they are built while "
        "the jobs land."
    ),
)
def raw_extract_jobs(
    context: dg.AssetExecutionContext, cloudglue: CloudglueResource, data_dir: DataDirResource
) -> dg.MaterializeResult:
    day = partition_day(context.partition_key)
    store = RawStore(data_dir.root)
    try:
        with cloudglue.get_client() as client:
            if _tables_in_run(context):
                # The tables step then finds them built from this landing and only reports.
                result, _ = sync_day(client, data_dir.root, day, progress=current_reporter())
            else:
                result = land_day(client, store, day, progress=current_reporter())
    except (AuthError, ConfigError) as exc:
        # Waiting will not fix a wrong key or URL.
        raise dg.Failure(description=f"{day}: {exc}", allow_retries=False) from None
    except Exception as exc:
        raise _step_failure(context, day, exc) from exc
    stats = result.client_stats
    for job_id, reason in result.skipped:
        context.log.warning(f"skipped job {job_id!r}: {reason}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(store.day_dir(day))),
            "jobs_listed": result.listed,
            "jobs_by_status": dict(sorted(result.jobs_by_status.items())),
            "jobs_fetched": result.fetched,
            "jobs_already_landed": result.already_landed,
            "jobs_skipped": len(result.skipped),
            "skipped_jobs": dg.MetadataValue.json(skipped_lines(result.skipped)),
            "jobs_pruned": result.pruned,
            "requests": stats.get("requests", 0),
            "retries": dict(stats.get("retries_by_cause", {})),
            "bytes_downloaded": stats.get("bytes_received", 0),
            "backoff_seconds": round(stats.get("backoff_seconds", 0.0), 3),
        }
    )


def _tables_in_run(context: dg.AssetExecutionContext) -> bool:
    """Whether this run materializes the tables too: then they are built beside the landing
    (``sync_day``), which saves most of the build's time on a big day."""
    selected = context.job_def.asset_layer.selected_asset_keys
    return any(dg.AssetKey(name) in selected for name in TABLE_NAMES)


# Enough to act on without making one run's metadata huge (job ids may be 500 characters).
_SKIPPED_SHOWN = 20
_ID_SHOWN = 80


def skipped_lines(skipped: list[tuple[str, str]]) -> list[str]:
    """``job_id: reason`` per skipped job, for metadata the CLI and the UI show (bounded)."""
    lines = [f"{job_id[:_ID_SHOWN]!r}: {reason}" for job_id, reason in skipped[:_SKIPPED_SHOWN]]
    if len(skipped) > _SKIPPED_SHOWN:
        lines.append(f"... and {len(skipped) - _SKIPPED_SHOWN} more (see the run's log)")
    return lines


def _column_schema(schema: Any) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=f.name, type=str(f.type)) for f in schema])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            name,
            deps=[raw_extract_jobs],
            group_name=GROUP,
            description=TABLE_DESCRIPTIONS[name],
            kinds={"parquet", "duckdb"},
            partitions_def=daily_partitions,
        )
        for name in TABLE_NAMES
    ],
    check_specs=CHECK_SPECS,
    partitions_def=daily_partitions,
    retry_policy=RETRY_POLICY,
    backfill_policy=BACKFILL_POLICY,
)
def cloudglue_tables(
    context: dg.AssetExecutionContext, data_dir: DataDirResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Rebuilds the day's six table partitions from the landing, atomically per table."""
    day = partition_day(context.partition_key)
    try:
        result = build_day(data_dir.root, day)
    except Exception as exc:
        raise _step_failure(context, day, exc) from exc
    for name in TABLE_NAMES:
        table = result.tables[name]
        yield dg.MaterializeResult(
            asset_key=name,
            metadata={
                "dagster/row_count": table.rows,
                "dagster/column_schema": _column_schema(table.schema),
                "path": dg.MetadataValue.path(str(table.path)),
                "jobs": result.jobs,
                "files": table.files,
                "preview": dg.MetadataValue.md(table.preview_markdown),
            },
        )
    yield from check_results(data_dir.root, day)
