"""Where everything lives in a data dir, as keys relative to it ("/"-separated, no I/O).

```
tables/<table>/created_date=YYYY-MM-DD/part-NNNNN.parquet   what readers glob
  (part-SS-NNNNN.parquet when shard SS of a parallel build wrote it; a bucket holds one
  part-00000.parquet per partition, replaced whole)
tables/<table>/created_date=YYYY-MM-DD/_build.json          input fingerprint, counts
tables/<table>/_schema.json                                 column kinds and names
raw/created_date=YYYY-MM-DD/<job file>.json.zst             one landed completed job
raw/created_date=YYYY-MM-DD/_listing.json.zst               the day's listing, written last
.cache/checks/created_date=YYYY-MM-DD.json                  cached check outcomes
webhooks/ids/<event hash>.json                              an event seen: the day it is logged
webhooks/events/received_date=YYYY-MM-DD/<event hash>.json  one received webhook event
.staging/<uuid>/...                                         partitions being written (local)
.locks/<name>.lock | .locks/<name>.lease                    fcntl locks (local), leases (bucket)
```
Staging and locks sit outside ``tables/`` so a reader's ``tables/<table>/**/*.parquet`` glob never
sees a half-written file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

PARTITION_KEY = "created_date"
TABLES = "tables"
RAW = "raw"
STAGING = ".staging"
LOCKS = ".locks"
BUILD_RECORD = "_build.json"
SCHEMA_FILE = "_schema.json"
LISTING_FILE = "_listing.json.zst"
JOB_SUFFIX = ".json.zst"
PARQUET_SUFFIX = ".parquet"
# The one file of a partition written whole (a bucket's, or a local build's single chunk).
SINGLE_PART = "part-00000.parquet"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def as_date(day: dt.date | str) -> dt.date:
    """A partition day from a date or ``YYYY-MM-DD`` text."""
    if isinstance(day, dt.datetime):
        return day.date()
    if isinstance(day, dt.date):
        return day
    return dt.date.fromisoformat(day)


def partition_name(day: dt.date) -> str:
    return f"{PARTITION_KEY}={day.isoformat()}"


def parse_partition_name(name: str) -> dt.date | None:
    """The day of a ``created_date=YYYY-MM-DD`` name, else None."""
    prefix = PARTITION_KEY + "="
    if not name.startswith(prefix):
        return None
    try:
        return dt.date.fromisoformat(name[len(prefix) :])
    except ValueError:
        return None


def table_prefix(table: str) -> str:
    return f"{TABLES}/{table}"


def partition_prefix(table: str, day: dt.date) -> str:
    return f"{table_prefix(table)}/{partition_name(day)}"


def schema_key(table: str) -> str:
    return f"{table_prefix(table)}/{SCHEMA_FILE}"


def raw_day_prefix(day: dt.date) -> str:
    return f"{RAW}/{partition_name(day)}"


def listing_key(day: dt.date) -> str:
    return f"{raw_day_prefix(day)}/{LISTING_FILE}"


def job_file_stem(job_id: str) -> str:
    """A file-name-safe, collision-free stem for a job id (no separators, no dots, bounded):
    job ids are free text (``/``, ``..``, ``%``, 500 characters); the id lives inside the file."""
    readable = _UNSAFE.sub("_", job_id)[:64]
    digest = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{readable}-{digest}"


def job_file_name(job_id: str) -> str:
    return job_file_stem(job_id) + JOB_SUFFIX


def job_key(day: dt.date, job_id: str) -> str:
    return f"{raw_day_prefix(day)}/{job_file_name(job_id)}"


def check_cache_key(day: dt.date) -> str:
    return f".cache/checks/{partition_name(day)}.json"


def day_lock_name(day: dt.date) -> str:
    return f"day-{day.isoformat()}"


WEBHOOKS = "webhooks"


def webhook_event_hash(event_id: str) -> str:
    """A file-name-safe, fixed-length name for a webhook event id (free text from the sender)."""
    return hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def webhook_seen_key(event_id: str) -> str:
    return f"{WEBHOOKS}/ids/{webhook_event_hash(event_id)}.json"


def webhook_events_prefix(day: dt.date) -> str:
    return f"{WEBHOOKS}/events/received_date={day.isoformat()}"


def webhook_event_key(day: dt.date, event_id: str) -> str:
    return f"{webhook_events_prefix(day)}/{webhook_event_hash(event_id)}.json"


def is_parquet(name: str) -> bool:
    return name.endswith(PARQUET_SUFFIX)
