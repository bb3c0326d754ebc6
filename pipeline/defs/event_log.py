"""Dagster's SQLite event log, keeping its connections open between events.

``SqliteEventLogStorage`` creates an engine, opens a connection and disposes of both for every
stored event: with SQLAlchemy's compiled-statement cache lost each time and a WAL checkpoint at
every last close, each event costs milliseconds (bench/README.md), and a ranged run records
thirteen events per day (a materialization per asset, an evaluation per check). This subclass
keeps one engine (one connection) per database file for the process, a few at most, with
``synchronous=NORMAL`` (the databases are in WAL mode: a commit is not synced, and a power loss
may lose the last events but never corrupts the file). It is what the packaged ``dagster.yaml``
configures for the CLI's and ``dagster dev``'s instance. Storage on PostgreSQL (production)
does not need it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._config import StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

# Database files whose connection stays open: the index and the runs being written or read.
OPEN_DATABASES = 8


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """The SQLite event log under ``<dagster_home>/history/runs`` (Dagster's own layout), with
    each database's connection kept open and reused (access stays serialized by the lock the
    parent class holds around every connection)."""

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables: set[str] = set()
        self._asset_key_columns: set[str] = set()
        super().__init__(os.path.join(dagster_home, "history", "runs", ""), inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=StaticPool,
                    connect_args={
                        "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                        "check_same_thread": False,
                    },
                )
                event.listen(engine, "connect", _unsynced_commits)
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                self._engines[shard] = engine
                while len(self._engines) > OPEN_DATABASES:
                    self._engines.popitem(last=False)[1].dispose()
            else:
                self._engines.move_to_end(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Remembered once true: Dagster asks before every asset check event, and the parent
        opens a new engine for each answer; a table a migration added stays."""
        if table_name in self._tables:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables.add(table_name)
        return found

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        """Remembered once true, like ``has_table``: asked before every asset event."""
        if column_name in self._asset_key_columns:
            return True
        found = super()._has_asset_key_col_on_connection(conn, column_name)
        if found:
            self._asset_key_columns.add(column_name)
        return found

    def dispose(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()
        super().dispose()


def _unsynced_commits(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
