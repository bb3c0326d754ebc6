"""``cloudglue-pipeline dev``: ``dagster dev`` on the DAGSTER_HOME instance the CLI's runs use."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.cli.common import ensure_dagster_home
from pipeline.cli.errors import CliError

_REPO_ROOT = Path(__file__).resolve().parents[2]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dev",
        help="run the Dagster UI and daemon (`dagster dev`) on DAGSTER_HOME",
        description=(
            "Run `dagster dev -w workspace.yaml` with DAGSTER_HOME defaulting to ./.dagster_home "
            "(the instance `sync` and `demo` use). Arguments after `--` go to `dagster dev`."
        ),
    )
    p.add_argument("dagster_args", nargs=argparse.REMAINDER, help="e.g. -- --port 3001")
    p.set_defaults(func=_run)


def dev_command(extra: Sequence[str] = ()) -> list[str]:
    """The ``dagster dev`` command line: the repo's workspace.yaml (cwd first), else the module."""
    dagster = Path(sys.executable).with_name("dagster")
    exe = str(dagster) if dagster.exists() else shutil.which("dagster") or "dagster"
    for candidate in (Path.cwd() / "workspace.yaml", _REPO_ROOT / "workspace.yaml"):
        if candidate.is_file():
            target = ["-w", str(candidate)]
            break
    else:
        target = ["-m", "pipeline.definitions"]
    extra = list(extra)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return [exe, "dev", *target, *extra]


def _run(args: argparse.Namespace) -> int:
    home = ensure_dagster_home()
    command = dev_command(args.dagster_args)
    print(f"DAGSTER_HOME={home}\n$ {' '.join(command)}", file=sys.stderr, flush=True)
    try:
        os.execv(command[0], command)
    except OSError as exc:
        raise CliError(
            f"cannot run {command[0]} ({exc.strerror or exc}): reinstall with `make dev`"
        ) from None
