"""Small hand-made job dicts and a Hypothesis strategy for arbitrary JSON entities."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

DAY1_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY2_MS = DAY1_MS + 86_400_000


def completed_job(
    job_id: str,
    segments: list[Any],
    *,
    created_at: int = DAY1_MS,
    prompt: str = "List people and objects.",
    video_entities: Any = None,
    chapters: list[Any] | None = None,
    shots: list[Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A complete job dict as docs/architecture.md defines it."""
    data: dict[str, Any] = {"segment_entities": segments}
    if video_entities is not None:
        data = {"entities": video_entities, **data}
    job: dict[str, Any] = {
        "job_id": job_id,
        "status": "completed",
        "url": f"cloudglue://files/{job_id}",
        "created_at": created_at,
        "extract_config": {
            "prompt": prompt,
            "enable_video_level_entities": video_entities is not None,
            "enable_segment_level_entities": True,
        },
        "segmentation_id": f"seg-{job_id}",
        "data": data,
        "total": len(segments),
    }
    if chapters is not None:
        job["chapters"] = chapters
        job["total_chapters"] = len(chapters)
    if shots is not None:
        job["shots"] = shots
        job["total_shots"] = len(shots)
    job.update(extra)
    return job


def segment(start: Any, end: Any, entities: Any, **extra: Any) -> dict[str, Any]:
    return {"start_time": start, "end_time": end, "entities": entities, **extra}


def summary(job_id: str, status: str, *, created_at: int = DAY1_MS, **extra: Any) -> dict:
    """A listing summary of a job that is not completed."""
    return {
        "job_id": job_id,
        "status": status,
        "url": f"cloudglue://files/{job_id}",
        "created_at": created_at,
        "extract_config": {"schema": {"people": [{"name": "string"}]}},
        "segmentation_id": f"seg-{job_id}",
        **extra,
    }


keys = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["a.b", "with space", "[0]", '"q"', "名前", "", "__", "a__b", "A", "a"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-(2**63) - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=30,
)
json_objects = st.dictionaries(keys, json_values, max_size=6)


def nested(levels: int, leaf: Any = "bottom") -> Any:
    value = leaf
    for _ in range(levels):
        value = {"level": value}
    return value
