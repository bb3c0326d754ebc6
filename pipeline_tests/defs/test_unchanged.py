"""A day is "unchanged" only while the API lists exactly what was landed and built."""

from __future__ import annotations

from pipeline.cloudglue.client import CloudglueClient
from pipeline.emulator import Dataset, EmulatorServer
from pipeline.sync import changed_days
from pipeline_tests.conftest import EMULATOR_API_KEY


def test_unchanged_until_a_job_completes_or_is_deleted(
    dataset: Dataset, emulator: EmulatorServer, materialize_day, data_dir
):
    day = next(
        d
        for d in dataset.days()
        if sum(dataset.status(j) == "completed" for j in dataset.job_ids_for_day(d)) > 1
        and any(dataset.status(j) == "processing" for j in dataset.job_ids_for_day(d))
    )
    ids = dataset.job_ids_for_day(day)

    def unchanged_day(client: CloudglueClient, data_dir, day):
        changed, unchanged = changed_days(client, data_dir, [day])
        assert (day in changed) != (day in unchanged)
        return unchanged.get(day)

    with CloudglueClient(EMULATOR_API_KEY, emulator.base_url) as client:
        assert unchanged_day(client, data_dir, day) is None  # never built
        assert materialize_day(day).success
        built = unchanged_day(client, data_dir, day)
        assert built is not None and built.jobs == len(ids)

        dataset.set_status(next(j for j in ids if dataset.status(j) == "processing"), "completed")
        assert unchanged_day(client, data_dir, day) is None
        assert materialize_day(day).success
        assert unchanged_day(client, data_dir, day) is not None

        dataset.delete_job(next(j for j in ids if dataset.status(j) == "completed"))
        assert unchanged_day(client, data_dir, day) is None
