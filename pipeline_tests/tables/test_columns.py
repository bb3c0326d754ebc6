"""The column catalogue describes every fixed column, and the README lists the same columns."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from pipeline.tables import FIXED_COLUMNS, TABLE_NAMES
from pipeline.tables.columns import COLUMN_DESCRIPTIONS, column_description

README = Path(__file__).resolve().parents[2] / "README.md"


def _without_parentheses(text: str) -> str:
    """``text`` with every (possibly nested) parenthesised part removed."""
    out, depth = [], 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


def readme_columns() -> dict[str, list[str]]:
    """Per table, the backticked column names of its paragraph in the README's Output section
    (values and notes in parentheses, and ``entities__*``, left out)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Output") : text.index("Naming rules:")]
    paragraphs = re.split(r"\n(?=\*\*\w+\*\*:)", section)
    columns = {}
    for paragraph in paragraphs:
        match = re.match(r"\*\*(\w+)\*\*:", paragraph)
        if match:
            names = re.findall(r"`([a-z_]+)`", _without_parentheses(paragraph))
            columns[match.group(1)] = list(dict.fromkeys(names))
    return columns


def test_every_fixed_column_has_a_description_in_table_order():
    assert {t: list(cols) for t, cols in COLUMN_DESCRIPTIONS.items()} == {
        t: [name for name, _ in cols] for t, cols in FIXED_COLUMNS.items()
    }
    assert all(d.strip() for cols in COLUMN_DESCRIPTIONS.values() for d in cols.values())


def test_the_readme_lists_the_catalogue_columns():
    documented = readme_columns()
    assert set(documented) == set(TABLE_NAMES)
    for table in TABLE_NAMES:
        assert documented[table] == list(COLUMN_DESCRIPTIONS[table]), table


def test_flattened_and_variant_columns_describe_their_json_path():
    flattened = pa.field(
        "entities__scene__location", pa.string(), metadata={"json_path": "entities.scene.location"}
    )
    variant = pa.field(
        "entities__count__v_text",
        pa.string(),
        metadata={b"json_path": b"entities.count", b"variant_of": b"entities__count"},
    )
    assert column_description("segment_entities", flattened) == (
        "JSON path: entities.scene.location"
    )
    assert column_description("segment_entities", variant) == (
        "Values of entities__count that do not fit its type. JSON path: entities.count"
    )
    assert column_description("chapters", pa.field("description", pa.string())) == (
        "The chapter's description."
    )
