"""Where everything lives under a data dir (paths only, no I/O beyond listing).

```
<data_dir>/tables/<table>/created_date=YYYY-MM-DD/part-NNNNN.parquet   what readers glob
  (part-SS-NNNNN.parquet when shard SS of a parallel build wrote it)
<data_dir>/tables/<table>/created_date=YYYY-MM-DD/_build.json          input fingerprint, counts
<data_dir>/tables/<table>/_schema.json                                 column kinds and names
<data_dir>/.staging/<uuid>/...                                         partitions being written
<data_dir>/.locks/*.lock                                               fcntl locks
<data_dir>/.cache/checks/created_date=YYYY-MM-DD.json                  cached check outcomes
```
Staging and locks sit outside ``tables/`` so a reader's ``tables/<table>/**/*.parquet`` glob never
sees a half-written file.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

PARTITION_KEY = "created_date"


def as_date(day: dt.date | str) -> dt.date:
    """A partition day from a date or ``YYYY-MM-DD`` text."""
    if isinstance(day, dt.datetime):
        return day.date()
    if isinstance(day, dt.date):
        return day
    return dt.date.fromisoformat(day)


def table_dir(data_dir: str | os.PathLike[str], table: str) -> Path:
    return Path(data_dir) / "tables" / table


def partition_dir(data_dir: str | os.PathLike[str], table: str, day: dt.date) -> Path:
    return table_dir(data_dir, table) / f"{PARTITION_KEY}={day.isoformat()}"


def schema_path(data_dir: str | os.PathLike[str], table: str) -> Path:
    return table_dir(data_dir, table) / "_schema.json"


def staging_root(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / ".staging"


def locks_dir(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / ".locks"


def day_lock_path(data_dir: str | os.PathLike[str], day: dt.date) -> Path:
    return locks_dir(data_dir) / f"day-{day.isoformat()}.lock"


def schema_lock_path(data_dir: str | os.PathLike[str], table: str) -> Path:
    return locks_dir(data_dir) / f"schema-{table}.lock"


def partitions(data_dir: str | os.PathLike[str], table: str) -> list[tuple[dt.date, Path]]:
    """The table's partitions, oldest first (directories that do not parse are ignored)."""
    root = table_dir(data_dir, table)
    if not root.is_dir():
        return []
    out = []
    prefix = PARTITION_KEY + "="
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.startswith(prefix):
            try:
                out.append((dt.date.fromisoformat(entry.name[len(prefix) :]), entry))
            except ValueError:
                continue
    return sorted(out)
