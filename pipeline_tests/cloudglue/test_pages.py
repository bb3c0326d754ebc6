"""Pages joined as bytes give exactly the complete job the dict merge gives."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import jsonio
from pipeline.cloudglue.client import CloudglueClient
from pipeline.cloudglue.pages import NotAnObject, join_pages, parse_object, parse_page
from pipeline.emulator import Dataset, EmulatorServer

PAGING = ("limit", "offset")
SIDE = ("chapters", "total_chapters", "shots", "total_shots")


def merge_dicts(pages: list[dict]) -> dict:
    """The complete job (docs/architecture.md) from parsed pages: the reference."""
    first = pages[0]
    merged = {k: v for k, v in first.items() if k not in PAGING}
    segments = []
    for page in pages:
        data = page.get("data")
        segs = data.get("segment_entities") if isinstance(data, dict) else None
        segments.extend(segs if isinstance(segs, list) else [])
        for key in SIDE:
            if key in page and key not in merged:
                merged[key] = page[key]
    data = first.get("data")
    data = dict(data) if isinstance(data, dict) else {}
    if segments or "segment_entities" in data:
        data["segment_entities"] = segments
    if data or "data" in first:
        merged["data"] = data
    return merged


leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
value = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
segment = (
    st.dictionaries(
        st.sampled_from(["start_time", "end_time", "entities", "x", "é"]), value, max_size=4
    )
    | value
)


@st.composite
def paged_jobs(draw) -> list[dict]:
    segments = draw(st.lists(segment, max_size=7))
    limit = draw(st.integers(1, 3))
    extra = draw(st.dictionaries(st.sampled_from(["job_id", "status", "x", *SIDE]), value))
    data_extra = draw(st.dictionaries(st.sampled_from(["entities", "y"]), value, max_size=2))
    pages = []
    for offset in range(0, max(len(segments), 1), limit):
        page = {**extra, "total": len(segments), "limit": limit, "offset": offset}
        if draw(st.booleans()) or offset == 0:
            page["data"] = {**data_extra, "segment_entities": segments[offset : offset + limit]}
        else:
            page["data"] = {"segment_entities": segments[offset : offset + limit]}
        pages.append(page)
    return pages


@settings(max_examples=300, deadline=None)
@given(paged_jobs(), st.booleans())
def test_joined_bytes_parse_to_the_merged_dict(pages, pretty):
    bodies = [
        json.dumps(p, indent=1 if pretty else None, ensure_ascii=not pretty).encode(
            "utf-8", "surrogatepass"
        )
        for p in pages
    ]
    joined = join_pages([parse_page(b) for b in bodies])
    assert jsonio.loads(joined) == merge_dicts([jsonio.loads(b) for b in bodies])


def test_pages_msgspec_does_not_read_are_joined_exactly():
    first = b'{"job_id":"j","total":3,"offset":0,"data":{"segment_entities":'
    first += b'[{"v":NaN},{"s":"\\ud800"}]}}'
    second = b'{"job_id":"j","total":3,"offset":2,"data":{"segment_entities":'
    second += b'[{"n":123456789012345678901234567890}]},"shots":[Infinity]}'
    joined = jsonio.loads(join_pages([parse_page(first), parse_page(second)]))
    segments = joined["data"]["segment_entities"]
    assert math.isnan(segments[0]["v"])
    assert segments[1] == {"s": "\ud800"}
    assert segments[2] == {"n": 123456789012345678901234567890}
    assert joined["shots"] == [math.inf]
    assert "offset" not in joined


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"3"])
def test_a_body_that_is_not_an_object_is_refused(body):
    with pytest.raises(NotAnObject):
        parse_page(body)
    with pytest.raises(NotAnObject):
        parse_object(body)


@pytest.mark.parametrize("body", [b'{"a": [1, 2', b"", b'{"a": tru}', b"{'a': 1}"])
def test_invalid_json_is_refused(body):
    with pytest.raises(ValueError):
        parse_page(body)


def test_the_client_lands_every_job_as_it_would_parse_it():
    """Over HTTP, hostile jobs included: the bytes path and the dict path agree."""
    dataset = Dataset(seed=5, jobs=30, days=2, hostile=True)
    with (
        EmulatorServer(dataset, api_key="k") as server,
        CloudglueClient("k", server.base_url, page_size=7, max_concurrency=4) as client,
    ):
        ids = [job.job_id for job in client.list_jobs(dataset.days()[0], dataset.days()[-1])]
        completed = [j for j in ids if dataset.summary(j)["status"] == "completed"]
        bodies = dict(client.fetch_each(client.fetch_job_json, completed))
    assert sorted(bodies) == sorted(completed)
    for job_id, job in bodies.items():
        truth = dataset.complete_job(job_id)
        assert jsonio.loads(job.body) == truth
        assert job.segments == len(truth["data"].get("segment_entities", []))
