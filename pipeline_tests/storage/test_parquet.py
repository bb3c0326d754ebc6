"""write_day / read_table: partitions read back with pyarrow, pandas and DuckDB, atomically."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import pipeline
from pipeline.storage import write_day
from pipeline.storage.atomic import exchange
from pipeline.storage.schema_store import load_schema, persistent_register
from pipeline.tables import TABLES
from pipeline.tables.accumulators import make_accumulator
from pipeline.tables.rows import JobRows
from pipeline_tests.tables.jobs import DAY1_MS, DAY2_MS, completed_job, segment, summary

DAY1, DAY2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
FETCHED = dt.datetime(2026, 1, 3, tzinfo=dt.UTC)


def _day1_jobs():
    return [
        completed_job(
            "a1",
            [segment(1.0, 2.0, {"shared": 7, "people": ["Ana"]}), segment(0.0, 1.0, {"shared": 8})],
            prompt="people",
        ),
        summary("a2", "failed", error="boom"),
    ]


def _day2_jobs():
    return [
        completed_job(
            "b1",
            [segment(0.0, 3.0, {"shared": "seven", "product": {"name": "pan", "price": 9.5}})],
            created_at=DAY2_MS,
            prompt="products",
            video_entities={"brand": "X"},
        )
    ]


def _glob(data_dir: Path, table: str) -> str:
    return str(data_dir / "tables" / table / "**" / "*.parquet")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def two_days(tmp_path: Path) -> Path:
    write_day(tmp_path, DAY1, _day1_jobs(), fetched_at=FETCHED)
    write_day(tmp_path, DAY2, _day2_jobs(), fetched_at=FETCHED)
    return tmp_path


def test_layout_and_result(tmp_path: Path):
    result = write_day(tmp_path, DAY1, _day1_jobs(), fetched_at=FETCHED)
    assert result.jobs == 2
    assert result.rows == {
        "extract_jobs": 2,
        "video_entities": 0,
        "segment_entities": 2,
        "chapters": 0,
        "shots": 0,
        "entity_values": 3,
    }
    seg = result.tables["segment_entities"]
    assert seg.path == str(tmp_path / "tables/segment_entities/created_date=2026-01-01")
    assert seg.files == 1 and "entities__shared" in seg.schema.names
    assert list(seg.preview.segment_index) == [1, 0]
    assert "| job_id |" in seg.preview_markdown
    for table in TABLES:
        assert (tmp_path / "tables" / table / "_schema.json").exists()
        files = list((tmp_path / "tables" / table / "created_date=2026-01-01").glob("*.parquet"))
        assert len(files) == 1
    meta = pq.read_metadata(files[0])
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert not list((tmp_path / ".staging").iterdir())
    # The preview (made without pyarrow's timestamp conversion) is the partition's first rows.
    for table, written in result.tables.items():
        if written.rows:
            head = pq.read_table(written.path).slice(0, len(written.preview_rows)).to_pylist()
            assert written.preview_rows == head, table
    jobs = result.tables["extract_jobs"].preview_rows
    assert {row["fetched_at"] for row in jobs} == {FETCHED}
    assert "2026-01-03 00:00:00+00:00" in result.tables["extract_jobs"].preview_markdown


def test_read_back_across_partitions_with_a_type_change(two_days: Path):
    frame = pipeline.read_table("segment_entities", two_days)
    assert list(frame.job_id) == ["a1", "a1", "b1"]
    assert list(frame.created_date) == [DAY1, DAY1, DAY2]
    assert list(frame["entities__shared"].astype(object)) == [8, 7, pd.NA]
    assert list(frame["entities__shared__v_text"].fillna("-")) == ["-", "-", "seven"]
    assert frame.loc[2, "entities__product__price"] == 9.5
    assert frame["entities__shared"].dtype == "Int64"
    assert list(pipeline.read_table("segment_entities", two_days, days=["2026-01-02"]).job_id) == [
        "b1"
    ]

    con = duckdb.connect()
    rel = con.sql(
        f"SELECT * FROM read_parquet('{_glob(two_days, 'segment_entities')}', "
        "hive_partitioning=true, union_by_name=true) ORDER BY created_date, start_time"
    )
    assert set(frame.columns) == set(rel.columns)
    rows = rel.fetchall()
    cols = rel.columns
    assert [r[cols.index("entities__shared")] for r in rows] == [8, 7, None]
    assert rows[2][cols.index("entities__shared__v_text")] == "seven"
    assert str(rows[2][cols.index("created_date")]) == "2026-01-02"
    jobs = con.sql(
        f"SELECT job_id, status, created_at FROM read_parquet('{_glob(two_days, 'extract_jobs')}',"
        " hive_partitioning=true, union_by_name=true) ORDER BY job_id"
    ).fetchall()
    assert [(j, s) for j, s, _ in jobs] == [
        ("a1", "completed"),
        ("a2", "failed"),
        ("b1", "completed"),
    ]
    assert jobs[0][2] == dt.datetime.fromtimestamp(DAY1_MS / 1000, dt.UTC)

    # pyarrow on one partition; each file carries the JSON path in the field metadata.
    part = pq.read_table(two_days / "tables/segment_entities/created_date=2026-01-02")
    field = part.schema.field("entities__product__name")
    assert field.metadata[b"json_path"] == b"entities.product.name"
    unified = ds.dataset(
        two_days / "tables/segment_entities", format="parquet", partitioning="hive"
    )
    assert unified.count_rows() == 3

    schema = json.loads((two_days / "tables/segment_entities/_schema.json").read_text())
    kinds = {c["name"]: c["kind"] for c in schema["columns"]}
    assert kinds["entities__shared"] == "bigint" and kinds["entities__shared__v_text"] == "text"


def test_types_stay_stable_when_a_later_day_sees_the_other_type_first(two_days: Path):
    write_day(
        two_days,
        dt.date(2026, 1, 3),
        [completed_job("c1", [segment(0, 1, {"shared": "x"}), segment(1, 2, {"shared": 3})])],
        fetched_at=FETCHED,
    )
    part = pq.read_table(two_days / "tables/segment_entities/created_date=2026-01-03")
    assert part.column("entities__shared").to_pylist() == [None, 3]
    assert part.column("entities__shared__v_text").to_pylist() == ["x", None]


def test_rewriting_a_day_replaces_it_and_values_rebuild(two_days: Path):
    jobs = [completed_job("a3", [segment(0, 1, {"k": {"a.b": [1, {}]}})])]
    write_day(two_days, DAY1, jobs, fetched_at=FETCHED)
    day1 = pipeline.read_table("extract_jobs", two_days, days=[DAY1])
    assert list(day1.job_id) == ["a3"]
    values = pipeline.read_table("entity_values", two_days, days=[DAY1])
    assert pipeline.tables.rebuild_entities(values.to_dict("records")) == {"k": {"a.b": [1, {}]}}


def test_many_chunks_make_many_files_that_read_as_one(tmp_path: Path):
    jobs = [
        completed_job(
            f"j{i:03d}", [segment(s, s + 1, {"n": s, f"only{i % 3}": i}) for s in range(5)]
        )
        for i in range(20)
    ]
    result = write_day(
        tmp_path,
        DAY1,
        jobs,
        fetched_at=FETCHED,
        max_rows={"segment_entities": 7, "entity_values": 11},
    )
    assert result.tables["segment_entities"].files == 15
    assert result.tables["entity_values"].files == 17  # 2 leaves per segment: chunks of 12
    frame = pipeline.read_table("segment_entities", tmp_path)
    assert len(frame) == 100
    assert list(frame.job_id) == sorted(frame.job_id)
    assert {"entities__only0", "entities__only1", "entities__only2"} <= set(frame.columns)
    glob = _glob(tmp_path, "segment_entities")
    count = (
        duckdb.connect()
        .execute(
            "SELECT count(*), count(entities__only2) FROM read_parquet(?,"
            " hive_partitioning=true, union_by_name=true)",
            [glob],
        )
        .fetchone()
    )
    assert count == (100, 30)


class Boom(RuntimeError):
    pass


def _exploding(jobs, after: int):
    for i, job in enumerate(jobs):
        if i == after:
            raise Boom("source failed mid-day")
        yield job


def _assert_unchanged(after: pd.DataFrame, before: pd.DataFrame) -> None:
    """The same rows; the schema is append-only, so a column the failed write registered is
    there, null."""
    pd.testing.assert_frame_equal(after[before.columns], before)
    assert after.drop(columns=before.columns).isna().all().all()


def test_an_exception_mid_write_leaves_the_old_partition(two_days: Path):
    before = {t: pipeline.read_table(t, two_days) for t in TABLES}
    listing = _files(two_days / "tables")
    many = [completed_job(f"z{i:03d}", [segment(0, 1, {"n": i})]) for i in range(50)]
    with pytest.raises(Boom):
        write_day(
            two_days,
            DAY1,
            _exploding(many, 40),
            fetched_at=FETCHED,
            max_rows={"segment_entities": 5},
        )
    assert _files(two_days / "tables") == listing
    for t in TABLES:
        _assert_unchanged(pipeline.read_table(t, two_days), before[t])
    assert not list((two_days / ".staging").iterdir())


def test_unsorted_jobs_are_refused_before_anything_changes(two_days: Path):
    listing = _files(two_days / "tables")
    jobs = [completed_job("b", []), completed_job("a", [])]
    with pytest.raises(ValueError, match="increasing job_id"):
        write_day(two_days, DAY1, jobs, fetched_at=FETCHED)
    assert _files(two_days / "tables") == listing


_SLOW_WRITER = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from pipeline.storage import write_day
    from pipeline_tests.tables.jobs import completed_job, segment

    def jobs():
        for i in range(10_000):
            if i == 30:
                print("writing", flush=True)
                time.sleep(60)
            yield completed_job(f"k{i:05d}", [segment(0, 1, {"n": i})])

    write_day(sys.argv[1], dt.date(2026, 1, 1), jobs(), fetched_at=None,
              max_rows={"segment_entities": 10, "entity_values": 10, "extract_jobs": 10})
    """
)


