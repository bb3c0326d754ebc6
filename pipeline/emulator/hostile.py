"""Jobs that break the spec on purpose (``Dataset(hostile=True)``): odd ids, segments that are
not objects, bad times, duplicates, unknown fields, nulls, deep nesting, a huge string, an
unknown status and a text ``created_at``. They are served and have ground truth like any job."""

from __future__ import annotations

from typing import Any

from pipeline.emulator.jobs import Job, splitmix64, stable_uuid

HUGE_STRING_BYTES = 10 * 1024 * 1024
DEEP_NESTING_LEVELS = 200

# (job_id, kind): ids that need percent-encoding, each carrying one kind of hostile content.
HOSTILE_JOBS: tuple[tuple[str, str], ...] = (
    ("hostile/slash/job", "non_object_entities"),
    ("hostile/../dots", "bad_times"),
    ("..", "duplicates"),
    ("100%-done%2F", "unknown_fields"),
    ("hostile-vidéo-東京-🎬", "null_entities"),
    ("h" * 500, "deep_nesting"),
    ("hostile-huge-string", "huge_string"),
    ("hostile-archived", "archived"),
    ("hostile-text-created-at", "text_created_at"),
)


def make_hostile(job: Job, key: str, job_id: str, kind: str) -> Job:
    """``job`` (a freshly drawn one) turned into the hostile job ``job_id`` of ``kind``."""
    job.key = key
    job.hash = splitmix64(job.hash)
    job.job_id = job_id
    job.status = "archived" if kind == "archived" else "completed"
    job.strategy = "narrative" if kind == "unknown_fields" else job.strategy
    job.n_segments = 6
    job.hostile = kind
    job.segmentation_id = stable_uuid(job.key, "segmentation")
    return job


def break_segments(job: Job, segs: list[Any]) -> list[Any]:
    """A hostile job's segment entities: its well-formed ``segs`` broken as its kind says."""
    kind = job.hostile
    if kind == "non_object_entities":
        segs[1]["entities"] = ["a", "list", {"of": "things"}]
        segs[2]["entities"] = "just a string"
        segs[3]["entities"] = 42
        segs[4] = ["a segment that is a list"]
        segs[5] = "a segment that is a string"
    elif kind == "null_entities":
        segs[0]["entities"] = None
        segs[2] = None
        del segs[3]["entities"]
    elif kind == "bad_times":
        segs[0]["start_time"], segs[0]["end_time"] = 30.0, 10.0
        segs[1]["start_time"] = -5.5
        segs[2]["start_time"] = "00:01:05"
        segs[3]["end_time"] = None
        del segs[4]["start_time"]
        segs[5]["end_time"] = True
    elif kind == "duplicates":
        segs = [segs[0], segs[1], segs[1], segs[2], segs[2], segs[2], segs[3]]
    elif kind == "unknown_fields":
        for k, seg in enumerate(segs):
            seg["segment_id"] = stable_uuid(job.key, "segment", k)
            seg["confidence"] = {"model": 0.9, "human": None}
    elif kind == "deep_nesting":
        nested: Any = "bottom"
        for _ in range(DEEP_NESTING_LEVELS):
            nested = {"level": nested}
        segs[0]["entities"] = nested
    elif kind == "huge_string":
        segs[0]["entities"] = {
            **segs[0]["entities"],
            "transcript": "ab" * (HUGE_STRING_BYTES // 2),
        }
    return segs
