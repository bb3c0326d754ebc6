"""The API's response bodies for jobs: the listing summary, a job's detail page, a list page and
a segmentation page, as the emulator serves them (see ``pipeline.emulator.routes``).

Bodies may share nested objects with the entity pools (see ``JobContent``): serialize them, do
not mutate them.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from pipeline.emulator.content import JobContent, thumbnail_url, video_entities, with_thumbnail
from pipeline.emulator.jobs import Job, stable_uuid
from pipeline.emulator.vocabulary import ERRORS, PROMPTS, SCHEMA


def summary(job: Job) -> dict[str, Any]:
    """The listing object of a job (``GET /extract?include_data=false``)."""
    rng = random.Random(f"{job.key}:config")
    if job.config_kind == "schema":
        config: dict[str, Any] = {"schema": SCHEMA}
    else:
        config = {"prompt": rng.choice(PROMPTS)}
    if job.config_kind == "metadata":
        config["enable_video_level_entities"] = True
        config["enable_segment_level_entities"] = False
        config["enable_metadata_mode"] = True
    else:
        if job.legacy:
            config["enable_video_level_entities"] = True
        config["enable_segment_level_entities"] = True
        config["enable_transcript_mode"] = rng.random() < 0.3
    if job.hostile == "unknown_fields":
        config["enable_time_travel"] = {"beta": True}
    out: dict[str, Any] = {
        "job_id": job.job_id,
        "status": job.status,
        "url": job.url,
        "created_at": job.created_at,
        "extract_config": config,
        "segmentation_id": job.segmentation_id,
    }
    if job.status == "failed":
        out["error"] = random.Random(f"{job.key}:error").choice(ERRORS)
    if job.hostile == "text_created_at":
        # Listed within its day's date filters, but no client can tell which day that is.
        when = dt.datetime.fromtimestamp(job.created_at / 1000, dt.UTC)
        out["created_at"] = when.isoformat()
    if job.hostile == "unknown_fields":
        out["priority"] = "high"
        out["labels"] = [{"name": "qa", "color": None}]
    return out


def list_page(
    content: JobContent, matches: list[Job], limit: int, offset: int, include_data: bool
) -> dict[str, Any]:
    """``GET /extract``: the page at ``offset`` of the ``matches`` of a query."""
    items = []
    for job in matches[offset : offset + limit]:
        item = summary(job)
        if include_data and job.status == "completed":
            item["data"] = _data(job, content.segments(job), False)
        items.append(item)
    return {
        "object": "list",
        "data": items,
        "total": len(matches),
        "limit": limit,
        "offset": offset,
    }


def detail(
    content: JobContent,
    job: Job,
    limit: int | None,
    offset: int,
    thumbs: bool,
    chapters: bool,
    shots: bool,
) -> dict[str, Any]:
    """``GET /extract/{job_id}``: a job's page of ``limit`` segment entities (None: all)."""
    body = summary(job)
    if job.status != "completed":
        return body
    if job.hostile:
        every = content.segments(job)
        total = len(every)
        page = every[offset:] if limit is None else every[offset : offset + limit]
    else:
        total = job.n_segments
        stop = total if limit is None else min(total, offset + limit)
        page = [content.segment(job, i) for i in range(offset, stop)]
    if thumbs:
        page = [with_thumbnail(job, offset + k, s) for k, s in enumerate(page)]
    body["data"] = _data(job, page, thumbs)
    body["total"] = total
    body["limit"] = limit if limit is not None else total
    body["offset"] = offset
    tl = content.timeline(job)
    if chapters and job.strategy == "narrative":
        body["chapters"] = [dict(c) for c in tl.chapters]
        body["total_chapters"] = len(tl.chapters)
        if job.hostile == "unknown_fields":
            for c in body["chapters"]:
                c["mood"] = "tense"
    if shots and job.strategy == "shot-detector":
        body["shots"] = [dict(s) for s in tl.shots]
        body["total_shots"] = len(tl.shots)
    return body


def segmentation(content: JobContent, job: Job, limit: int, offset: int) -> dict[str, Any]:
    """``GET /segmentations/{id}``: the page at ``offset`` of a job's segmentation."""
    tl = content.timeline(job)
    status = "not_applicable" if job.status == "not_applicable" else "completed"
    body: dict[str, Any] = {
        "segmentation_id": job.segmentation_id,
        "status": status,
        "created_at": job.created_at - 60_000,
        "file_id": job.file_id,
        "segmentation_config": tl.segmentation_config,
        "thumbnails_config": {"enable_segment_thumbnails": job.config_kind == "schema"},
    }
    if status != "completed":
        return body
    body["total_segments"] = len(tl.times)
    if job.strategy == "shot-detector":
        body["total_shots"] = len(tl.shots)
    if job.strategy == "narrative":
        body["total_chapters"] = len(tl.chapters)
    if not tl.times:
        return body
    segments = []
    for i in range(offset, min(offset + limit, len(tl.times))):
        seg = {"id": stable_uuid(job.key, "segment", i), "start_time": tl.times[i][0]}
        seg["end_time"] = tl.times[i][1]
        if job.config_kind == "schema":
            seg["thumbnail_url"] = thumbnail_url(job, i)
        segments.append(seg)
    data: dict[str, Any] = {"object": "list", "segments": segments}
    if job.strategy == "shot-detector":
        data["shots"] = list(tl.shots)
    if job.strategy == "narrative":
        data["chapters"] = list(tl.chapters)
    data.update(total=len(tl.times), limit=limit, offset=offset)
    body["data"] = data
    return body


def _data(job: Job, segments: list[Any], thumbs: bool) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if job.legacy or job.config_kind == "metadata":
        data["entities"] = video_entities(job)
    data["segment_entities"] = segments
    if thumbs:
        data["thumbnail_url"] = thumbnail_url(job, None)
    if job.hostile == "unknown_fields":
        data["model_version"] = "extract-2099-01"
    return data
