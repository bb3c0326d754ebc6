"""Column names of the flattened tables (dlt's convention): snake_cased keys joined with ``__``,
SQL-safe, at most :data:`MAX_NAME_LENGTH` characters (longer ones end in a hash of the path)."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from pipeline.tables.paths import path_string

MAX_NAME_LENGTH = 120

_SNAKE: dict[str, str] = {}
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def snake_case(key: str) -> str:
    """A SQL-safe snake_case identifier for one key (ASCII, no ``__`` inside, not empty)."""
    name = _SNAKE.get(key)
    if name is None:
        ascii_key = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode()
        name = _NON_WORD.sub("_", _CAMEL.sub(r"\1_\2", ascii_key).lower()).strip("_")
        if not name:
            name = "k_" + short_hash(key)
        elif name[0].isdigit():
            name = "_" + name
        if len(_SNAKE) < 100_000:
            _SNAKE[key] = name
    return name


def column_name(parts: tuple[str, ...]) -> str:
    """The flattened column name of a key path: snake_cased keys joined with ``__``."""
    name = "__".join(snake_case(p) for p in parts)
    if len(name) > MAX_NAME_LENGTH:
        name = name[: MAX_NAME_LENGTH - 9] + "_" + short_hash(path_string(parts))
    return name
