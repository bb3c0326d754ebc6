"""What a day's checks read (its landing and checked partitions' files, listed once) and the
outcomes kept for it under ``.cache/checks/``, valid while a digest of those inputs holds."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.quality.registry import CHECKED_TABLES, CheckOutcome
from pipeline.storage.layout import check_cache_key, is_parquet, partition_prefix
from pipeline.storage.raw import Listing, RawStore
from pipeline.storage.store import FileInfo

if TYPE_CHECKING:
    from pipeline.storage.results import DayWriteResult

# Bumped whenever the outcomes computed from the same inputs change.
_CACHE_VERSION = "3"


@dataclass(frozen=True)
class DayInputs:
    """What a day's checks read, listed once: its landing and its checked partitions' files."""

    listing: Listing | None
    landed: dict[str, FileInfo]
    parts: dict[str, dict[str, FileInfo]]

    def cache_key(self, store: RawStore, day: dt.date) -> str:
        """A digest of every input of the checks: the landing (listing and job files) and each
        checked partition's files (name, size, version)."""
        fingerprint = store.fingerprint(day, self.listing, self.landed)
        digest = hashlib.sha256(f"{_CACHE_VERSION}:{fingerprint}".encode())
        for table in CHECKED_TABLES:
            for name, info in sorted(self.parts[table].items()):
                digest.update(f"\n{table}/{name} {info.size} {info.version}".encode())
        return digest.hexdigest()


def list_inputs(store: RawStore, day: dt.date) -> DayInputs:
    parts = {
        table: {
            name: info
            for name, info in store.store.list_files(partition_prefix(table, day)).items()
            if is_parquet(name)
        }
        for table in CHECKED_TABLES
    }
    return DayInputs(store.read_listing(day), store.landed(day), parts)


def known_inputs(result: DayWriteResult | None) -> DayInputs | None:
    """A day's inputs as the result of its build (or of finding it built) knew them."""
    if result is None or result.source is None:
        return None
    parts = {table: result.tables[table].live_files for table in CHECKED_TABLES}
    if any(files is None for files in parts.values()):
        return None
    listing, landed = result.source
    return DayInputs(listing, landed, parts)  # type: ignore[arg-type]


def kept_outcomes(store: RawStore, day: dt.date, key: str) -> list[CheckOutcome] | None:
    """The outcomes kept for ``day`` if they were computed from inputs with digest ``key``."""
    try:
        body = json.loads(store.store.read_bytes(check_cache_key(day)))
        if body.get("key") == key:
            return [CheckOutcome(**o) for o in body["outcomes"]]
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    return None


def keep_outcomes(store: RawStore, day: dt.date, key: str, outcomes: list[CheckOutcome]) -> None:
    body = {"key": key, "outcomes": [dataclasses.asdict(o) for o in outcomes]}
    store.store.write_bytes(check_cache_key(day), json.dumps(body).encode())