def test_a_killed_writer_leaves_the_old_partition_and_is_cleaned_up(two_days: Path):
    before = pipeline.read_table("segment_entities", two_days)
    listing = _files(two_days / "tables")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(two_days)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"writing"
        staged = [p for p in (two_days / ".staging").rglob("*.parquet")]
        assert staged, "the writer should have flushed files to staging"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _files(two_days / "tables") == listing
    _assert_unchanged(pipeline.read_table("segment_entities", two_days), before)
    write_day(two_days, DAY2, _day2_jobs(), fetched_at=FETCHED)
    assert list((two_days / ".staging").iterdir()) == []


def test_concurrent_writers_of_one_day_serialize(tmp_path: Path):
    script = textwrap.dedent(
        """
        import datetime as dt, sys
        from pipeline.storage import write_day
        from pipeline_tests.tables.jobs import completed_job, segment
        tag = sys.argv[2]
        jobs = [completed_job(f"{tag}{i:04d}", [segment(0, 1, {tag: i})]) for i in range(300)]
        write_day(sys.argv[1], dt.date(2026, 1, 1), jobs, fetched_at=None,
                  max_rows={"segment_entities": 50, "entity_values": 50})
        """
    )
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), tag], cwd=root)
        for tag in ("p", "q")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    frame = pipeline.read_table("segment_entities", tmp_path)
    assert len(frame) == 300 and frame.job_id.str[0].nunique() == 1
    schema = json.loads((tmp_path / "tables/segment_entities/_schema.json").read_text())
    assert {"entities__p", "entities__q"} <= {c["name"] for c in schema["columns"]}


