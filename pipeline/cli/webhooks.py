"""``cloudglue-pipeline webhooks``: receive Cloudglue's webhook events (``serve``) and manage the
account's webhook for them (``register``, ``list``, ``delete``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pipeline import settings
from pipeline.cli.api_options import ApiOptions, add_base_url_flag, check_api_config, client_for
from pipeline.cli.common import check_writable
from pipeline.cli.errors import CliError

if TYPE_CHECKING:
    from pipeline.cloudglue.client import CloudglueClient

T = TypeVar("T")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "webhooks",
        help="receive Cloudglue webhook events and manage the webhook",
        description=(
            "Cloudglue POSTs an event to a registered webhook when an extract job completes or "
            "fails; `serve` logs each event in the data dir, where the Dagster sensor "
            "`webhook_events_sensor` turns them into runs of the jobs' days."
        ),
    )
    commands = p.add_subparsers(dest="webhooks_command", required=True)

    serve = commands.add_parser(
        "serve",
        help="receive events into the data dir until interrupted",
        description=(
            f"Receive webhook deliveries, check {settings.WEBHOOK_SECRET_HEADER} against "
            f"{settings.WEBHOOK_SECRET_ENV} and log each event once in the data dir."
        ),
    )
    serve.add_argument(
        "--host",
        default=settings.DEFAULT_WEBHOOK_HOST,
        help=f"bind address (default {settings.DEFAULT_WEBHOOK_HOST})",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=settings.DEFAULT_WEBHOOK_PORT,
        help=f"port, 0 for any free (default {settings.DEFAULT_WEBHOOK_PORT})",
    )
    serve.add_argument(
        "--data-dir", metavar="DIR", help=f"where events are logged ({settings.DATA_DIR_ENV})"
    )
    serve.set_defaults(func=_serve)

    register = commands.add_parser(
        "register",
        help="create or update the webhook that delivers extract events to URL",
        description=(
            f"Create the webhook for {', '.join(settings.WEBHOOK_EVENTS)} delivering to URL, or "
            "update (and re-activate) the one already delivering there; prints its id."
        ),
    )
    register.add_argument("--url", required=True, help="the public URL of `webhooks serve`")
    register.add_argument(
        "--secret-file",
        metavar="PATH",
        help=f"write the webhook's secret there (mode 600), for {settings.WEBHOOK_SECRET_ENV}",
    )
    register.set_defaults(func=_register)

    listing = commands.add_parser("list", help="list the account's webhooks (no secrets)")
    listing.set_defaults(func=_list)

    delete = commands.add_parser("delete", help="delete a webhook by id")
    delete.add_argument("webhook_id", metavar="ID")
    delete.set_defaults(func=_delete)

    for command in (register, listing, delete):
        add_base_url_flag(command)


def _serve(args: argparse.Namespace) -> int:
    from pipeline.webhooks import WebhookReceiver

    secret = settings.webhook_secret()
    if secret is None:
        raise CliError(
            f"{settings.WEBHOOK_SECRET_ENV} is not set: export it as the secret "
            "`cloudglue-pipeline webhooks register --secret-file PATH` saved"
        )
    data_dir = settings.data_dir(args.data_dir)
    check_writable(data_dir)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        receiver = WebhookReceiver(data_dir, secret, host=args.host, port=args.port)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    from pipeline.storage.store import redacted

    print(f"receiving webhook events at {receiver.url} into {redacted(data_dir)}", flush=True)
    try:
        receiver.start()
        receiver.wait()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


def _api_call(args: argparse.Namespace, call: Callable[[CloudglueClient], T]) -> T:
    """``call`` with a client configured from the environment and ``--base-url``; an API error
    becomes the command's one-line error."""
    from pipeline.cloudglue.errors import CloudglueError

    options = ApiOptions(base_url=args.base_url, max_retries=2)
    check_api_config(options)
    try:
        with client_for(options) as client:
            return call(client)
    except CloudglueError as exc:
        raise CliError(str(exc)) from None


def _register(args: argparse.Namespace) -> int:
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"--url {args.url!r} is not an http(s) URL", code=2)

    def register(client: CloudglueClient) -> dict[str, Any]:
        for hook in client.list_webhooks():
            if hook.get("endpoint") == args.url:
                return client.update_webhook(
                    hook["id"], subscribed_events=list(settings.WEBHOOK_EVENTS), active=True
                )
        return client.create_webhook(args.url, settings.WEBHOOK_EVENTS, "cloudglue-pipeline")

    hook = _api_call(args, register)
    print(hook["id"])
    if args.secret_file:
        _write_secret(args.secret_file, hook["webhook_secret"])
        print(f"secret written to {args.secret_file}", file=sys.stderr)
    else:
        print(
            f"the webhook's secret is not shown: pass --secret-file PATH to save it, then "
            f"export {settings.WEBHOOK_SECRET_ENV}=$(cat PATH) for `webhooks serve`",
            file=sys.stderr,
        )
    return 0


def _write_secret(path: str, secret: str) -> None:
    """Write the secret readable by its owner only (created so; an existing file is replaced)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    except OSError as exc:
        raise CliError(f"cannot write --secret-file {path}: {exc.strerror or exc}") from None


def _list(args: argparse.Namespace) -> int:
    from pipeline.cli.query import format_rows

    hooks = _api_call(args, lambda client: client.list_webhooks())
    rows = [
        (h.get("id"), h.get("active"), h.get("endpoint"), ",".join(h.get("subscribed_events", [])))
        for h in hooks
    ]
    print(format_rows(["id", "active", "endpoint", "events"], rows, "table"), end="")
    return 0


def _delete(args: argparse.Namespace) -> int:
    deleted = _api_call(args, lambda client: client.delete_webhook(args.webhook_id))
    print(f"deleted {deleted.get('id', args.webhook_id)}")
    return 0
