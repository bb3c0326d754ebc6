"""The progress hook, the summary table and the failure cause, in-process."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from pipeline.cli import RUN_CONFIG, failure_causes
from pipeline.defs.assets import days_asset
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.progress import (
    DaySummary,
    ProgressReporter,
    current_reporter,
    render_summary,
    reporting,
)
from pipeline_tests.conftest import EMULATOR_API_KEY, EMULATOR_END_DATE

DAY = EMULATOR_END_DATE


def _materialize(emulator: EmulatorServer, data_dir: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [days_asset(retry_policy=None)],
        partition_key=DAY.isoformat(),
        resources={
            "cloudglue": CloudglueResource(
                api_key=dg.EnvVar("CLOUDGLUE_API_KEY"), base_url=emulator.base_url
            ),
            "data_dir": DataDirResource(path=str(data_dir)),
        },
        run_config=RUN_CONFIG,
        raise_on_error=False,
    )


def test_the_landing_asset_reports_to_the_current_reporter(
    dataset: Dataset, emulator: EmulatorServer, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("CLOUDGLUE_API_KEY", EMULATOR_API_KEY)
    events: list[tuple[str, dict]] = []
    with reporting(lambda event, data: events.append((event, data))):
        assert _materialize(emulator, tmp_path).success
    assert current_reporter() is None
    ids = dataset.job_ids_for_day(DAY)
    completed = {j for j in ids if dataset.status(j) == "completed"}
    assert events[0] == ("listed", {"day": DAY, "listed": len(ids), "to_fetch": len(completed)})
    fetched = {data["job_id"]: data["segments"] for event, data in events if event == "fetched"}
    assert fetched == {j: dataset.complete_job(j)["total"] for j in completed}


def test_a_failure_that_is_not_a_dagster_failure_is_one_line_with_its_type(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("CLOUDGLUE_API_KEY", EMULATOR_API_KEY)

    # A file where the tables directory goes: the day's build fails with an OSError.
    (tmp_path / "tables").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "tables").write_text("not a directory\nsecond line")
    started = time.monotonic()
    result = _materialize(emulator, tmp_path)
    assert not result.success
    (cause,) = failure_causes([DAY], result).values()
    assert re.fullmatch(rf"{DAY}: (NotADirectoryError|FileExistsError): [^\n]*tables[^\n]*", cause)
    # With no retry policy (as in the CLI's runs) the step fails at once, not minutes later.
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    assert time.monotonic() - started < 30


def test_an_error_outside_a_dagster_failure_is_named_by_its_innermost_cause():
    from dagster._utils.error import SerializableErrorInfo

    cause = SerializableErrorInfo(
        "pipeline.sync.LandingError: 2 job(s) lost\nmore\n", [], "LandingError"
    )
    wrapped = SerializableErrorInfo(
        "dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing\n",
        [],
        "DagsterExecutionStepExecutionError",
        cause,
    )
    failure = SimpleNamespace(
        event_type_value="STEP_FAILURE",
        step_failure_data=SimpleNamespace(user_failure_data=None, error=wrapped),
    )
    other = SimpleNamespace(event_type_value="STEP_START")
    result = SimpleNamespace(all_events=[other, failure])
    assert failure_causes([DAY], result) == {DAY: f"{DAY}: LandingError: 2 job(s) lost"}
    assert failure_causes([DAY], SimpleNamespace(all_events=[other]))[DAY].startswith(
        f"{DAY}: the run failed"
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _day(i: int) -> dt.date:
    return dt.date(2026, 1, 10) + dt.timedelta(days=i)


def test_plain_progress_prints_a_line_per_interval_and_per_day():
    out, clock = io.StringIO(), FakeClock()
    reporter = ProgressReporter(out, live=False, interval=5.0, clock=clock)
    reporter.start(2)
    reporter.start_span(_day(0), _day(0))
    reporter("listed", {"day": _day(0), "listed": 3, "to_fetch": 2})
    clock.now = 1.0
    reporter("fetched", {"day": _day(0), "job_id": "a", "segments": 10})
    clock.now = 6.0
    reporter("fetched", {"day": _day(0), "job_id": "b", "segments": 20})
    reporter.finish_day(DaySummary(day=_day(0), seconds=6.0, listed=3, fetched=2, segment_rows=30))
    reporter.start_span(_day(1), _day(1))
    reporter.finish_day(DaySummary(day=_day(1), seconds=0.5, ok=False))
    reporter.close()
    assert out.getvalue().splitlines() == [
        "[0/2 days] 2026-01-10  jobs 0/2 of 3 listed  segments 0  0.0 jobs/s 0 seg/s",
        "[0/2 days] 2026-01-10  jobs 2/2 of 3 listed  segments 30  0.3 jobs/s 5 seg/s",
        "2026-01-10 done: 3 jobs listed, 2 fetched, 30 segment entities, 6.0 s",
        "2026-01-11 FAILED: 0 jobs listed, 0 fetched, 0 segment entities, 0.5 s",
    ]


def test_live_progress_redraws_one_line_and_clears_it():
    out, clock = io.StringIO(), FakeClock()
    reporter = ProgressReporter(out, live=True, clock=clock)
    reporter.start(1)
    reporter.start_span(_day(0), _day(0))
    reporter("listed", {"day": _day(0), "listed": 1, "to_fetch": 1})
    clock.now = 0.5
    reporter("fetched", {"day": _day(0), "job_id": "a", "segments": 4})
    reporter.close()
    text = out.getvalue()
    assert "\n" not in text
    frames = text.split("\r")
    assert frames[1].startswith("[0/1 days] 2026-01-10  listing...")
    assert frames[3].startswith("[0/1 days] 2026-01-10  jobs 1/1 of 1 listed  segments 4")
    assert frames[-1] == "" and frames[-2].strip() == ""


def test_summary_table_has_a_row_per_day_totals_and_the_rate():
    days = [
        DaySummary(
            day=_day(0),
            seconds=2.0,
            listed=5,
            by_status={"completed": 4, "failed": 1},
            fetched=3,
            already_landed=1,
            segment_rows=120,
        ),
        DaySummary(
            day=_day(1),
            seconds=1.0,
            listed=2,
            by_status={"completed": 2},
            fetched=2,
            segment_rows=30,
            failed_checks=["segment_entities.time_range_valid"],
        ),
    ]
    lines = render_summary(days, total_seconds=5.0).splitlines()
    assert (
        " ".join(lines[0].split()) == "day listed by status fetched landed before segments seconds"
    )
    assert lines[2] == lines[2].rstrip()
    assert " ".join(lines[2].split()) == "2026-01-10 5 completed 4, failed 1 3 1 120 2.0"
    assert " ".join(lines[3].split()) == "2026-01-11 2 completed 2 2 0 30 1.0"
    assert " ".join(lines[5].split()) == "total 7 completed 6, failed 1 5 1 150 5.0"
    assert lines[6] == (
        "2 day(s), 5 jobs fetched, 150 segment entities in 5.0 s "
        "(1.0 jobs/s, 30 segment entities/s)"
    )
    assert lines[7] == (
        "warning: 2026-01-11: check segment_entities.time_range_valid failed "
        "(see the run in the Dagster UI)"
    )


@pytest.mark.parametrize("live", [True, False])
def test_reporter_ignores_unknown_events(live):
    out = io.StringIO()
    reporter = ProgressReporter(out, live=live, clock=FakeClock())
    reporter.start(1)
    reporter("something-new", {})
    assert out.getvalue() == ""