def test_exchange_swaps_two_directories(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("from a")
    (b / "y").write_text("from b")
    if not exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    assert [p.name for p in a.iterdir()] == ["y"] and [p.name for p in b.iterdir()] == ["x"]


def test_read_table_of_no_days_unknown_tables_and_no_data_dir(two_days: Path, tmp_path: Path):
    frame = pipeline.read_table("shots", two_days, days=[])
    assert len(frame) == 0 and "shot_index" in frame.columns and "created_date" in frame.columns
    with pytest.raises(ValueError, match="unknown table"):
        pipeline.read_table("nope", two_days)
    (tmp_path / "empty").mkdir()
    for nothing in (tmp_path / "no" / "such" / "dir", tmp_path / "empty"):
        with pytest.raises(FileNotFoundError, match=f"no tables under {nothing}"):
            pipeline.read_table("shots", nothing)


def test_stale_staging_is_cleaned_but_foreign_entries_are_kept(tmp_path: Path):
    staging = tmp_path / ".staging"
    dead = staging / ("ab" * 16)
    (dead / "segment_entities").mkdir(parents=True)
    (staging / f"{dead.name}.lock").touch()  # nobody holds it: its writer died
    orphan = staging / ("cd" * 16)
    orphan.mkdir()
    foreign = staging / "raw-tmp"
    foreign.mkdir()
    (foreign / "in-flight.tmp").write_text("x")
    write_day(tmp_path, DAY1, _day1_jobs(), fetched_at=FETCHED)
    assert sorted(p.name for p in staging.iterdir()) == ["raw-tmp"]
    assert (foreign / "in-flight.tmp").exists()


def test_an_empty_day_replaces_the_partition_with_empty_files(two_days: Path):
    result = write_day(two_days, DAY1, [], fetched_at=FETCHED)
    assert result.jobs == 0 and set(result.rows.values()) == {0}
    assert list(pipeline.read_table("extract_jobs", two_days).job_id) == ["b1"]
    glob = _glob(two_days, "segment_entities")
    n = duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [glob]).fetchone()
    assert n == (1,)


