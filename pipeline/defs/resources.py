"""Dagster resources: the Cloudglue API and the data directory.

Configuration is read when a run starts (not when the code location loads), so the same
definitions serve the demo's emulator, tests and the real API by environment alone.
"""

import dagster as dg
from pydantic import Field

from pipeline.cloudglue.client import CloudglueClient
from pipeline.settings import API_KEY_ENV, BASE_URL_ENV, CLIENT_DEFAULTS, DATA_DIR_ENV, data_dir
from pipeline.storage.store import Store, open_store


class CloudglueResource(dg.ConfigurableResource):
    """A Cloudglue client per run: pooled HTTP session, retries, bounded concurrency."""

    api_key: str = Field(description=f"Cloudglue API key; set {API_KEY_ENV}.")
    base_url: str | None = Field(
        default=CLIENT_DEFAULTS["base_url"],
        description=f"API base URL; defaults to {BASE_URL_ENV}, else the public API.",
    )
    base_url_source: str = Field(
        default=CLIENT_DEFAULTS["base_url_source"],
        description="Where base_url was set, as errors name it (the CLI's is --base-url).",
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
            base_url=self.base_url or None,
            base_url_source=self.base_url_source,
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
            max_concurrency=self.max_concurrency,
            max_requests_per_second=self.max_requests_per_second,
            backoff_base=self.backoff_seconds,
        )


class DataDirResource(dg.ConfigurableResource):
    """Where the raw landing and the Parquet tables live: a directory or s3://bucket/prefix."""

    path: str | None = Field(
        default=None,
        description=(
            f"Data dir: a directory or s3://bucket/prefix (AWS credentials from the environment);"
            f" defaults to {DATA_DIR_ENV}, else ./data."
        ),
    )

    @property
    def root(self) -> Store:
        return open_store(data_dir(self.path))
