"""A job's segment timeline per segmentation strategy: segment times, chapters (narrative) and
shots (shot-detector) that fit the segments, and the segmentation config that made them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pipeline.emulator.vocabulary import LOCATIONS, TEXTS


@dataclass(frozen=True, slots=True)
class Timeline:
    times: tuple[tuple[float, float], ...]
    chapters: tuple[dict[str, Any], ...]
    shots: tuple[dict[str, Any], ...]
    segmentation_config: dict[str, Any]


def build_timeline(key: str, strategy: str, n: int) -> Timeline:
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
                    "description": f"{rng.choice(TEXTS)} — {rng.choice(LOCATIONS)}",
                }
            )
            t = end
        narrative: dict[str, Any] = {"strategy": rng.choice(("balanced", "comprehensive"))}
        if n:
            narrative["number_of_chapters"] = n
        config = {"strategy": "narrative", "narrative_config": narrative}
    return Timeline(tuple(times), tuple(chapters), tuple(shots), config)