def test_a_writer_with_a_stale_schema_adopts_the_stored_kind(tmp_path: Path):
    stale = load_schema(tmp_path, "segment_entities")  # loaded before the other writer ran
    write_day(tmp_path, DAY1, _day1_jobs(), fetched_at=FETCHED)  # registers entities.shared
    chunks = []
    acc = make_accumulator(stale, chunks.append, register=persistent_register(tmp_path))
    JobRows({**_accumulators(tmp_path), "segment_entities": acc}, None).add(
        completed_job("z", [segment(0, 1, {"shared": "text now"})], created_at=DAY2_MS)
    )
    acc.flush()
    assert chunks[0].column("entities__shared__v_text").to_pylist() == ["text now"]
    assert "entities__shared" not in chunks[0].column_names
    stored = json.loads((tmp_path / "tables/segment_entities/_schema.json").read_text())
    kinds = {c["name"]: c["kind"] for c in stored["columns"]}
    assert kinds["entities__shared"] == "bigint" and kinds["entities__shared__v_text"] == "text"


def _accumulators(root: Path) -> dict:
    return {t: make_accumulator(load_schema(root, t), lambda _: None) for t in TABLES}


def test_cleaning_staging_beside_writers_that_rename_their_temp_files_never_fails(tmp_path: Path):
    """Two build processes: one's atomic writes rename temp files out of the staging root while
    the other's clean-up lists it; a temp file gone between the listing and its stat is skipped."""
    import threading

    from pipeline.storage.atomic import atomic_write_bytes, clean_stale_staging

    root = tmp_path / ".staging"
    root.mkdir()
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(1500):
                atomic_write_bytes(
                    tmp_path / "cache" / f"{i % 7}.json", b"{}", root, sync_dir=False
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    cleanings = 0
    try:
        while not done.is_set():
            clean_stale_staging(root)
            cleanings += 1
    finally:
        writer.join()
    assert not errors and cleanings > 0
