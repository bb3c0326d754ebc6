"""``JobRows``: complete job dicts and listing summaries into rows of the six tables'
accumulators.

Within a job, segments, chapters and shots are emitted in ``start_time`` order (non-numeric times
last, ties by position); with jobs given in ``job_id`` order the rows are sorted by ``job_id``
then ``start_time``. ``entity_values`` lists a job's video-scope leaves first. ``*_json`` columns
hold exact JSON text in the original key order. ``segment_entities`` also gets the segment's
unknown fields and its entities flattened (``entities__<key>__<key>``), ``video_entities`` the
flattened video entities, and ``chapters``/``shots`` their unknown fields; items that are not
objects are kept in ``item_json``. Null or absent entities produce no ``entity_values`` rows and a
null ``entities_json``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.cloudglue.models import (
    CHAPTER_FIELDS,
    DATA_FIELDS,
    JOB_FIELDS,
    SEGMENT_FIELDS,
    SHOT_FIELDS,
    created_at_ms,
)
from pipeline.jsonio import to_json
from pipeline.tables.accumulators import TableAccumulator, ValuesAccumulator
from pipeline.tables.flatten import flatten_into, leaves_into

_ENABLE_FLAGS = (
    "enable_video_level_entities",
    "enable_segment_level_entities",
    "enable_transcript_mode",
    "enable_metadata_mode",
)


def _time(value: Any) -> float | None:
    """A segment time usable for sorting and for ``entity_values`` (finite number or None)."""
    if type(value) is float:
        return value if value == value else None
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return None
    return None


def _time_order(items: Sequence[Any]) -> list[int]:
    keys = []
    for i, item in enumerate(items):
        t = (
            _time(item.get("start_time"))
            if type(item) is dict or isinstance(item, Mapping)
            else None
        )
        keys.append((t is None, t or 0.0, i))
    keys.sort()
    return [k[2] for k in keys]


def _ms(value: dt.datetime | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else to_json(value)


def job_problem(job: Mapping[str, Any]) -> str | None:
    """How a completed job's document contradicts itself, or None when it does not.

    Such a job is landed as far as the API described it and kept in ``extract_jobs`` with this
    text in ``problem``, so one inconsistent job flags its day instead of failing it."""
    if job.get("status") != "completed":
        return None
    problems = []
    data = job.get("data")
    if "data" not in job:
        problems.append("completed without data")
    elif not isinstance(data, Mapping):
        problems.append(f"data is {to_json(data)[:20]}, not an object")
    total = job.get("total")
    if not isinstance(total, int) or isinstance(total, bool):
        problems.append("completed without an integer total")
    segs = data.get("segment_entities", []) if isinstance(data, Mapping) else []
    if not isinstance(segs, list):
        problems.append("segment_entities is not an array")
        segs = []
    if isinstance(total, int) and not isinstance(total, bool) and len(segs) != total:
        problems.append(f"{len(segs)} segment entities, total {total}")
    not_objects = sum(not isinstance(seg, Mapping) for seg in segs)
    if not_objects:
        problems.append(f"{not_objects} segment entities are not objects")
    return "; ".join(problems) or None


class JobRows:
    """Turns job dicts into rows of the six tables' accumulators."""

    def __init__(
        self, accumulators: Mapping[str, TableAccumulator], fetched_at: dt.datetime | int | None
    ) -> None:
        self.acc = accumulators
        self.fetched_at = _ms(fetched_at)

    def add(self, job: Mapping[str, Any]) -> str:
        """Add one complete job dict or listing summary; returns its ``job_id``."""
        job_id = job.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"extract job without a string job_id: {str(job)[:200]}")
        data = job.get("data")
        data_map = data if isinstance(data, Mapping) else None
        created = job.get("created_at")
        created_ms = created_at_ms(created)
        created_val = created if created_ms is None else created_ms
        segs = data_map.get("segment_entities") if data_map is not None else None
        chapters, shots = job.get("chapters"), job.get("shots")
        self._add_job_row(job, job_id, data, data_map, segs, created_val)
        if data_map is not None:
            ents = data_map.get("entities")
            if ents is not None:
                self._add_video(job_id, created_val, data_map.get("thumbnail_url"), ents)
            if isinstance(segs, list):
                self._add_segments(job_id, segs)
        if isinstance(chapters, list):
            self._add_items(self.acc["chapters"], job_id, chapters, CHAPTER_FIELDS, True)
        if isinstance(shots, list):
            self._add_items(self.acc["shots"], job_id, shots, SHOT_FIELDS, False)
        return job_id

    def _add_job_row(
        self,
        job: Mapping[str, Any],
        job_id: str,
        data: Any,
        data_map: Mapping[str, Any] | None,
        segs: Any,
        created: Any,
    ) -> None:
        acc = self.acc["extract_jobs"]
        f = acc.fixed
        config = job.get("extract_config")
        cfg = config if isinstance(config, Mapping) else {}
        extra = {k: v for k, v in job.items() if k not in JOB_FIELDS}
        for key in ("chapters", "shots"):
            if key in job and not isinstance(job[key], list | type(None)):
                extra[key] = job[key]
        if data_map is not None:
            data_extra = {k: v for k, v in data_map.items() if k not in DATA_FIELDS}
            if data_extra:
                extra["data"] = data_extra
        elif data is not None:
            extra["data"] = data
        has_data = data_map is not None
        chapters, shots = job.get("chapters"), job.get("shots")
        f["job_id"].append(job_id)
        f["status"].append(job.get("status"))
        f["url"].append(job.get("url"))
        f["created_at"].append(created)
        f["segmentation_id"].append(job.get("segmentation_id"))
        f["prompt"].append(cfg.get("prompt"))
        f["schema_json"].append(_json_or_none(cfg.get("schema")))
        for flag in _ENABLE_FLAGS:
            f[flag].append(cfg.get(flag))
        f["segment_entity_count"].append(
            len(segs) if isinstance(segs, list) else (0 if has_data else None)
        )
        f["chapter_count"].append(
            len(chapters) if isinstance(chapters, list) else (0 if has_data else None)
        )
        f["shot_count"].append(len(shots) if isinstance(shots, list) else (0 if has_data else None))
        f["total"].append(job.get("total"))
        f["thumbnail_url"].append(data_map.get("thumbnail_url") if data_map is not None else None)
        f["error"].append(job.get("error"))
        f["problem"].append(job_problem(job))
        f["extract_config_json"].append(_json_or_none(config))
        f["extra_json"].append(to_json(extra) if extra else None)
        f["fetched_at"].append(self.fetched_at)
        acc.row_done()

    def _add_video(self, job_id: str, created: Any, thumbnail: Any, ents: Any) -> None:
        acc = self.acc["video_entities"]
        f = acc.fixed
        text = to_json(ents)
        f["job_id"].append(job_id)
        f["created_at"].append(created)
        f["thumbnail_url"].append(thumbnail)
        f["entities_json"].append(text)
        if type(ents) is dict:
            flatten_into(ents, ("entities",), 1, acc.dynamic, acc.rows)
        else:
            acc.emit(("entities",), ents)
        acc.row_done(len(text))
        self._add_values(job_id, "video", None, None, None, ents, len(text))

    def _add_segments(self, job_id: str, segs: list[Any]) -> None:
        acc = self.acc["segment_entities"]
        f = acc.fixed
        c_job, c_idx, c_start, c_end = (
            f["job_id"],
            f["segment_index"],
            f["start_time"],
            f["end_time"],
        )
        c_thumb, c_ents, c_item = f["thumbnail_url"], f["entities_json"], f["item_json"]
        emit = acc.emit
        for i in _time_order(segs):
            seg = segs[i]
            c_job.append(job_id)
            c_idx.append(i)
            if type(seg) is not dict and not isinstance(seg, Mapping):
                for col in (c_start, c_end, c_thumb, c_ents):
                    col.append(None)
                text = to_json(seg)
                c_item.append(text)
                acc.row_done(len(text))
                continue
            start, end = seg.get("start_time"), seg.get("end_time")
            ents = seg.get("entities")
            text = None if ents is None else to_json(ents)
            c_start.append(start)
            c_end.append(end)
            c_thumb.append(seg.get("thumbnail_url"))
            c_ents.append(text)
            c_item.append(None)
            acc.emit_extra(seg, SEGMENT_FIELDS)
            if type(ents) is dict:
                flatten_into(ents, ("entities",), 1, acc.dynamic, acc.rows)
            elif ents is not None:
                emit(("entities",), ents)
            acc.row_done(len(text) if text else 0)
            if ents is not None:
                self._add_values(
                    job_id, "segment", i, _time(start), _time(end), ents, len(text or "")
                )

    def _add_values(
        self,
        job_id: str,
        scope: str,
        index: int | None,
        start: float | None,
        end: float | None,
        ents: Any,
        nbytes: int,
    ) -> None:
        acc = self.acc["entity_values"]
        assert isinstance(acc, ValuesAccumulator)
        f = acc.fixed
        n = leaves_into(ents, f["path"], acc.leaf_values)
        acc.add_run(job_id, scope, index, start, end, n)
        acc.rows_done(n, nbytes)

    def _add_items(
        self,
        acc: TableAccumulator,
        job_id: str,
        items: list[Any],
        known: frozenset[str],
        has_description: bool,
    ) -> None:
        f = acc.fixed
        index_name = "chapter_index" if has_description else "shot_index"
        for i in _time_order(items):
            item = items[i]
            f["job_id"].append(job_id)
            if not isinstance(item, Mapping):
                f[index_name].append(i)
                f["start_time"].append(None)
                f["end_time"].append(None)
                if has_description:
                    f["description"].append(None)
                f["item_json"].append(to_json(item))
                acc.row_done()
                continue
            f[index_name].append(item.get("index", i))
            f["start_time"].append(item.get("start_time"))
            f["end_time"].append(item.get("end_time"))
            if has_description:
                f["description"].append(item.get("description"))
            f["item_json"].append(None)
            acc.emit_extra(item, known)
            acc.row_done()
