"""Errors of the sync engine (``pipeline.sync``): what failed a day, naming the day and a job.

The client's errors are in ``pipeline.cloudglue.errors``, the data dir's in
``pipeline.storage.errors``, the command line's in ``pipeline.cli.errors``.
"""

from __future__ import annotations

import datetime as dt


class LandingError(Exception):
    """Some completed jobs of ``day`` could not be landed, ``job_id`` among them; the day's
    tables are not rebuilt. The first job's error is the ``__cause__``."""

    def __init__(self, message: str, *, day: dt.date | None = None, job_id: str | None = None):
        super().__init__(message)
        self.day = day
        self.job_id = job_id
