"""The pooled SQLite event log answers Dagster's schema questions as its parent does."""

import sqlite3
from pathlib import Path

from pipeline.defs.event_log import PooledSqliteEventLogStorage


def test_has_table_remembers_only_tables_that_exist(tmp_path: Path):
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    try:
        assert storage.has_table("asset_check_executions")
        assert storage.has_table("asset_check_executions")
        assert not storage.has_table("added_later")
        # A table a later migration adds is seen: a missing one is not remembered as missing.
        index = tmp_path / "history" / "runs" / "index.db"
        with sqlite3.connect(index) as conn:
            conn.execute("CREATE TABLE added_later (id INTEGER)")
        assert storage.has_table("added_later")
        assert storage.has_asset_key_col("last_materialization_timestamp")
        assert not storage.has_asset_key_col("no_such_column")
    finally:
        storage.dispose()
