"""Defaults of the Cloudglue client settings, importable without Dagster.

:class:`pipeline.defs.resources.CloudglueResource` declares its fields with these defaults, and the
CLI builds its probe client from them before (or without) importing Dagster.
"""

from typing import Any

CLIENT_DEFAULTS: dict[str, Any] = {
    "base_url": None,
    "timeout_seconds": 30.0,
    "max_retries": 6,
    "max_concurrency": 16,
    "max_requests_per_second": None,
    "backoff_seconds": 0.5,
}
