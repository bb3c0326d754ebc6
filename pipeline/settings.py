"""Every environment variable and default that the CLI, the Dagster definitions and the client
share, in one place so they cannot disagree.

Imports neither Dagster nor pyarrow: the CLI reads these before deciding whether it needs either.
"""

import os
from pathlib import Path
from typing import Any

API_KEY_ENV = "CLOUDGLUE_API_KEY"
BASE_URL_ENV = "CLOUDGLUE_BASE_URL"
DEFAULT_BASE_URL = "https://api.cloudglue.dev/v1"

DATA_DIR_ENV = "CLOUDGLUE_DATA_DIR"
DEFAULT_DATA_DIR = "data"

# A bucket data dir's per-day leases (pipeline/storage/lease.py): how long a lease outlives its
# holder's last renewal. Renewed every third of it; a crashed run's days are free after it.
LEASE_SECONDS_ENV = "CLOUDGLUE_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 60

DAGSTER_HOME_ENV = "DAGSTER_HOME"
DEFAULT_DAGSTER_HOME = ".dagster_home"

# The first day of the daily partitions.
START_DATE_ENV = "CLOUDGLUE_START_DATE"
DEFAULT_START_DATE = "2025-01-01"

# How many recent UTC days the completed-jobs sensor watches.
LOOKBACK_DAYS_ENV = "CLOUDGLUE_SENSOR_LOOKBACK_DAYS"
DEFAULT_LOOKBACK_DAYS = 7

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 6
DEFAULT_MAX_CONCURRENCY = 16
DEFAULT_BACKOFF_SECONDS = 0.5

# The client settings by CloudglueResource field name (the CLI's ApiOptions uses the same names);
# a None base URL means CLOUDGLUE_BASE_URL, else DEFAULT_BASE_URL.
CLIENT_DEFAULTS: dict[str, Any] = {
    "base_url": None,
    "base_url_source": "CloudglueResource.base_url",
    "timeout_seconds": DEFAULT_TIMEOUT_SECONDS,
    "max_retries": DEFAULT_MAX_RETRIES,
    "max_concurrency": DEFAULT_MAX_CONCURRENCY,
    "max_requests_per_second": None,
    "backoff_seconds": DEFAULT_BACKOFF_SECONDS,
}


# Data dirs in a bucket (pipeline/storage/bucket.py); anything else is a local path.
BUCKET_SCHEMES = ("s3://", "s3a://")


def data_dir(flag: str | None = None) -> Path | str:
    """The data dir: ``flag`` if given, else CLOUDGLUE_DATA_DIR, else ./data. A bucket URL
    (``s3://bucket/prefix``) is kept as it is; a path is made absolute."""
    text = flag or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    if text.lower().startswith(BUCKET_SCHEMES):
        return text.rstrip("/")
    return Path(text).absolute()


def lease_seconds() -> float:
    """CLOUDGLUE_LEASE_SECONDS, at least one second."""
    return max(1.0, float(os.environ.get(LEASE_SECONDS_ENV) or DEFAULT_LEASE_SECONDS))


def dagster_home() -> Path:
    """DAGSTER_HOME, else ./.dagster_home."""
    return Path(os.environ.get(DAGSTER_HOME_ENV) or DEFAULT_DAGSTER_HOME).absolute()


def start_date_text() -> str:
    """CLOUDGLUE_START_DATE as set (the partitions definition parses it), else the default."""
    return os.environ.get(START_DATE_ENV, DEFAULT_START_DATE)


def lookback_days() -> int:
    """CLOUDGLUE_SENSOR_LOOKBACK_DAYS, at least 1."""
    return max(1, int(os.environ.get(LOOKBACK_DAYS_ENV, DEFAULT_LOOKBACK_DAYS)))


# Days per run, for `sync --from --to`, backfills and the sensor alike: one listing and one run's
# start-up for up to a quarter of days, while a run's listing (held in memory) and the days whose
# locks it holds stay bounded. CLOUDGLUE_DAYS_PER_RUN changes it (read when the definitions load:
# set it on the code location; more, smaller runs spread a backfill over more processes or pods).
DAYS_PER_RUN_ENV = "CLOUDGLUE_DAYS_PER_RUN"
DEFAULT_DAYS_PER_RUN = 92


def days_per_run() -> int:
    """CLOUDGLUE_DAYS_PER_RUN, at least 1, else 92."""
    return max(1, int(os.environ.get(DAYS_PER_RUN_ENV) or DEFAULT_DAYS_PER_RUN))


# Webhooks (pipeline/webhooks/, pipeline/defs/webhook_sensor.py). The receiver checks each
# delivery's X-Cloudglue-Webhook-Secret against CLOUDGLUE_WEBHOOK_SECRET (the secret Cloudglue
# gave the webhook when it was registered).
WEBHOOK_SECRET_ENV = "CLOUDGLUE_WEBHOOK_SECRET"
WEBHOOK_SECRET_HEADER = "X-Cloudglue-Webhook-Secret"
# Events `webhooks register` subscribes to: those that change a day's
# tables once a job is done (processing changes nothing the tables hold for long).
WEBHOOK_EVENTS = ("extract.job.completed", "extract.job.failed")
# A delivery's body is an event of a job's summary: bigger bodies are refused (413) unread.
WEBHOOK_MAX_BODY_BYTES = 256 * 1024
DEFAULT_WEBHOOK_HOST = "127.0.0.1"
DEFAULT_WEBHOOK_PORT = 8766
# The event sensor's interval: Dagster's default sensor interval unless set (read when the
# definitions load).
WEBHOOK_SENSOR_SECONDS_ENV = "CLOUDGLUE_WEBHOOK_SENSOR_SECONDS"
DEFAULT_WEBHOOK_SENSOR_SECONDS = 30
# CLOUDGLUE_WEBHOOKS=on says webhooks drive the runs: the polling sensor then only backs them
# up, once an hour instead of every 5 minutes (read when the definitions load).
WEBHOOKS_ENV = "CLOUDGLUE_WEBHOOKS"
POLL_SECONDS = 300
POLL_SECONDS_WITH_WEBHOOKS = 3600


def webhook_secret() -> str | None:
    """CLOUDGLUE_WEBHOOK_SECRET, None when unset or empty."""
    return os.environ.get(WEBHOOK_SECRET_ENV) or None


def webhook_sensor_seconds() -> int:
    """CLOUDGLUE_WEBHOOK_SENSOR_SECONDS, at least 1, else 30."""
    return max(1, int(os.environ.get(WEBHOOK_SENSOR_SECONDS_ENV) or DEFAULT_WEBHOOK_SENSOR_SECONDS))


def webhooks_on() -> bool:
    """Whether CLOUDGLUE_WEBHOOKS says webhooks drive the runs (on, true, 1, yes)."""
    return os.environ.get(WEBHOOKS_ENV, "").strip().lower() in ("on", "true", "1", "yes")


def poll_seconds() -> int:
    """The polling sensor's interval: hourly as a safety net when webhooks are on."""
    return POLL_SECONDS_WITH_WEBHOOKS if webhooks_on() else POLL_SECONDS
