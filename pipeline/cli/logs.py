"""Where a command's messages go: ``--log-level``/``--verbose`` and ``--log-format text|json``.

Every message of a command (progress, each day, errors, the re-run command) and every record of
the ``pipeline`` loggers (the client's retries, bucket leases) and, with ``--verbose``, of the
Dagster run log, goes to stderr: as text for a person (the default, what the CLI always
printed) or one JSON object per line for cron and systemd's journal (``--log-format json``:
``time``, ``level``, ``logger``, ``message`` and the record's own fields, e.g. ``day``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import logging
import sys
from typing import Any

from pipeline.progress import DaySummary, ProgressReporter, day_line, day_state

# The CLI's own messages; "pipeline.*" is the library's, "dagster.run" each run's event log.
CLI_LOGGER = "pipeline.cli"
RUN_LOGGER = "dagster.run"
LEVELS = ("debug", "info", "warning", "error")


def add_log_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-level",
        choices=LEVELS,
        default="warning",
        help="least severe log record shown on stderr (default warning: retries past the "
        "first, skipped jobs, errors); info adds each retry and the Dagster run log",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="the same as --log-level info")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: every stderr line is one JSON object (for cron and systemd), and the "
        "summary is logged per day instead of printed as a table",
    )


def configure_logging(args: argparse.Namespace) -> None:
    """Send the records of the ``pipeline`` and ``dagster.run`` loggers at the chosen level
    to stderr, formatted as ``--log-format`` says."""
    level = logging.INFO if args.verbose and args.log_level == "warning" else args.log_level
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if args.log_format == "json" else TextFormatter())
    for name in ("pipeline", RUN_LOGGER):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper() if isinstance(level, str) else level)
        logger.propagate = False
    # The CLI's own lines (progress, summaries, errors) are shown whatever the level.
    logging.getLogger(CLI_LOGGER).setLevel(logging.DEBUG)


def json_logs() -> bool:
    """Whether ``--log-format json`` was chosen: the CLI then logs what it would print."""
    return any(
        isinstance(h.formatter, JsonFormatter) for h in logging.getLogger("pipeline").handlers
    )


def say(message: str, level: int = logging.INFO, **fields: Any) -> None:
    """One line of the CLI for the user, on stderr: as it is in text, a record in JSON. Before
    ``configure_logging`` (``sync_days`` called from Python), printed as text."""
    logger = logging.getLogger(CLI_LOGGER)
    record = logger.makeRecord(
        CLI_LOGGER, level, "", 0, message, (), None, extra={"fields": fields}
    )
    if logging.getLogger("pipeline").handlers:
        logger.handle(record)
    else:
        print(TextFormatter().format(record), file=sys.stderr, flush=True)


class LogProgress(ProgressReporter):
    """A sync's progress as log records (``--log-format json``): the reporter's status every
    ``interval`` seconds and a record per finished day, with the day's numbers as fields."""

    def __init__(self, interval: float = 5.0) -> None:
        super().__init__(io.StringIO(), live=False, interval=interval)

    def _emit(self, *, force: bool = False) -> None:  # the caller holds the lock
        now = self.clock()
        if now - self._last_print >= self.interval:
            say(self._status())
            self._last_print = now

    def finish_day(self, summary: DaySummary) -> None:
        with self._lock:
            self._days_done += 1
            self._last_print = self.clock()
        say(
            day_line(summary),
            logging.INFO if summary.ok else logging.ERROR,
            day=str(summary.day),
            state=day_state(summary),
            jobs_listed=summary.listed,
            jobs_by_status=summary.by_status,
            jobs_fetched=summary.fetched,
            jobs_landed_before=summary.already_landed,
            segment_entities=summary.segment_rows,
            seconds=round(summary.seconds, 3),
            failed_checks=summary.failed_checks,
            skipped_jobs=summary.skipped_jobs,
        )


class TextFormatter(logging.Formatter):
    """The CLI's lines as they are (``error: ``/``warning: `` before those levels); a library
    record as ``time LEVEL logger: message``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == CLI_LOGGER:
            if record.levelno >= logging.ERROR:
                return f"error: {message}"
            return f"warning: {message}" if record.levelno >= logging.WARNING else message
        when = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%H:%M:%S")
        return f"{when} {record.levelname} {record.name}: {message}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
