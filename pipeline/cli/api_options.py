"""The flags that configure the Cloudglue client (``--base-url``, ``--concurrency``, ...) and the
checks of that configuration made before any network call."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline import settings
from pipeline.cli.errors import CliError

if TYPE_CHECKING:
    from pipeline.cloudglue.client import CloudglueClient

BASE_URL_FLAG = "--base-url"


def _positive_number(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value

    return parse


def _retries(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


@dataclass
class ApiOptions:
    """The flags that configure CloudglueResource; None keeps the resource's default."""

    base_url: str | None = None
    max_concurrency: int | None = None
    timeout_seconds: float | None = None
    max_retries: int | None = None
    max_requests_per_second: float | None = None
    backoff_seconds: float | None = None

    def resource_kwargs(self) -> dict[str, Any]:
        """The fields set, and where the base URL came from (so errors name the flag)."""
        kwargs = {k: v for k, v in vars(self).items() if v is not None}
        if self.base_url is not None:
            kwargs["base_url_source"] = BASE_URL_FLAG
        return kwargs


def client_for(options: ApiOptions) -> CloudglueClient:
    """A client configured as the runs' CloudglueResource is; the key from the environment."""
    from pipeline.cloudglue.client import CloudglueClient

    values = {**settings.CLIENT_DEFAULTS, **options.resource_kwargs()}
    return CloudglueClient(
        base_url=values["base_url"],
        base_url_source=values["base_url_source"],
        timeout=values["timeout_seconds"],
        max_retries=values["max_retries"],
        max_concurrency=values["max_concurrency"],
        max_requests_per_second=values["max_requests_per_second"],
        backoff_base=values["backoff_seconds"],
    )


def check_api_config(options: ApiOptions) -> None:
    """Key present and well-formed, base URL and limits valid: all without a network call."""
    from pipeline.cloudglue.errors import ConfigError

    key_env = settings.API_KEY_ENV
    if not os.environ.get(key_env, "").strip():
        raise CliError(
            f"{key_env} is not set: export {key_env}=<your Cloudglue API key> "
            "(`cloudglue-pipeline demo` needs none)"
        )
    try:
        client_for(options).close()
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def add_base_url_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        BASE_URL_FLAG,
        metavar="URL",
        help=f"API base URL ({settings.BASE_URL_ENV}, else {settings.DEFAULT_BASE_URL})",
    )


def add_api_flags(p: argparse.ArgumentParser) -> None:
    add_base_url_flag(p)
    p.add_argument(
        "--concurrency",
        type=_positive_number(int),
        metavar="N",
        help=f"HTTP requests in flight at most (default {settings.DEFAULT_MAX_CONCURRENCY})",
    )
    p.add_argument(
        "--timeout",
        type=_positive_number(float),
        metavar="SECONDS",
        help=f"seconds per request (default {settings.DEFAULT_TIMEOUT_SECONDS:g})",
    )
    p.add_argument(
        "--max-retries",
        type=_retries,
        metavar="N",
        help=f"retries per request after the first (default {settings.DEFAULT_MAX_RETRIES})",
    )
    p.add_argument(
        "--max-rps",
        type=_positive_number(float),
        metavar="RPS",
        help="cap on requests per second (default: no cap)",
    )


def api_options(args: argparse.Namespace) -> ApiOptions:
    return ApiOptions(
        base_url=args.base_url,
        max_concurrency=args.concurrency,
        timeout_seconds=args.timeout,
        max_retries=args.max_retries,
        max_requests_per_second=args.max_rps,
    )
