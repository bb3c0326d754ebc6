"""``cloudglue-pipeline emulator``: serve a synthetic Cloudglue API in the foreground."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from pipeline.emulator.faults import FAULT_HELP


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "emulator",
        help="serve a synthetic Cloudglue API in the foreground",
        description="Serve a deterministic synthetic Cloudglue API until interrupted.",
        epilog=FAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port, 0 for any free (default 8765)")
    p.add_argument("--jobs", type=int, default=200, help="number of extract jobs (default 200)")
    p.add_argument("--days", type=int, default=14, help="UTC days the jobs span (default 14)")
    p.add_argument("--seed", type=int, default=7, help="dataset seed (default 7)")
    p.add_argument(
        "--end-date",
        type=dt.date.fromisoformat,
        default=None,
        help="last day YYYY-MM-DD (default today, UTC)",
    )
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every response")
    p.add_argument("--fault", action="append", default=[], metavar="NAME=VALUE", help="see below")
    p.add_argument("--api-key", default="emulator-key", help="accepted bearer key")
    p.add_argument(
        "--mean-segments",
        type=float,
        default=None,
        help="mean segment entities per job (total is about jobs * mean)",
    )
    p.add_argument("--hostile", action="store_true", help="add jobs that break the spec")
    p.add_argument(
        "--complete-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="complete every pending or processing job over SECONDS after start, one at a time "
        "(webhooks registered at /v1/webhooks get the events)",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="INFO logs one line per request (default); WARNING keeps benchmarks quiet",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    """Why foreground: the demo and manual testing point a client at the printed URL."""
    from pipeline.emulator import Dataset, EmulatorServer, FaultConfig

    try:
        faults = FaultConfig.from_specs(args.fault)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.complete_after is not None and not args.complete_after > 0:
        print("error: --complete-after must be a number of seconds > 0", file=sys.stderr)
        return 2
    dataset = Dataset(
        seed=args.seed,
        jobs=args.jobs,
        days=args.days,
        end_date=args.end_date,
        mean_segments=args.mean_segments,
        hostile=args.hostile,
    )
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    server = EmulatorServer(
        dataset,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        faults=faults,
        latency_ms=args.latency_ms,
        complete_after=args.complete_after,
    )
    print(server.base_url, flush=True)
    try:
        server.start()
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
