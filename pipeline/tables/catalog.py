"""The six tables: their names, what each holds, their fixed columns (name, kind) in order, and
the chunk sizes a write flushes them at."""

from __future__ import annotations

from pipeline.tables.schema import TableSchema

TABLES = (
    "extract_jobs",
    "video_entities",
    "segment_entities",
    "chapters",
    "shots",
    "entity_values",
)

TABLE_NAMES = TABLES

TABLE_DESCRIPTIONS = {
    "extract_jobs": "One row per extract job of any status: config, counts, error, fetched_at.",
    "video_entities": "One row per job with video-level entities: exact entities_json plus "
    "flattened entities__* columns.",
    "segment_entities": "One row per segment entity (0-based segment_index, times in seconds): "
    "exact entities_json, unknown fields, flattened entities__* columns.",
    "chapters": "Narrative chapters of each job: chapter_index, start/end time, description.",
    "shots": "Shot boundaries of each job: shot_index, start/end time.",
    "entity_values": "Long table, one row per entity leaf (path, typed value) for video and "
    "segment scope; rebuilds every job's entities exactly.",
}

FIXED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "extract_jobs": (
        ("job_id", "text"),
        ("status", "text"),
        ("url", "text"),
        ("created_at", "timestamp"),
        ("segmentation_id", "text"),
        ("prompt", "text"),
        ("schema_json", "text"),
        ("enable_video_level_entities", "bool"),
        ("enable_segment_level_entities", "bool"),
        ("enable_transcript_mode", "bool"),
        ("enable_metadata_mode", "bool"),
        ("segment_entity_count", "bigint"),
        ("chapter_count", "bigint"),
        ("shot_count", "bigint"),
        ("total", "bigint"),
        ("thumbnail_url", "text"),
        ("error", "text"),
        ("problem", "text"),
        ("extract_config_json", "text"),
        ("extra_json", "text"),
        ("fetched_at", "timestamp"),
    ),
    "video_entities": (
        ("job_id", "text"),
        ("created_at", "timestamp"),
        ("thumbnail_url", "text"),
        ("entities_json", "text"),
    ),
    "segment_entities": (
        ("job_id", "text"),
        ("segment_index", "bigint"),
        ("start_time", "double"),
        ("end_time", "double"),
        ("thumbnail_url", "text"),
        ("entities_json", "text"),
        ("item_json", "text"),
    ),
    "chapters": (
        ("job_id", "text"),
        ("chapter_index", "bigint"),
        ("start_time", "double"),
        ("end_time", "double"),
        ("description", "text"),
        ("item_json", "text"),
    ),
    "shots": (
        ("job_id", "text"),
        ("shot_index", "bigint"),
        ("start_time", "double"),
        ("end_time", "double"),
        ("item_json", "text"),
    ),
    "entity_values": (
        ("job_id", "text"),
        ("scope", "text"),
        ("segment_index", "bigint"),
        ("start_time", "double"),
        ("end_time", "double"),
        ("leaf_index", "bigint"),
        ("path", "text"),
        ("value_type", "text"),
        ("value_json", "text"),
        ("value_string", "text"),
        ("value_number", "double"),
        ("value_integer", "bigint"),
        ("value_boolean", "bool"),
    ),
}

DEFAULT_MAX_ROWS = {
    "extract_jobs": 50_000,
    "video_entities": 50_000,
    "segment_entities": 50_000,
    "chapters": 100_000,
    "shots": 100_000,
    "entity_values": 250_000,
}
DEFAULT_MAX_BYTES = 64 * 2**20


def new_schema(table: str) -> TableSchema:
    """A table's schema with only its fixed columns registered."""
    return TableSchema(table, FIXED_COLUMNS[table])
