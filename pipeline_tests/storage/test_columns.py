"""Readers take every column from ``_schema.json``: any subset of a table's days reads with the
same columns and types as all of them (``query``'s views, ``read_table``, the README's recipe for
pyarrow and polars), on disk and in a bucket; and a data dir written before a column was added
to a table still reads, and is completed by its next build."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline
from pipeline.cli import connect
from pipeline.storage import write_day
from pipeline.storage.layout import PARTITION_KEY, partition_prefix
from pipeline.storage.raw import RawStore
from pipeline.storage.store import open_store
from pipeline.sync import build_day
from pipeline.tables import TABLE_NAMES
from pipeline.tables.schema import DUCKDB_TYPES, KIND_TYPES, PARTITION_COLUMN
from pipeline_tests.cli.test_readme import _examples
from pipeline_tests.tables.jobs import DAY1_MS, completed_job, segment

DAYS = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(4)]
FETCHED = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
KITCHEN = "SELECT count(*) FROM segment_entities WHERE entities__scene__location = 'kitchen'"


def _jobs(index: int) -> list[dict]:
    """Each day's jobs bring columns no other day has; the third day is quiet."""
    created_at = DAY1_MS + index * 86_400_000
    entities = [
        [segment(0, 1, {"scene": {"location": "kitchen"}, "n": 1})],
        [segment(0, 2, {"people": ["Ana"], "n": "two"})],
        None,
        [segment(1, 3, {"n": 3}, segment_id="s-1")],
    ][index]
    if entities is None:
        return []
    extra = {"video_entities": {"brand": "X"}} if index == 1 else {}
    return [completed_job(f"job-{index}", entities, created_at=created_at, **extra)]


def _columns(data_dir: str) -> dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]]:
    """Per table: ``read_table``'s columns with their dtypes, and the view's with their types."""
    con = connect(data_dir)
    return {
        table: (
            [(c, str(t)) for c, t in pipeline.read_table(table, data_dir).dtypes.items()],
            [(r[0], r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall()],
        )
        for table in TABLE_NAMES
    }


def _readme_recipe(data_dir: str) -> dict[str, object]:
    """The README's pyarrow/polars recipe run on ``data_dir``: its globals."""
    (recipe,) = [code for code in _examples("python") if "_schema.json" in code]
    scope: dict[str, object] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(recipe.replace('"data/demo/', f'"{data_dir}/'), scope)
    return scope


@pytest.fixture(params=["local", "bucket"])
def new_data_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes a fresh data dir name per call: a directory, then an ``s3://`` prefix."""
    if request.param == "local":
        names = (str(tmp_path / str(n)) for n in range(10**6))
        return lambda: next(names)
    request.getfixturevalue("s3_env")
    return request.getfixturevalue("object_store").fresh_prefix


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kept=st.sets(st.sampled_from(range(len(DAYS))), min_size=1))
def test_any_subset_of_days_reads_with_every_column(new_data_dir, kept):
    data_dir = new_data_dir()
    for index, day in enumerate(DAYS):
        write_day(data_dir, day, _jobs(index), fetched_at=FETCHED)
    every_day = _columns(data_dir)
    assert ("segment_id", "VARCHAR") in every_day["segment_entities"][1]
    store = open_store(data_dir)
    for index in set(range(len(DAYS))) - kept:
        for table in TABLE_NAMES:
            prefix = partition_prefix(table, DAYS[index])
            for name in store.list_files(prefix):
                store.delete(f"{prefix}/{name}")

    assert _columns(data_dir) == every_day
    ((kitchens,),) = connect(data_dir).execute(KITCHEN).fetchall()
    assert kitchens == (0 in kept)
    segments = pipeline.read_table("segment_entities", data_dir)
    assert sorted(segments.job_id) == sorted(f"job-{i}" for i in kept if i != 2)
    if store.is_local:
        recipe = _readme_recipe(data_dir)
        names = sorted(name for name, _ in every_day["segment_entities"][0])
        assert sorted(recipe["dataset"].schema.names) == names
        assert sorted(recipe["segments"].collect_schema().names()) == names


def test_the_readme_recipe_types_each_kind_as_the_tables_do(tmp_path: Path):
    write_day(tmp_path, DAYS[0], _jobs(0), fetched_at=FETCHED)
    assert _readme_recipe(str(tmp_path))["KINDS"] == KIND_TYPES


