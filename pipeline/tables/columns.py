"""What each column holds: the catalogue the Dagster UI's column schemas show.

The README's Output section lists the same columns per table (checked by
``pipeline_tests/tables/test_columns.py``). Flattened and unknown-field columns are described by
the JSON path their field metadata records, variant columns by the column they extend.
"""

from __future__ import annotations

import pyarrow as pa

_TIMES = {
    "start_time": "Start, in seconds from the start of the video.",
    "end_time": "End, in seconds from the start of the video.",
}

COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "extract_jobs": {
        "job_id": "The extract job's id.",
        "status": "pending, processing, completed, failed, not_applicable, or whatever the API "
        "says.",
        "url": "The video's URL.",
        "created_at": "When the job was created (UTC); its day is the partition.",
        "segmentation_id": "The segmentation the job used.",
        "prompt": "extract_config.prompt.",
        "schema_json": "extract_config.schema, as JSON.",
        "enable_video_level_entities": "extract_config.enable_video_level_entities.",
        "enable_segment_level_entities": "extract_config.enable_segment_level_entities.",
        "enable_transcript_mode": "extract_config.enable_transcript_mode.",
        "enable_metadata_mode": "extract_config.enable_metadata_mode.",
        "segment_entity_count": "Segment entities in the landed job (null unless completed).",
        "chapter_count": "Chapters in the landed job (null unless completed).",
        "shot_count": "Shots in the landed job (null unless completed).",
        "total": "The segment entity total as the API reports it.",
        "thumbnail_url": "The job's thumbnail URL.",
        "error": "Why the job failed (failed jobs).",
        "problem": "How a completed job the API described inconsistently contradicts itself "
        "(flagged by the jobs_described_consistently check); null otherwise.",
        "extract_config_json": "extract_config exactly as the API sent it.",
        "extra_json": "Job fields this pipeline does not know, exactly as sent.",
        "fetched_at": "When the day was listed.",
    },
    "video_entities": {
        "job_id": "The extract job's id.",
        "created_at": "When the job was created (UTC).",
        "thumbnail_url": "The job's thumbnail URL.",
        "entities_json": "The video-level entities, exact JSON.",
    },
    "segment_entities": {
        "job_id": "The extract job's id.",
        "segment_index": "0-based position in the API's order.",
        **_TIMES,
        "thumbnail_url": "The segment's thumbnail URL.",
        "entities_json": "The segment's entities, exact JSON (null when it has none).",
        "item_json": "The whole item when it is not a JSON object.",
    },
    "chapters": {
        "job_id": "The extract job's id.",
        "chapter_index": "0-based position of the chapter.",
        **_TIMES,
        "description": "The chapter's description.",
        "item_json": "The whole item when it is not a JSON object.",
    },
    "shots": {
        "job_id": "The extract job's id.",
        "shot_index": "0-based position of the shot.",
        **_TIMES,
        "item_json": "The whole item when it is not a JSON object.",
    },
    "entity_values": {
        "job_id": "The extract job's id.",
        "scope": "video or segment.",
        "segment_index": "The segment's index (null for video scope).",
        **_TIMES,
        "leaf_index": "Order of the leaf within the value.",
        "path": "The leaf's path, e.g. people[0].name (the root value is '').",
        "value_type": "string, integer, number, boolean, null, or object/array (empty ones).",
        "value_json": "The leaf's exact JSON text.",
        "value_string": "The value when value_type is string.",
        "value_number": "The value when value_type is integer or number (a double: integers "
        "beyond 2**53 are rounded).",
        "value_integer": "The value, exactly, when value_type is integer and it fits 64 bits.",
        "value_boolean": "The value when value_type is boolean.",
    },
}


def column_description(table: str, field: pa.Field) -> str:
    """A column's description: the catalogue's for a fixed column, else from its metadata."""
    fixed = COLUMN_DESCRIPTIONS[table].get(field.name)
    if fixed is not None:
        return fixed
    meta = {_text(k): _text(v) for k, v in (field.metadata or {}).items()}
    parts = []
    if "variant_of" in meta:
        parts.append(f"Values of {meta['variant_of']} that do not fit its type.")
    if "json_path" in meta:
        parts.append(f"JSON path: {meta['json_path']}")
    return " ".join(parts)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
