"""One job the API describes inconsistently never sinks its day: it is landed as far as the API
described it, kept in ``extract_jobs`` with its problem, flagged by a check, and the day's other
jobs commit. Real HTTP against the emulator's ``inconsistent_job`` fault."""

from __future__ import annotations

import pytest

import pipeline
from pipeline.cloudglue.client import CloudglueClient
from pipeline.emulator import Dataset, EmulatorServer, FaultConfig
from pipeline.emulator.faults import INCONSISTENCIES
from pipeline.quality import check_day
from pipeline.sync import sync_day
from pipeline_tests.conftest import EMULATOR_API_KEY, EMULATOR_END_DATE

PAGE_SIZE = 25


def _landed_entities(how: str, real: int) -> int:
    """Segment entities a job described as ``how`` lands, of ``real`` the API holds."""
    return {"no-data": 0, "null-data": 0, "no-total": min(real, PAGE_SIZE)}.get(how, real)


@pytest.mark.parametrize("how", INCONSISTENCIES)
def test_an_inconsistent_job_is_landed_flagged_and_its_day_commits(tmp_path, how):
    dataset = Dataset(seed=7, jobs=60, days=5, end_date=EMULATOR_END_DATE)
    day = max(dataset.days(), key=lambda d: len(dataset.job_ids_for_day(d)))
    faults = FaultConfig(inconsistent_job=0.3, inconsistency=how)
    completed = {j for j in dataset.job_ids_for_day(day) if dataset.status(j) == "completed"}
    bad = {j for j in completed if faults.inconsistency_of(j)}
    assert bad and bad != completed
    with EmulatorServer(dataset, api_key=EMULATOR_API_KEY, faults=faults) as server:
        client = CloudglueClient(
            EMULATOR_API_KEY, server.base_url, page_size=PAGE_SIZE, backoff_base=0.01
        )
        sync_day(client, tmp_path, day)
        assert server.stats.faults["inconsistent_job"] > 0

    jobs = pipeline.read_table("extract_jobs", tmp_path)
    assert sorted(jobs.job_id) == sorted(dataset.job_ids_for_day(day))
    problems = {j: p for j, p in zip(jobs.job_id, jobs.problem, strict=True) if isinstance(p, str)}
    assert set(problems) == bad
    rows = pipeline.read_table("segment_entities", tmp_path).groupby("job_id").size()
    for job_id in completed:
        real = len(dataset.complete_job(job_id)["data"]["segment_entities"])
        expected = _landed_entities(how, real) if job_id in bad else real
        assert rows.get(job_id, 0) == expected, (job_id, problems.get(job_id))

    outcomes = {(o.table, o.name): o for o in check_day(tmp_path, day)}
    flagged = outcomes[("extract_jobs", "jobs_described_consistently")]
    assert not flagged.passed
    assert flagged.metadata["jobs_with_problems"] == len(bad)
    assert outcomes[("extract_jobs", "completed_jobs_have_rows")].passed