@pytest.mark.parametrize("kind", sorted(KIND_TYPES))
def test_the_views_type_each_kind_as_duckdb_reads_its_arrow_type(kind):
    con = duckdb.connect()
    con.register("arrow_column", pa.table({"c": pa.nulls(1, KIND_TYPES[kind])}))
    ((_, type_, *_),) = con.execute("DESCRIBE arrow_column").fetchall()
    assert type_ == DUCKDB_TYPES[kind]


def test_read_table_of_a_data_dir_with_no_tables_raises(local_or_bucket):
    with pytest.raises(FileNotFoundError, match="no tables under"):
        pipeline.read_table("segment_entities", local_or_bucket)
    write_day(local_or_bucket, DAYS[2], [], fetched_at=FETCHED)
    assert pipeline.read_table("segment_entities", local_or_bucket).empty


def test_a_data_dir_built_before_value_integer_reads_and_is_rebuilt_with_it(tmp_path: Path):
    day = DAYS[0]
    raw = RawStore(tmp_path)
    for job in _jobs(0):
        raw.put_job(day, job)
    raw.write_listing(day, [{"job_id": "job-0", "status": "completed"}], FETCHED)
    build_day(tmp_path, day)
    # As the previous version left it: no value_integer in the file, the schema or the build.
    table = tmp_path / "tables" / "entity_values"
    (part,) = (table / f"created_date={day}").glob("*.parquet")
    pq.write_table(pq.read_table(part).drop_columns(["value_integer"]), part)
    stored = json.loads((table / "_schema.json").read_text())
    stored["columns"] = [c for c in stored["columns"] if c["name"] != "value_integer"]
    (table / "_schema.json").write_text(json.dumps(stored))
    record = table / f"created_date={day}" / "_build.json"
    built = json.loads(record.read_text())
    record.write_text(json.dumps({**built, "fingerprint": "2:" + built["fingerprint"][2:]}))

    old = pipeline.read_table("entity_values", tmp_path)
    assert old.value_integer.isna().all() and old.value_number.notna().any()
    assert connect(tmp_path).execute("SELECT count(value_integer) FROM entity_values").fetchall()
    build_day(tmp_path, day)
    new = pipeline.read_table("entity_values", tmp_path).set_index("path")
    assert new.loc["n", "value_integer"] == 1
    stored = json.loads((table / "_schema.json").read_text())
    assert "value_integer" in [c["name"] for c in stored["columns"]]


def test_a_field_named_as_the_partition_key_keeps_its_value_and_the_day(tmp_path: Path):
    assert PARTITION_COLUMN == PARTITION_KEY
    job = completed_job("j", [segment(0, 1, {"a": 1}, created_date="theirs")], created_at=DAY1_MS)
    write_day(tmp_path, DAYS[0], [job], fetched_at=FETCHED)
    frame = pipeline.read_table("segment_entities", tmp_path)
    (theirs,) = [c for c in frame.columns if c.startswith(f"{PARTITION_KEY}_")]
    assert frame.loc[0, theirs] == "theirs" and frame.loc[0, PARTITION_KEY] == DAYS[0]
    query = f"SELECT {PARTITION_KEY}, {theirs} FROM segment_entities"
    assert connect(tmp_path).execute(query).fetchall() == [(DAYS[0], "theirs")]

    # As an older version wrote it: the field in a column of the partition key's name.
    table = tmp_path / "tables" / "segment_entities"
    (part,) = (table / f"created_date={DAYS[0]}").glob("*.parquet")
    pq.write_table(
        pq.read_table(part).rename_columns(
            [PARTITION_KEY if c == theirs else c for c in pq.read_schema(part).names]
        ),
        part,
    )
    stored = json.loads((table / "_schema.json").read_text())
    for column in stored["columns"]:
        column["name"] = PARTITION_KEY if column["name"] == theirs else column["name"]
    (table / "_schema.json").write_text(json.dumps(stored))
    frame = pipeline.read_table("segment_entities", tmp_path)
    assert list(frame[PARTITION_KEY]) == [DAYS[0]]
    select = f"SELECT {PARTITION_KEY} FROM segment_entities"
    assert connect(tmp_path).execute(select).fetchall() == [(DAYS[0],)]
