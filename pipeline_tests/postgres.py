"""A throwaway PostgreSQL server for tests: ``initdb`` in a temp dir, ``postgres`` on a free
loopback port (its unix socket in the same dir), one database, stopped and deleted at the end.

Debian's ``postgresql`` package puts ``initdb``/``pg_ctl`` in ``/usr/lib/postgresql/<N>/bin``
(not on PATH); ``.ci/run`` installs it on a clean machine. PostgreSQL refuses to run as root:
as root the server runs as the ``postgres`` user the package creates (``runuser``), in a temp
dir owned by that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries on this machine (or no user to run them as root)."""


def find_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``: PATH, else the newest
    ``/usr/lib/postgresql/<N>/bin``."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if versions:
        return Path(versions[-1]).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): "
        "apt-get install postgresql (.ci/run does it)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Postgres:
    """A running server: where to connect, and the env vars ``deploy/dagster.yaml`` reads."""

    host: str
    port: int
    user: str
    password: str
    db: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.db}"

    def env(self) -> dict[str, str]:
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db,
        }


def _as_service_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", SERVICE_USER, "--", *cmd]


@contextlib.contextmanager
def running_postgres(db: str = "dagster") -> Iterator[Postgres]:
    """Start a fresh server for the block; its data dir is deleted afterwards."""
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="pg-test-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable(f"running as root and no {SERVICE_USER!r} user") from None
        os.chown(root, account.pw_uid, account.pw_gid)
    data, log = root / "data", root / "server.log"
    user, password = "dagster", "pg-test-" + os.urandom(6).hex()
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    run = {"check": True, "capture_output": True, "text": True, "cwd": root}
    try:
        subprocess.run(
            _as_service_user(
                [str(bindir / "initdb"), "-D", str(data), "-U", user, "--pwfile", str(pwfile),
                 "-A", "scram-sha-256", "-E", "UTF8", "--no-sync", "--locale", "C"]
            ),
            **run,
        )
        pwfile.unlink()
        port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            _as_service_user(
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                 "-w", "-t", "60", "start"]
            ),
            **run,
        )
    except subprocess.CalledProcessError as exc:
        text = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}{exc.stdout}\n{text}") from exc
    try:
        env = {**os.environ, "PGPASSWORD": password}
        createdb = bindir / "createdb"
        command = [str(createdb), "-h", "127.0.0.1", "-p", str(port), "-U", user, db]
        for attempt in range(20):
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode == 0:
                break
            if attempt == 19:
                raise RuntimeError(f"createdb failed: {done.stderr}")
            time.sleep(0.25)
        yield Postgres("127.0.0.1", port, user, password, db)
    finally:
        subprocess.run(
            _as_service_user(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            ),
            capture_output=True,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)
