"""One extract job's small record and how it is drawn from the seed.

A dataset's first jobs follow ``COVERAGE_PLAN``; the rest draw their status, strategy, config
kind and size from ``random.Random(f"{seed}:{index}")``. Ids are stable UUIDs of the job's key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from dataclasses import dataclass

STATUSES = ("pending", "processing", "completed", "failed", "not_applicable")
STRATEGIES = ("uniform", "shot-detector", "manual", "narrative")
DAY_MS = 86_400_000
_MASK = 2**64 - 1

# (status, strategy, segment count, config kind, legacy) for the first jobs of every dataset. A
# "metadata" job has ``enable_metadata_mode``: file-level entities only, no segment entities.
COVERAGE_PLAN: tuple[tuple[str, str, int, str, bool], ...] = (
    ("completed", "uniform", 0, "metadata", False),
    ("completed", "shot-detector", 1, "schema", False),
    ("completed", "narrative", 50, "prompt", False),
    ("completed", "manual", 100, "schema", False),
    ("completed", "uniform", 101, "prompt", True),
    ("completed", "shot-detector", 350, "schema", False),
    ("completed", "narrative", 9, "schema", True),
    ("completed", "manual", 23, "prompt", True),
    ("failed", "uniform", 12, "prompt", False),
    ("pending", "manual", 8, "schema", False),
    ("processing", "narrative", 15, "prompt", False),
    ("not_applicable", "shot-detector", 0, "schema", False),
)

_STATUS_WEIGHTS = (0.06, 0.06, 0.75, 0.07, 0.06)
COMPLETED_SHARE = _STATUS_WEIGHTS[2]


def stable_uuid(*parts: object) -> str:
    """A stable UUID4-shaped id from its parts (blake2b, not the salted ``hash()``)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def splitmix64(x: int) -> int:
    """splitmix64: a cheap, well-spread 64-bit hash of an int."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def day_ms(day: dt.date) -> int:
    """Milliseconds since the epoch at 00:00 UTC of ``day``."""
    return (day - dt.date(1970, 1, 1)).days * DAY_MS


@dataclass(slots=True)
class Job:
    key: str
    job_id: str
    created_at: int
    status: str
    strategy: str
    n_segments: int
    config_kind: str
    legacy: bool
    url: str
    segmentation_id: str
    file_id: str
    hash: int
    hostile: str | None = None


def make_job(seed: int, index: int, start_ms: int, span_ms: int, mean: float | None) -> Job:
    """Job ``index`` of the dataset of ``seed``, created within ``span_ms`` after ``start_ms``;
    ``mean`` is the mean segment count of its completed jobs (None: 0-40)."""
    key = f"{seed}:{index}"
    rng = random.Random(key)
    created = start_ms + rng.randrange(span_ms)
    if index < len(COVERAGE_PLAN):
        status, strategy, n, kind, legacy = COVERAGE_PLAN[index]
    else:
        status = rng.choices(STATUSES, weights=_STATUS_WEIGHTS)[0]
        strategy = rng.choice(STRATEGIES)
        kind = rng.choice(("prompt", "schema"))
        legacy = rng.random() < 0.1
        if mean is None:
            n = 0 if rng.random() < 0.03 else rng.randint(1, 40)
        else:
            n = rng.randint(0, round(2 * mean))
    file_id = stable_uuid(key, "file")
    url = rng.choice(
        (
            f"https://videos.example.com/{file_id}.mp4",
            f"cloudglue://files/{file_id}",
            f"https://www.youtube.com/watch?v={file_id[:11]}",
        )
    )
    return Job(
        key=key,
        job_id=stable_uuid(key, "job"),
        created_at=created,
        status=status,
        strategy=strategy,
        n_segments=n,
        config_kind=kind,
        legacy=legacy,
        url=url,
        segmentation_id=stable_uuid(key, "segmentation"),
        file_id=file_id,
        hash=int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big"),
    )
