"""What a job holds, generated on demand: its segment entities (drawn from shared pools of
entity variants), its file-level entities, its timeline and its thumbnail URLs.

Segment entities are never stored: segment ``i`` of a job picks a pool variant by a hash of
(job, i), so a dataset of a million segment entities costs no more memory than a few pages.
Timelines are cached in a small LRU.
"""

from __future__ import annotations

import functools
import random
from typing import Any
from urllib.parse import quote

from pipeline.emulator.hostile import break_segments
from pipeline.emulator.jobs import Job, splitmix64, stable_uuid
from pipeline.emulator.timelines import Timeline, build_timeline
from pipeline.emulator.vocabulary import LOCATIONS, NAMES, OBJECTS, ROLES, TEXTS


def _entities(rng: random.Random, kind: str, string_speakers: bool) -> dict[str, Any]:
    """One segment's entities: nested objects, arrays of objects and scalars, nulls, keys
    missing in some variants, unicode, and ``speaker_count`` as an int or (some) a string."""
    scene: dict[str, Any] = {
        "location": rng.choice(LOCATIONS),
        "lighting": rng.choice(("bright", "dim", None)),
    }
    if rng.random() < 0.7:
        scene["time_of_day"] = rng.choice(("morning", "night", None))
    speakers: int | str = rng.randint(0, 5)
    if string_speakers:
        speakers = rng.choice(("several", str(speakers)))
    entities: dict[str, Any] = {
        "scene": scene,
        "people": [
            {
                "name": rng.choice(NAMES),
                "role": rng.choice(ROLES),
                "confidence": round(rng.random(), 3),
            }
            for _ in range(rng.randint(0, 3))
        ],
        "objects": rng.sample(OBJECTS, rng.randint(0, 4)),
        "speaker_count": speakers,
    }
    if kind == "schema" or rng.random() < 0.6:
        entities["on_screen_text"] = rng.choice((*TEXTS, None))
    entities["sentiment"] = rng.choice(("positive", "neutral", "negative", None))
    return entities


def thumbnail_url(job: Job, index: int | None) -> str:
    """The thumbnail of segment ``index``, or of the whole file for None."""
    name = "file" if index is None else f"segment-{index:05d}"
    return f"https://thumbnails.example.com/{quote(job.job_id, safe='')}/{name}.jpg"


def with_thumbnail(job: Job, index: int, seg: Any) -> Any:
    """Segment entity ``seg`` (number ``index``) with its thumbnail URL, if it is an object."""
    if not isinstance(seg, dict):
        return seg
    return {**seg, "thumbnail_url": thumbnail_url(job, index)}


def video_entities(job: Job) -> dict[str, Any]:
    """A job's file-level entities (legacy and metadata-mode jobs have them)."""
    rng = random.Random(f"{job.key}:video")
    return {
        "title": rng.choice(TEXTS),
        "summary": "A short video about " + rng.choice(LOCATIONS),
        "topics": rng.sample(OBJECTS, rng.randint(0, 4)),
        "language": rng.choice(("en", "fr", "ja", None)),
        "people_count": rng.randint(0, 9),
    }


class JobContent:
    """The generated content of the jobs of one seed: shared entity pools and timelines."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._entity_pools: dict[tuple[str, bool], list[dict[str, Any]]] | None = None
        self._timeline = functools.lru_cache(maxsize=128)(build_timeline)

    def timeline(self, job: Job) -> Timeline:
        return self._timeline(job.key, job.strategy, job.n_segments)

    def segment(self, job: Job, i: int) -> dict[str, Any]:
        """Segment entity ``i``: its times plus entities drawn from the pool by a hash of
        (job, i). Every 7th segment (i % 7 == 3) gets a string-typed ``speaker_count``."""
        start, end = self.timeline(job).times[i]
        pool = self._pools()[(job.config_kind, i % 7 == 3)]
        entities = pool[splitmix64(job.hash ^ i) % len(pool)]
        seg: dict[str, Any] = {"start_time": start, "end_time": end, "entities": entities}
        if job.legacy:
            seg["segment_id"] = stable_uuid(job.key, "segment", i)
        return seg

    def segments(self, job: Job) -> list[Any]:
        """Every segment entity of a job (hostile jobs are small and built whole)."""
        segs: list[Any] = [self.segment(job, i) for i in range(job.n_segments)]
        return break_segments(job, segs) if job.hostile else segs

    def _pools(self) -> dict[tuple[str, bool], list[dict[str, Any]]]:
        """Entity variants per (config kind, string-typed speaker_count), built on first use.

        Sharing variants between segments keeps a page cheap to build (benchmarks must not be
        emulator-bound); bodies from ``*_body`` may therefore share nested objects and must not
        be mutated, while ``complete_job`` returns a private copy."""
        if self._entity_pools is None:
            self._entity_pools = {
                (kind, typed): [
                    _entities(random.Random(f"{self.seed}:pool:{kind}:{typed}:{k}"), kind, typed)
                    for k in range(64 if typed else 256)
                ]
                for kind in ("prompt", "schema")
                for typed in (False, True)
            }
        return self._entity_pools
