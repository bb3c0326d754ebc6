"""Complete jobs fetched as the landing fetches them (``fetch_job_json`` under ``fetch_each``),
parsed for comparison with the emulator's ground truth."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline import jsonio
from pipeline.cloudglue.client import CloudglueClient


def complete(client: CloudglueClient, job_id: str) -> dict[str, Any]:
    return jsonio.loads(client.fetch_job_json(job_id).body)


def complete_all(client: CloudglueClient, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Every job of ``job_ids`` by id; the first failure raises."""
    jobs = {}
    for job_id, outcome in client.fetch_each(client.fetch_job_json, job_ids):
        if isinstance(outcome, Exception):
            raise outcome
        jobs[job_id] = jsonio.loads(outcome.body)
    return jobs
