"""A deterministic synthetic set of Cloudglue extract jobs, generated per job on demand.

Only a small record per job (id, created_at, status, strategy, segment count) is held in memory;
segment entities are generated from ``random.Random(f"{seed}:{job}:seg:{i}")`` when a page asks
for them, so a dataset of a million segment entities costs no more memory than a few pages.
Job timelines (segment times, chapters, shots) are cached in a small LRU.

The first jobs follow a coverage plan so every dataset of at least ``len(COVERAGE_PLAN)`` jobs
holds all five statuses, all four segmentation strategies, prompt- and schema-based configs,
a metadata-mode job (file-level entities only), legacy jobs with both video- and segment-level
entities, and jobs with 0, 1, 50, 100, 101 and 350 segment entities. ``hostile=True`` appends
jobs that break the spec on purpose (see ``HOSTILE_JOBS``); they are served and have ground
truth like any other job.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import random
import threading
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

STATUSES = ("pending", "processing", "completed", "failed", "not_applicable")
STRATEGIES = ("uniform", "shot-detector", "manual", "narrative")
DAY_MS = 86_400_000
_MASK = 2**64 - 1
HUGE_STRING_BYTES = 10 * 1024 * 1024
DEEP_NESTING_LEVELS = 200

# (status, strategy, segment count, config kind, legacy) for the first jobs of every dataset. A
# "metadata" job has ``enable_metadata_mode``: file-level entities only, no segment entities.
COVERAGE_PLAN: tuple[tuple[str, str, int, str, bool], ...] = (
    ("completed", "uniform", 0, "metadata", False),
    ("completed", "shot-detector", 1, "schema", False),
    ("completed", "narrative", 50, "prompt", False),
    ("completed", "manual", 100, "schema", False),
    ("completed", "uniform", 101, "prompt", True),
    ("completed", "shot-detector", 350, "schema", False),
    ("completed", "narrative", 9, "schema", True),
    ("completed", "manual", 23, "prompt", True),
    ("failed", "uniform", 12, "prompt", False),
    ("pending", "manual", 8, "schema", False),
    ("processing", "narrative", 15, "prompt", False),
    ("not_applicable", "shot-detector", 0, "schema", False),
)

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

_STATUS_WEIGHTS = (0.06, 0.06, 0.75, 0.07, 0.06)
_COMPLETED_SHARE = _STATUS_WEIGHTS[2]
_NAMES = ("Ana", "Zoë", "José", "Mei Lin", "Olúwaseun", "Björk", "Дмитрий", "佐藤", "Noah", "Aïsha")
_ROLES = ("host", "guest", "chef", "narrator", "athlete", "customer", None)
_LOCATIONS = ("kitchen", "studio", "stadium", "street", "office", "beach", "café", "forest")
_OBJECTS = ("knife", "pan", "laptop", "microphone", "ball", "car", "guitar", "phone", "cup", "sign")
_TEXTS = (
    "Breaking news",
    "Café ☕ ouvert",
    "東京タワー",
    "¡Oferta!",
    "Ünïcödé ✓",
    "Привет мир",
    "emoji 🎬🍿",
)
_PROMPTS = (
    "List the people, objects and any on-screen text in each scene.",
    "Extract speakers, sentiment and products shown.",
    "Describe the setting and who appears in it.",
)
_ERRORS = (
    "Video download failed: HTTP 403 Forbidden",
    "Unsupported codec: prores_ks",
    "Extraction timed out after 3600 seconds",
    "Le fichier vidéo est corrompu",
)
_SCHEMA = {
    "scene": {"location": "string", "lighting": "string", "time_of_day": "string"},
    "people": [{"name": "string", "role": "string", "confidence": "number"}],
    "objects": ["string"],
    "speaker_count": "integer",
    "on_screen_text": "string",
    "sentiment": "string",
}


def _uuid(*parts: object) -> str:
    """A stable UUID4-shaped id from its parts (blake2b, not the salted ``hash()``)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _mix(x: int) -> int:
    """splitmix64: a cheap, well-spread 64-bit hash of an int."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _entities(rng: random.Random, kind: str, string_speakers: bool) -> dict[str, Any]:
    """One segment's entities: nested objects, arrays of objects and scalars, nulls, keys
    missing in some variants, unicode, and ``speaker_count`` as an int or (some) a string."""
    scene: dict[str, Any] = {
        "location": rng.choice(_LOCATIONS),
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
                "name": rng.choice(_NAMES),
                "role": rng.choice(_ROLES),
                "confidence": round(rng.random(), 3),
            }
            for _ in range(rng.randint(0, 3))
        ],
        "objects": rng.sample(_OBJECTS, rng.randint(0, 4)),
        "speaker_count": speakers,
    }
    if kind == "schema" or rng.random() < 0.6:
        entities["on_screen_text"] = rng.choice((*_TEXTS, None))
    entities["sentiment"] = rng.choice(("positive", "neutral", "negative", None))
    return entities


def _day_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_MS


@dataclass(slots=True)
class _Job:
    key: str
    job_id: str
    created_at: int
    status: str
    strategy: str
    n_segments: int
    config_kind: str
    legacy: bool
    url: str
    segmentation_id: str
    file_id: str
    hash: int
    hostile: str | None = None


@dataclass(frozen=True, slots=True)
class _Timeline:
    times: tuple[tuple[float, float], ...]
    chapters: tuple[dict[str, Any], ...]
    shots: tuple[dict[str, Any], ...]
    segmentation_config: dict[str, Any]


class Dataset:
    """Synthetic extract jobs plus their ground truth.

    ``jobs`` jobs are spread over ``days`` UTC days ending at ``end_date`` (default: today, UTC).
    ``mean_segments`` sets the mean number of segment entities per job across the dataset (so
    the total is about ``jobs * mean_segments``); without it completed jobs have 0-40. The
    coverage plan's sizes (0, 1, 50, 100, 101, 350) stay either way.
    """

    def __init__(
        self,
        seed: int = 7,
        jobs: int = 200,
        days: int = 14,
        end_date: dt.date | None = None,
        mean_segments: float | None = None,
        hostile: bool = False,
    ) -> None:
        if jobs < 0 or days < 1:
            raise ValueError("jobs must be >= 0 and days >= 1")
        self.seed = seed
        self.end_date = end_date or dt.datetime.now(dt.UTC).date()
        self._days = [self.end_date - dt.timedelta(days=days - 1 - i) for i in range(days)]
        self._start_ms = _day_ms(self._days[0])
        self._span_ms = days * DAY_MS
        self._mean = None if mean_segments is None else mean_segments / _COMPLETED_SHARE
        self._lock = threading.Lock()
        self._status_listeners: list[Callable[[str, str, str], None]] = []
        self._entity_pools: dict[tuple[str, bool], list[dict[str, Any]]] | None = None
        made = [self._make_job(i) for i in range(jobs)]
        if hostile:
            made += [self._make_hostile(k, jid, kind) for k, (jid, kind) in enumerate(HOSTILE_JOBS)]
        made.sort(key=lambda j: (-j.created_at, j.job_id))
        self._order = made
        self._neg_created = [-j.created_at for j in made]
        self._by_id = {j.job_id: j for j in made}
        self._by_segmentation = {j.segmentation_id: j for j in made}
        self._timeline = functools.lru_cache(maxsize=128)(self._build_timeline)

    # ---- job records ---------------------------------------------------------------------

    def _make_job(self, index: int) -> _Job:
        key = f"{self.seed}:{index}"
        rng = random.Random(key)
        created = self._start_ms + rng.randrange(self._span_ms)
        if index < len(COVERAGE_PLAN):
            status, strategy, n, kind, legacy = COVERAGE_PLAN[index]
        else:
            status = rng.choices(STATUSES, weights=_STATUS_WEIGHTS)[0]
            strategy = rng.choice(STRATEGIES)
            kind = rng.choice(("prompt", "schema"))
            legacy = rng.random() < 0.1
            if self._mean is None:
                n = 0 if rng.random() < 0.03 else rng.randint(1, 40)
            else:
                n = rng.randint(0, round(2 * self._mean))
        file_id = _uuid(key, "file")
        url = rng.choice(
            (
                f"https://videos.example.com/{file_id}.mp4",
                f"cloudglue://files/{file_id}",
                f"https://www.youtube.com/watch?v={file_id[:11]}",
            )
        )
        return _Job(
            key=key,
            job_id=_uuid(key, "job"),
            created_at=created,
            status=status,
            strategy=strategy,
            n_segments=n,
            config_kind=kind,
            legacy=legacy,
            url=url,
            segmentation_id=_uuid(key, "segmentation"),
            file_id=file_id,
            hash=int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big"),
        )

    def _make_hostile(self, k: int, job_id: str, kind: str) -> _Job:
        job = self._make_job(10_000_000 + k)
        job.key = f"{self.seed}:hostile:{k}"
        job.hash = _mix(job.hash)
        job.job_id = job_id
        job.status = "archived" if kind == "archived" else "completed"
        job.strategy = "narrative" if kind == "unknown_fields" else job.strategy
        job.n_segments = 6
        job.hostile = kind
        job.segmentation_id = _uuid(job.key, "segmentation")
        return job

    def _get(self, job_id: str) -> _Job:
        job = self._by_id.get(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    # ---- public read API -----------------------------------------------------------------

    def job_ids(self) -> list[str]:
        """Every live job id, newest first (the list endpoint's order)."""
        return [j.job_id for j in self._order if j.job_id in self._by_id]

    def hostile_job_ids(self) -> list[str]:
        """The ids of the jobs added by ``hostile=True``, newest first."""
        return [j.job_id for j in self._order if j.hostile and j.job_id in self._by_id]

    def days(self) -> list[dt.date]:
        """The UTC days the jobs are spread over, oldest first."""
        return list(self._days)

    def job_ids_for_day(self, day: dt.date) -> list[str]:
        """Live job ids created on the UTC ``day``, newest first."""
        lo = _day_ms(day)
        return [j.job_id for j in self._range(lo, lo + DAY_MS) if j.job_id in self._by_id]

    def status(self, job_id: str) -> str:
        return self._get(job_id).status

    def segment_entity_count(self) -> int:
        """Segment entities served by all live completed jobs (benchmark sizing)."""
        return sum(
            len(self._segments(j)) if j.hostile else j.n_segments
            for j in self._order
            if j.status == "completed" and j.job_id in self._by_id
        )

    def summary(self, job_id: str) -> dict[str, Any]:
        """The listing object of a job (``GET /extract?include_data=false``), a private copy."""
        return orjson.loads(orjson.dumps(self._summary(self._get(job_id))))

    def complete_job(self, job_id: str, include_thumbnails: bool = False) -> dict[str, Any]:
        """Ground truth: the job with every segment entity, chapters and shots (see docs)."""
        job = self._get(job_id)
        body = self._detail(job, None, 0, include_thumbnails, True, True)
        body.pop("limit", None)
        body.pop("offset", None)
        return orjson.loads(orjson.dumps(body))

    # ---- live changes --------------------------------------------------------------------

    def set_status(self, job_id: str, status: str) -> None:
        """Change a job's status while serving (pending -> processing -> completed, for sensor
        tests); any string is accepted, so an unknown status such as "archived" can be set.
        A change is told to every ``on_status_change`` listener (the server's webhooks)."""
        with self._lock:
            job = self._get(job_id)
            old, job.status = job.status, status
            listeners = list(self._status_listeners)
        if old != status:
            for listener in listeners:
                listener(job_id, old, status)

    def on_status_change(self, listener: Callable[[str, str, str], None]) -> None:
        """Call ``listener(job_id, old_status, new_status)`` after each status change."""
        with self._lock:
            self._status_listeners.append(listener)

    def delete_job(self, job_id: str) -> None:
        """Remove a job: it leaves every listing and its detail answers 404."""
        with self._lock:
            self._by_id.pop(job_id)

    # ---- API bodies (used by the server; they share objects, serialize, do not mutate) ---

    def list_body(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        status: str | None = None,
        created_after: dt.date | None = None,
        created_before: dt.date | None = None,
        url: str | None = None,
        include_data: bool = True,
    ) -> dict[str, Any]:
        """``GET /extract``. Date bounds are exclusive whole days: ``created_after=D`` keeps jobs
        created from D+1 00:00 UTC on, ``created_before=D`` those created before D 00:00 UTC."""
        lo = _day_ms(created_after + dt.timedelta(days=1)) if created_after else None
        hi = _day_ms(created_before) if created_before else None
        matches = [
            j
            for j in self._range(lo, hi)
            if j.job_id in self._by_id
            and (status is None or j.status == status)
            and (url is None or j.url == url)
        ]
        items = []
        for job in matches[offset : offset + limit]:
            item = self._summary(job)
            if include_data and job.status == "completed":
                item["data"] = self._data(job, self._segments(job), False)
            items.append(item)
        return {
            "object": "list",
            "data": items,
            "total": len(matches),
            "limit": limit,
            "offset": offset,
        }

    def detail_body(
        self,
        job_id: str,
        *,
        limit: int = 50,
        offset: int = 0,
        include_thumbnails: bool = False,
        include_chapters: bool = False,
        include_shots: bool = False,
    ) -> dict[str, Any]:
        """``GET /extract/{job_id}``; raises KeyError for an unknown job."""
        job = self._get(job_id)
        return self._detail(job, limit, offset, include_thumbnails, include_chapters, include_shots)

    def segmentation_body(
        self, segmentation_id: str, *, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """``GET /segmentations/{id}``; raises KeyError for an unknown segmentation."""
        job = self._by_segmentation.get(segmentation_id)
        if job is None or job.job_id not in self._by_id:
            raise KeyError(segmentation_id)
        tl = self._timeline(job.key, job.strategy, job.n_segments)
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
            seg = {"id": _uuid(job.key, "segment", i), "start_time": tl.times[i][0]}
            seg["end_time"] = tl.times[i][1]
            if job.config_kind == "schema":
                seg["thumbnail_url"] = self._thumb(job, i)
            segments.append(seg)
        data: dict[str, Any] = {"object": "list", "segments": segments}
        if job.strategy == "shot-detector":
            data["shots"] = list(tl.shots)
        if job.strategy == "narrative":
            data["chapters"] = list(tl.chapters)
        data.update(total=len(tl.times), limit=limit, offset=offset)
        body["data"] = data
        return body

    # ---- building blocks -----------------------------------------------------------------

    def _range(self, lo_ms: int | None, hi_ms: int | None) -> list[_Job]:
        """Jobs with lo <= created_at < hi, newest first (bisect on the sorted order)."""
        start = 0 if hi_ms is None else bisect_left(self._neg_created, -hi_ms + 1)
        stop = len(self._order) if lo_ms is None else bisect_right(self._neg_created, -lo_ms)
        return self._order[start:stop]

    def _summary(self, job: _Job) -> dict[str, Any]:
        rng = random.Random(f"{job.key}:config")
        if job.config_kind == "schema":
            config: dict[str, Any] = {"schema": _SCHEMA}
        else:
            config = {"prompt": rng.choice(_PROMPTS)}
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
            out["error"] = random.Random(f"{job.key}:error").choice(_ERRORS)
        if job.hostile == "text_created_at":
            # Listed within its day's date filters, but no client can tell which day that is.
            when = dt.datetime.fromtimestamp(job.created_at / 1000, dt.UTC)
            out["created_at"] = when.isoformat()
        if job.hostile == "unknown_fields":
            out["priority"] = "high"
            out["labels"] = [{"name": "qa", "color": None}]
        return out

    def _detail(
        self,
        job: _Job,
        limit: int | None,
        offset: int,
        thumbs: bool,
        chapters: bool,
        shots: bool,
    ) -> dict[str, Any]:
        body = self._summary(job)
        if job.status != "completed":
            return body
        if job.hostile:
            every = self._segments(job)
            total = len(every)
            page = every[offset:] if limit is None else every[offset : offset + limit]
        else:
            total = job.n_segments
            stop = total if limit is None else min(total, offset + limit)
            page = [self._segment(job, i) for i in range(offset, stop)]
        if thumbs:
            page = [self._with_thumb(job, offset + k, s) for k, s in enumerate(page)]
        body["data"] = self._data(job, page, thumbs)
        body["total"] = total
        body["limit"] = limit if limit is not None else total
        body["offset"] = offset
        tl = self._timeline(job.key, job.strategy, job.n_segments)
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

    def _data(self, job: _Job, segments: list[Any], thumbs: bool) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if job.legacy or job.config_kind == "metadata":
            data["entities"] = self._video_entities(job)
        data["segment_entities"] = segments
        if thumbs:
            data["thumbnail_url"] = self._thumb(job, None)
        if job.hostile == "unknown_fields":
            data["model_version"] = "extract-2099-01"
        return data

    def _thumb(self, job: _Job, index: int | None) -> str:
        name = "file" if index is None else f"segment-{index:05d}"
        return f"https://thumbnails.example.com/{quote(job.job_id, safe='')}/{name}.jpg"

    def _with_thumb(self, job: _Job, index: int, seg: Any) -> Any:
        if not isinstance(seg, dict):
            return seg
        return {**seg, "thumbnail_url": self._thumb(job, index)}

    def _video_entities(self, job: _Job) -> dict[str, Any]:
        rng = random.Random(f"{job.key}:video")
        return {
            "title": rng.choice(_TEXTS),
            "summary": "A short video about " + rng.choice(_LOCATIONS),
            "topics": rng.sample(_OBJECTS, rng.randint(0, 4)),
            "language": rng.choice(("en", "fr", "ja", None)),
            "people_count": rng.randint(0, 9),
        }

    def _segment(self, job: _Job, i: int) -> dict[str, Any]:
        """Segment entity ``i``: its times plus entities drawn from the pool by a hash of
        (job, i). Every 7th segment (i % 7 == 3) gets a string-typed ``speaker_count``."""
        start, end = self._timeline(job.key, job.strategy, job.n_segments).times[i]
        pool = self._pools()[(job.config_kind, i % 7 == 3)]
        entities = pool[_mix(job.hash ^ i) % len(pool)]
        seg: dict[str, Any] = {"start_time": start, "end_time": end, "entities": entities}
        if job.legacy:
            seg["segment_id"] = _uuid(job.key, "segment", i)
        return seg

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

    def _build_timeline(self, key: str, strategy: str, n: int) -> _Timeline:
        """Segment times, chapters and shots for a job; shots and chapters fit the segments."""
        rng = random.Random(f"{key}:timeline")
        times: list[tuple[float, float]] = []
        chapters: list[dict[str, Any]] = []
        shots: list[dict[str, Any]] = []
        t = 0.0
        if strategy == "uniform":
            window = rng.choice((5, 10, 15, 30))
            hop = rng.choice((window, window // 2 or 1))
            times = [(float(i * hop), float(i * hop + window)) for i in range(n)]
            config: dict[str, Any] = {
                "strategy": "uniform",
                "uniform_config": {"window_seconds": window, "hop_seconds": hop},
            }
        elif strategy == "shot-detector":
            for _ in range(n):
                end = round(t + rng.uniform(0.6, 20.0), 3)
                if end - t > 2 and rng.random() < 0.3:
                    mid = round((t + end) / 2, 3)
                    shots += [
                        {"start_time": t, "end_time": mid},
                        {"start_time": mid, "end_time": end},
                    ]
                else:
                    shots.append({"start_time": t, "end_time": end})
                times.append((t, end))
                t = end
            shots = [{"index": k, **s} for k, s in enumerate(shots)]
            detector = rng.choice(("adaptive", "content"))
            # Settings left at their defaults are absent, never null: the adaptive detector has
            # no threshold, and max_seconds defaults to 300.
            shot_config: dict[str, Any] = {"detector": detector}
            if detector == "content":
                shot_config["threshold"] = 27.0
            shot_config.update(min_seconds=0.6, fill_gaps=True)
            config = {"strategy": "shot-detector", "shot_detector_config": shot_config}
        elif strategy == "manual":
            for _ in range(n):
                start = round(t + rng.choice((0.0, 0.0, rng.uniform(0.5, 30.0))), 3)
                t = round(start + rng.uniform(2.0, 60.0), 3)
                times.append((start, t))
            config = {
                "strategy": "manual",
                "manual_config": {"segments": [{"start_time": s, "end_time": e} for s, e in times]},
            }
        else:
            for k in range(n):
                end = round(t + rng.uniform(20.0, 240.0), 3)
                times.append((t, end))
                chapters.append(
                    {
                        "index": k,
                        "start_time": t,
                        "end_time": end,
                        "description": f"{rng.choice(_TEXTS)} — {rng.choice(_LOCATIONS)}",
                    }
                )
                t = end
            narrative: dict[str, Any] = {"strategy": rng.choice(("balanced", "comprehensive"))}
            if n:
                narrative["number_of_chapters"] = n
            config = {"strategy": "narrative", "narrative_config": narrative}
        return _Timeline(tuple(times), tuple(chapters), tuple(shots), config)

    def _segments(self, job: _Job) -> list[Any]:
        """Every segment entity of a job (hostile jobs are small and built whole)."""
        segs: list[Any] = [self._segment(job, i) for i in range(job.n_segments)]
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
                seg["segment_id"] = _uuid(job.key, "segment", k)
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
