"""The raw landing and the six tables built from it: one multi-asset, one UTC day per partition.

A run covers a range of days (CLOUDGLUE_DAYS_PER_RUN at most: the backfill policy) and calls
``pipeline.sync.sync_range`` once for all of them. Each day is recorded as a one-day run would
record it: an ``AssetMaterialization`` per asset with the day's own metadata and an
``AssetCheckEvaluation`` per check, both on the day's partition, emitted as the day commits. A
day that fails does not stop the others; the step fails at the end naming every failed day, and
Dagster marks exactly those days' partitions failed.
"""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import dagster as dg

from pipeline.cloudglue.errors import AuthError, ConfigError
from pipeline.defs import metadata as md
from pipeline.defs.checks import check_evaluations, check_specs, table_check_keys
from pipeline.defs.partitions import daily_partitions, partition_day
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.progress import current_reporter, span_text
from pipeline.quality import check_day
from pipeline.settings import days_per_run
from pipeline.storage.raw import RawStore
from pipeline.sync import DayResult, RangeStats, build_day, sync_range
from pipeline.tables import TABLE_DESCRIPTIONS, TABLE_NAMES
from pipeline.tables.columns import column_description

GROUP = "cloudglue"
RAW_ASSET = "raw_extract_jobs"

# Transient failures the client's own retries could not absorb (an API outage) get two more
# chances a few minutes apart; days already committed are found unchanged and cost a listing.
RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
# Runs that call the API share one pool, so a backfill's runs do not multiply our rate.
API_POOL = "cloudglue_api"
# Who launched a run, for a person reading the run list: `cloudglue-pipeline sync` tags its
# runs "cli".
LAUNCHED_BY_TAG = "cloudglue/launched_by"
LAUNCHED_BY_CLI = "cli"


def days_asset(
    retry_policy: dg.RetryPolicy | None = RETRY_POLICY,
    partitions_def: dg.DailyPartitionsDefinition | None = None,
) -> dg.AssetsDefinition:
    """The multi-asset of the landing and the six tables, with ``retry_policy`` on its step, on
    ``partitions_def`` (else the daily partitions as CLOUDGLUE_START_DATE says now).

    A run takes up to CLOUDGLUE_DAYS_PER_RUN days (read now): a backfill of a year is a few runs,
    each one listing of its range and one pool of requests, while each day still shows on its own
    partition.

    The CLI's runs take none: a retry waits minutes for an outage to pass while a person waits
    (the client has already retried each request), and Dagster retries an interrupted step too,
    so Ctrl-C would not stop the run. (The executor's ``retries: disabled`` would do the same,
    but in-process runs ignore executor config.)
    """
    partitions = partitions_def or daily_partitions()

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                RAW_ASSET,
                group_name=GROUP,
                kinds={"python", "json"},
                partitions_def=partitions,
                skippable=True,
                description=(
                    "Every extract job created on the day, as listed by the Cloudglue API, and "
                    "the complete JSON of each completed job (zstd) under <data_dir>/raw/. A "
                    "landed job is never downloaded again. `requests` counts the day's job "
                    "pages; the listing of the run's range is in the run's log."
                ),
            ),
            *(
                dg.AssetSpec(
                    name,
                    deps=[RAW_ASSET],
                    group_name=GROUP,
                    description=TABLE_DESCRIPTIONS[name],
                    kinds={"parquet", "duckdb"},
                    partitions_def=partitions,
                    skippable=True,
                )
                for name in TABLE_NAMES
            ),
        ],
        check_specs=check_specs(partitions),
        partitions_def=partitions,
        # Subsettable for the landing's sake: the tables alone rebuild from the landing with no
        # API call, the landing alone lands. Any table selected records all six (see below).
        can_subset=True,
        retry_policy=retry_policy,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=days_per_run()),
        pool=API_POOL,
    )
    def cloudglue_days(
        context: dg.AssetExecutionContext,
        cloudglue: CloudglueResource,
        data_dir: DataDirResource,
    ) -> Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation]:
        """Lands the run's days (when raw_extract_jobs is selected) and builds their tables (when
        any table is: all six, recorded as such), each day committed atomically per table as
        soon as its jobs are landed."""
        yield from _materialize_days(context, cloudglue, data_dir)

    return cloudglue_days


