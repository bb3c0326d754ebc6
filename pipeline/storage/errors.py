"""Errors of the data dir: a full device, a bucket's refusal, a lease taken over, a landing that
stopped under a build worker. Each says which file, object, lock or day, and never a credential.

``StorageFullError`` and ``BucketError`` are ``OSError``s, so callers that tell the data dir's
own errors from the API's (``pipeline.sync``) see them as such."""

from __future__ import annotations

import datetime as dt


class StorageFullError(OSError):
    """No space left (or the quota is used up) on the device a file was being written to.

    Raised as ``StorageFullError(errno, strerror, path)``, so it pickles back from a build
    worker. Every write is staged and swapped in whole, so what was committed before is intact.
    """

    def __str__(self) -> str:
        return (
            f"no space left on the device while writing {self.filename} ({self.strerror}): free"
            " space or use another data dir, then run again; data committed before is unchanged"
        )


class BucketError(OSError):
    """The bucket refused or failed a request (after obstore's retries); says which and why."""


class LeaseLost(RuntimeError):
    """A lease this process held was taken over (it was not renewed in time)."""


class LandingAborted(RuntimeError):
    """The landing a build worker was following ended without landing all its jobs: ``day``."""

    def __init__(self, day: dt.date) -> None:
        super().__init__(day)
        self.day = day

    def __str__(self) -> str:
        return f"{self.day}: the landing stopped before all jobs were landed"
