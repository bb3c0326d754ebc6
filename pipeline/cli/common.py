"""What every command shares: today's date, DAGSTER_HOME set-up, the
writable-data-dir check, and the range of days a command may sync."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.resources
import logging
import os
import shlex
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

from pipeline import settings
from pipeline.cli.errors import CliError
from pipeline.cli.logs import say


def iso_day(text: str) -> dt.date:
    """A ``YYYY-MM-DD`` flag's value (argparse type)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


# Left in DAGSTER_HOME once its dagster.yaml and storage are set up.
INITIALIZED = ".cloudglue-initialized"


def say_if_new_in_working_dir(data_dir_flag: str | None) -> None:
    """Warn before a command creates DAGSTER_HOME or the data dir from their defaults, which are
    relative to the working directory: run from elsewhere (cron starts in $HOME), a command
    would otherwise silently start a second instance and data dir there. Paths set explicitly
    are the user's choice and pass in silence; so does every later run."""
    home = settings.dagster_home()
    if not os.environ.get(settings.DAGSTER_HOME_ENV) and not (home / INITIALIZED).exists():
        say(
            f"creating a new Dagster home {home} (DAGSTER_HOME is not set: ./.dagster_home of "
            "the working directory); set DAGSTER_HOME to an absolute path to use one instance "
            "from anywhere",
            logging.WARNING,
            dagster_home=str(home),
        )
    data_dir = settings.data_dir(data_dir_flag)
    given = data_dir_flag or os.environ.get(settings.DATA_DIR_ENV)
    if not given and isinstance(data_dir, Path) and not data_dir.exists():
        say(
            f"creating a new data dir {data_dir} (neither --data-dir nor {settings.DATA_DIR_ENV} "
            f"given: ./data of the working directory); pass an absolute path to use one data "
            "dir from anywhere",
            logging.WARNING,
            data_dir=str(data_dir),
        )


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to ./.dagster_home, created with the packaged dagster.yaml.

    Set in ``os.environ`` too, so in-process runs and ``dagster dev`` share one instance and the
    UI shows the CLI's runs.
    """
    home = settings.dagster_home()
    # Set first: the packaged dagster.yaml reads it (the event log's location).
    os.environ[settings.DAGSTER_HOME_ENV] = str(home)
    try:
        home.mkdir(parents=True, exist_ok=True)
        initialized = home / INITIALIZED
        if not initialized.exists():
            # Imported only here: pipeline.storage brings pyarrow and numpy, which sync_days
            # imports with the garbage collector paused (see cli.span_runs.long_lived_objects).
            from pipeline.storage.atomic import file_lock

            # Two commands starting together on a new home would both write dagster.yaml and
            # both create the instance's SQLite tables ("table runs already exists"): once, locked.
            with file_lock(home / ".cloudglue-init.lock"):
                _init_dagster_home(home, initialized)
    except OSError as exc:
        raise CliError(
            f"cannot set up DAGSTER_HOME {home}: {exc.strerror or exc}; "
            "set DAGSTER_HOME to a writable directory"
        ) from None
    return home


def _init_dagster_home(home: Path, marker: Path) -> None:
    """Write the packaged dagster.yaml (unless the user has one) and create the instance's
    storage, then leave ``marker``; the caller holds the home's init lock."""
    import dagster as dg

    from pipeline.storage.atomic import atomic_write_bytes

    if marker.exists():
        return
    config = home / "dagster.yaml"
    if not config.exists():
        packaged = importlib.resources.files("pipeline").joinpath("dagster.yaml")
        atomic_write_bytes(config, packaged.read_bytes(), home / ".tmp")

    with dg.DagsterInstance.from_config(str(home)):
        pass
    marker.touch()


def check_writable(data_dir: Path | str) -> None:
    """Fail before any network call to the API when the tables could not be written."""
    from pipeline.storage.store import open_store, redacted

    try:
        open_store(data_dir).check_writable()
    except OSError as exc:
        raise CliError(
            f"data dir {redacted(data_dir)} is not writable ({exc.strerror or exc}): "
            f"pass --data-dir or set {settings.DATA_DIR_ENV} to a writable directory or bucket"
        ) from None


def partition_start() -> dt.date:
    """The first day of the daily partitions (CLOUDGLUE_START_DATE, read by the definitions).

    A plain YYYY-MM-DD (what the definitions parse first) is read without importing Dagster, so
    a sync of unchanged days needs no Dagster at all; anything else is left to the definitions.
    """
    text = settings.start_date_text()
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        pass
    from pipeline.defs.partitions import daily_partitions

    try:
        return daily_partitions().start.date()
    except Exception:
        raise CliError(
            f"{settings.START_DATE_ENV}={text!r} is not a date: set it as YYYY-MM-DD",
            code=2,
        ) from None


def check_days(
    first: dt.date,
    last: dt.date,
    today: dt.date,
    start: dt.date,
    *,
    first_default: str | None = None,
) -> list[dt.date]:
    """The days ``first..last`` (inclusive), or a usage error saying how to fix the range.
    ``first_default``: the user gave no ``--from`` and ``first`` is the default, so described."""
    if start > today:
        # Checked first: the default --from derives from it, and no day could be synced.
        raise CliError(
            f"CLOUDGLUE_START_DATE={start} is in the future (today is {today} UTC): "
            f"set it to {today} or earlier",
            code=2,
        )
    if first > today:
        raise CliError(
            f"--from {first} is in the future (today is {today} UTC): pass a day up to {today}",
            code=2,
        )
    if last > today:
        raise CliError(
            f"--to {last} is in the future (today is {today} UTC): pass --to {today} or omit it",
            code=2,
        )
    if first > last and first_default:
        raise CliError(
            f"--to {last} is before the default --from {first} ({first_default}): "
            f"pass --from too, e.g. --from {last} --to {last}",
            code=2,
        )
    days = day_span(first, last)
    if first < start:
        raise CliError(
            f"--from {first} is before the first partition {start} (CLOUDGLUE_START_DATE): "
            f"pass --from {start} or later, or set CLOUDGLUE_START_DATE={first}",
            code=2,
        )
    return days


def day_span(first: dt.date, last: dt.date) -> list[dt.date]:
    """The days ``first..last`` (inclusive), or a usage error when they are swapped."""
    if first > last:
        raise CliError(f"--from {first} is after --to {last}: swap them", code=2)
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def given_flags(
    parser: argparse.ArgumentParser, args: argparse.Namespace, skip: Collection[str] = ()
) -> list[str]:
    """The options the user gave (those not at their default), as command-line words in the
    parser's order, except those whose ``dest`` is in ``skip``: what a command printed for the
    user to paste must keep, so that it writes where and calls what the first one did."""
    words: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in skip or action.dest == "help":
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:
            words.append(flag)
        else:
            for item in value if isinstance(value, list) else [value]:
                words += [flag, str(item)]
    return words


def command_line(words: Sequence[str]) -> str:
    """``cloudglue-pipeline`` with ``words``, quoted for a POSIX shell. The program is named as
    the user ran it when that was the installed script (``.venv/bin/cloudglue-pipeline`` pastes
    where ``cloudglue-pipeline`` is not on PATH)."""
    program = sys.argv[0] if Path(sys.argv[0]).name == "cloudglue-pipeline" else ""
    return shlex.join([program or "cloudglue-pipeline", *words])