def _materialize_days(
    context: dg.AssetExecutionContext, cloudglue: CloudglueResource, data_dir: DataDirResource
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    days = [partition_day(key) for key in context.partition_keys]
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    land = RAW_ASSET in selected
    # A day's six tables are built and committed together, so whichever of them are selected,
    # all six are recorded with every check on them: none keeps a materialization (row count,
    # schema, checks) older than the partition it describes.
    tables = list(TABLE_NAMES) if selected.intersection(TABLE_NAMES) else []
    checks = table_check_keys() if tables else context.selected_asset_check_keys
    failed: list[DayResult] = []
    stats = RangeStats()
    try:
        if land:
            with cloudglue.get_client() as client:
                results = sync_range(
                    client,
                    data_dir.root,
                    days,
                    build=bool(tables),
                    progress=current_reporter(),
                    stats=stats,
                )
                for result in results:
                    yield from _day_events(context, data_dir, result, land, tables, checks, failed)
        else:
            for day in days:
                result = _rebuild(data_dir, day)
                yield from _day_events(context, data_dir, result, land, tables, checks, failed)
    except (AuthError, ConfigError) as exc:
        # Waiting will not fix a wrong key or URL.
        raise dg.Failure(description=f"{span_text(days)}: {exc}", allow_retries=False) from None
    except Exception as exc:
        # The range could not be listed (an outage the client's retries did not absorb).
        raise dg.Failure(description=f"{span_text(days)}: {_error_line(exc)}") from exc
    if land:
        client = stats.client
        context.log.info(
            f"{span_text(days)}: listed in {stats.listing_requests} request(s); "
            f"{client.get('requests', 0)} requests in all, "
            f"{client.get('bytes_received', 0)} bytes, "
            f"retries {client.get('retries_by_cause', {})}, "
            f"{client.get('backoff_seconds', 0.0):.1f} s of backoff"
        )
    if failed:
        causes = {str(r.day): _cause(r) for r in sorted(failed, key=lambda r: r.day)}
        raise dg.Failure(
            description=f"{len(failed)} of {len(days)} day(s) failed: "
            + "; ".join(causes.values()),
            metadata={md.FAILED_DAYS: dg.MetadataValue.json(causes)},
        )


def _cause(result: DayResult) -> str:
    """One line: the day, the error's type and the first line of its message."""
    return f"{result.day}: {_error_line(result.error)}"


def _error_line(exc: BaseException | None) -> str:
    message = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {message}"


def _rebuild(data_dir: DataDirResource, day: dt.date) -> DayResult:
    """A day's tables rebuilt from its landing, with no API call (raw_extract_jobs unselected)."""
    try:
        built = build_day(data_dir.root, day)
        return DayResult(day, built=built, checks=check_day(data_dir.root, day))
    except Exception as exc:
        return DayResult(day, error=exc)


def _day_events(
    context: dg.AssetExecutionContext,
    data_dir: DataDirResource,
    result: DayResult,
    land: bool,
    tables: list[str],
    checks: Any,
    failed: list[DayResult],
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    """The day's materializations and check evaluations, or its failure logged (and kept)."""
    partition = result.day.isoformat()
    if result.error is not None:
        failed.append(result)
        context.log.error(_cause(result))
        return
    if land and result.landing is not None:
        landing = result.landing
        for job_id, reason in landing.skipped:
            context.log.warning(f"{partition}: skipped job {job_id!r}: {reason}")
        yield dg.AssetMaterialization(
            asset_key=RAW_ASSET,
            partition=partition,
            metadata={
                md.PATH: dg.MetadataValue.path(RawStore(data_dir.root).describe_day(result.day)),
                md.JOBS_LISTED: landing.listed,
                md.JOBS_BY_STATUS: dict(sorted(landing.jobs_by_status.items())),
                md.JOBS_FETCHED: landing.fetched,
                md.JOBS_ALREADY_LANDED: landing.already_landed,
                md.JOBS_SKIPPED: len(landing.skipped),
                md.SKIPPED_JOBS: dg.MetadataValue.json(skipped_lines(landing.skipped)),
                md.JOBS_PRUNED: landing.pruned,
                md.REQUESTS: landing.requests,
                md.UNCHANGED: result.unchanged,
                md.SECONDS: round(result.seconds, 3),
            },
        )
    if result.built is not None:
        for name in tables:
            table = result.built.tables[name]
            yield dg.AssetMaterialization(
                asset_key=name,
                partition=partition,
                metadata={
                    md.ROW_COUNT: table.rows,
                    md.COLUMN_SCHEMA: _column_schema(name, table.schema),
                    md.PATH: dg.MetadataValue.path(str(table.path)),
                    md.JOBS: result.built.jobs,
                    md.FILES: table.files,
                    md.PREVIEW: dg.MetadataValue.md(table.preview_markdown),
                },
            )
        yield from check_evaluations(result.checks, result.day, checks, context.instance)


# Enough to act on without making one run's metadata huge (job ids may be 500 characters).
_SKIPPED_SHOWN = 20
_ID_SHOWN = 80


def skipped_lines(skipped: list[tuple[str, str]]) -> list[str]:
    """``job_id: reason`` per skipped job, for metadata the CLI and the UI show (bounded)."""
    lines = [f"{job_id[:_ID_SHOWN]!r}: {reason}" for job_id, reason in skipped[:_SKIPPED_SHOWN]]
    if len(skipped) > _SKIPPED_SHOWN:
        lines.append(f"... and {len(skipped) - _SKIPPED_SHOWN} more (see the run's log)")
    return lines


def _column_schema(table: str, schema: Any) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=f.name, type=str(f.type), description=column_description(table, f))
            for f in schema
        ]
    )
