"""Dagster resources: the Cloudglue API and the data directory.

Configuration is read when a run starts (not when the code location loads), so the same
definitions serve the demo's emulator, tests and the real API by environment alone.
"""

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from pipeline.cloudglue.client import CloudglueClient
from pipeline.defs.settings import CLIENT_DEFAULTS


class CloudglueResource(dg.ConfigurableResource):
    """A Cloudglue client per run: pooled HTTP session, retries, bounded concurrency."""

    api_key: str = Field(description="Cloudglue API key; set CLOUDGLUE_API_KEY.")
    base_url: str | None = Field(
        default=CLIENT_DEFAULTS["base_url"],
        description="API base URL; defaults to CLOUDGLUE_BASE_URL, else the public API.",
    )
    timeout_seconds: float = Field(
        default=CLIENT_DEFAULTS["timeout_seconds"], description="Per-request timeout."
    )
    max_retries: int = Field(
        default=CLIENT_DEFAULTS["max_retries"], description="Attempts per request after the first."
    )
    max_concurrency: int = Field(
        default=CLIENT_DEFAULTS["max_concurrency"], description="HTTP requests in flight at most."
    )
    max_requests_per_second: float | None = Field(
        default=CLIENT_DEFAULTS["max_requests_per_second"],
        description="Optional cap on the request rate.",
    )
    backoff_seconds: float = Field(
        default=CLIENT_DEFAULTS["backoff_seconds"],
        description="First retry's backoff ceiling, doubled per retry (jittered; tests shrink it).",
    )

    def get_client(self) -> CloudglueClient:
        return CloudglueClient(
            api_key=self.api_key,
            base_url=self.base_url or os.environ.get("CLOUDGLUE_BASE_URL") or None,
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
            max_concurrency=self.max_concurrency,
            max_requests_per_second=self.max_requests_per_second,
            backoff_base=self.backoff_seconds,
        )


class DataDirResource(dg.ConfigurableResource):
    """Where the raw landing and the Parquet tables live."""

    path: str | None = Field(
        default=None, description="Data directory; defaults to CLOUDGLUE_DATA_DIR, else ./data."
    )

    @property
    def root(self) -> Path:
        return Path(self.path or os.environ.get("CLOUDGLUE_DATA_DIR") or "data").absolute()
