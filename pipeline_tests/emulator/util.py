"""HTTP helpers shared by the emulator tests: a keyed session and a reference page walker."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from pipeline_tests.conftest import EMULATOR_API_KEY


def session(api_key: str = EMULATOR_API_KEY) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {api_key}"
    return s


def job_url(base_url: str, job_id: str) -> str:
    """Percent-encode every reserved character and the dots, so ``..`` survives URL cleaning."""
    return f"{base_url}/extract/{quote(job_id, safe='').replace('.', '%2E')}"


def fetch_complete(
    s: requests.Session, base_url: str, job_id: str, limit: int, thumbnails: bool = False
) -> dict[str, Any]:
    """Page through one job the way a client should and build the architecture's complete dict."""
    params: dict[str, Any] = {
        "limit": limit,
        "offset": 0,
        "include_chapters": "true",
        "include_shots": "true",
    }
    if thumbnails:
        params["include_thumbnails"] = "true"
    r = s.get(job_url(base_url, job_id), params=params, timeout=30)
    r.raise_for_status()
    first = r.json()
    if "total" not in first:
        return first
    segments = list(first["data"]["segment_entities"])
    while len(segments) < first["total"]:
        params["offset"] = len(segments)
        page = s.get(job_url(base_url, job_id), params=params, timeout=30).json()
        assert page["total"] == first["total"]
        assert page["data"]["segment_entities"], "a page came back empty before total"
        segments += page["data"]["segment_entities"]
    first["data"]["segment_entities"] = segments
    del first["limit"], first["offset"]
    return first
