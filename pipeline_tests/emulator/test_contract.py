"""Every emulator answer validates against the official OpenAPI spec's schemas.

The spec is read from ``<repo>/../shared/reference/cloudglue-openapi.json`` and never copied into
the repo; without it these tests skip with the reason shown by ``-ra``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from pipeline.emulator import Dataset, EmulatorServer
from pipeline_tests.conftest import EMULATOR_END_DATE
from pipeline_tests.emulator.util import job_url, session

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared/reference/cloudglue-openapi.json"


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` becomes a JSON Schema ``null`` type (and enum member)."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@pytest.fixture(scope="module")
def raw_spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip(f"official OpenAPI spec not found at {SPEC_PATH}")
    return json.loads(SPEC_PATH.read_text())


@pytest.fixture(scope="module")
def spec(raw_spec: dict[str, Any]) -> dict[str, Any]:
    return _openapi_to_jsonschema(raw_spec)


@pytest.fixture(scope="module")
def check(spec: dict[str, Any], raw_spec: dict[str, Any]):
    """check(path, status, body, method="get", strict=False): validate a body against the spec's
    response schema. ``strict`` reads the spec with ``nullable`` ignored: no value the spec
    types is ever null (what a validator that does not know OpenAPI 3.0 checks)."""
    registries = {
        strict: Registry().with_resource(
            "urn:cloudglue", Resource.from_contents(doc, default_specification=DRAFT202012)
        )
        for strict, doc in ((False, spec), (True, raw_spec))
    }

    def validator(schema: dict[str, Any], strict: bool) -> Draft202012Validator:
        if "$ref" in schema:
            schema = {"$ref": f"urn:cloudglue{schema['$ref']}"}
        return Draft202012Validator(
            schema,
            registry=registries[strict],
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )

    def run(path: str, status: int, body: Any, method: str = "get", strict: bool = False) -> None:
        responses = spec["paths"][path][method]["responses"]
        if str(status) in responses:
            schema = responses[str(status)]["content"]["application/json"]["schema"]
        else:  # 400/401 where the spec lists none: the documented error shape
            assert status in (400, 401), f"{method} {path} answered undocumented {status}"
            schema = {"$ref": "#/components/schemas/Error"}
        errors = sorted(validator(schema, strict).iter_errors(body), key=lambda e: list(e.path))
        assert not errors, f"{path} {status}: {errors[0].message} at {list(errors[0].path)}"

    return run


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorServer]:
    dataset = Dataset(seed=11, jobs=60, days=4, end_date=EMULATOR_END_DATE)
    with EmulatorServer(dataset) as server:
        yield server


def test_list_endpoint_every_parameter_combination(served, check) -> None:
    s = session()
    url = served.dataset.summary(served.dataset.job_ids()[5])["url"]
    days = [d.isoformat() for d in served.dataset.days()]
    filters = itertools.product(
        (None, "completed", "failed", "pending", "processing", "not_applicable"),
        (None, "true", "false"),
        ((None, None), (days[0], None), (None, days[-1]), (days[0], days[-1])),
        (None, url),
    )
    pages = ((None, None), (1, 0), (7, 3), (100, 0), (50, 59))
    combos = [(*f, (7, 3)) for f in filters] + [
        (None, "true", (None, None), None, p) for p in pages
    ]
    seen = 0
    for status, include_data, (after, before), u, (limit, offset) in combos:
        params = {
            "status": status,
            "include_data": include_data,
            "created_after": after,
            "created_before": before,
            "limit": limit,
            "offset": offset,
            "url": u,
        }
        r = s.get(f"{served.base_url}/extract", params=params, timeout=10)
        assert r.status_code == 200
        check("/extract", 200, r.json())
        seen += len(r.json()["data"])
    assert seen > 0


def test_job_endpoint_every_flag_combination_for_every_job(served, check) -> None:
    s = session()
    flags = ("include_thumbnails", "include_chapters", "include_shots")
    for n, job_id in enumerate(served.dataset.job_ids()):
        # all 27 combinations for the coverage-plan jobs, a rotating one for the rest
        combos = list(itertools.product((None, "true", "false"), repeat=3))
        for values in combos if n < 12 else [combos[n % len(combos)]]:
            params = dict(zip(flags, values, strict=True))
            pages = ((None, None), (7, 49)) if n < 12 else ((1, 0), (100, 0), (100, 400))
            for limit, offset in pages:
                params.update(limit=limit, offset=offset)
                r = s.get(job_url(served.base_url, job_id), params=params, timeout=10)
                assert r.status_code == 200
                check("/extract/{job_id}", 200, r.json())


def test_segmentation_endpoint_every_job(served, check) -> None:
    s = session()
    for job_id in served.dataset.job_ids():
        seg_id = served.dataset.summary(job_id)["segmentation_id"]
        for params in ({}, {"limit": 1}, {"limit": 100, "offset": 0}, {"limit": 7, "offset": 40}):
            r = s.get(f"{served.base_url}/segmentations/{seg_id}", params=params, timeout=10)
            assert r.status_code == 200
            check("/segmentations/{segmentation_id}", 200, r.json(), strict=True)


def test_error_bodies_match_the_error_schema(served, check) -> None:
    s = session()
    base = served.base_url
    r = s.get(f"{base}/extract", params={"limit": 0}, timeout=10)
    check("/extract", r.status_code, r.json())
    r = s.get(f"{base}/extract/unknown", timeout=10)
    check("/extract/{job_id}", r.status_code, r.json())
    r = s.get(f"{base}/segmentations/00000000-0000-4000-8000-000000000000", timeout=10)
    check("/segmentations/{segmentation_id}", r.status_code, r.json())
    r = session("wrong").get(f"{base}/extract", timeout=10)
    check("/extract", r.status_code, r.json())


_PARAM_VALUES = st.one_of(
    st.integers(-5, 205).map(str),
    st.sampled_from(["", "true", "false", "TRUE", "0", "1", "yes", "2026-01-14", "2026-13-01"]),
    st.sampled_from(["completed", "failed", "pending", "archived", "processing"]),
    st.text(max_size=12),
)
_LIST_PARAMS = ["limit", "offset", "status", "created_after", "created_before", "include_data"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(params=st.dictionaries(st.sampled_from([*_LIST_PARAMS, "url", "x"]), _PARAM_VALUES))
def test_list_endpoint_any_query_is_a_valid_200_or_400(served, check, params) -> None:
    r = session().get(f"{served.base_url}/extract", params=params, timeout=10)
    assert r.status_code in (200, 400), r.text
    check("/extract", r.status_code, r.json())
    if r.status_code == 200:
        body = r.json()
        assert len(body["data"]) <= body["limit"] <= 100
        assert body["offset"] >= 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    limit=st.one_of(st.none(), st.integers(-3, 130)),
    offset=st.one_of(st.none(), st.integers(-3, 400)),
    pick=st.integers(0, 11),
)
def test_job_paging_any_limit_and_offset(served, check, limit, offset, pick) -> None:
    job_id = served.dataset.job_ids()[pick]
    r = session().get(
        job_url(served.base_url, job_id), params={"limit": limit, "offset": offset}, timeout=10
    )
    valid = (limit is None or 1 <= limit <= 100) and (offset is None or offset >= 0)
    assert r.status_code == (200 if valid else 400)
    check("/extract/{job_id}", r.status_code, r.json())
    body = r.json()
    if valid and "total" in body:
        lim, off = limit or 50, offset or 0
        expected = served.dataset.complete_job(job_id)["data"]["segment_entities"][off : off + lim]
        assert body["data"]["segment_entities"] == expected
        assert (body["limit"], body["offset"]) == (lim, off)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(job_id=st.text(min_size=1, max_size=40))
def test_any_unknown_job_id_is_a_404_error_body(served, check, job_id) -> None:
    r = session().get(job_url(served.base_url, job_id), timeout=10)
    assert r.status_code == 404
    check("/extract/{job_id}", 404, r.json())


def test_webhook_endpoints_match_the_spec(served, check) -> None:
    s, base = session(), served.base_url
    r = s.post(
        f"{base}/webhooks",
        json={
            "endpoint": "http://127.0.0.1:9/hook",
            "subscribed_events": ["extract.job.completed"],
        },
        timeout=10,
    )
    check("/webhooks", r.status_code, r.json(), "post", strict=True)
    hook_id = r.json()["id"]
    r = s.post(f"{base}/webhooks", json={"endpoint": "http://127.0.0.1:9/b", "description": "b"})
    check("/webhooks", r.status_code, r.json(), "post", strict=True)
    for params in ({}, {"limit": 1}, {"limit": 1, "offset": 1}, {"sort": "asc"}, {"limit": 100}):
        r = s.get(f"{base}/webhooks", params=params, timeout=10)
        assert r.status_code == 200
        check("/webhooks", 200, r.json(), strict=True)
    one = f"{base}/webhooks/{hook_id}"
    r = s.get(one, timeout=10)
    check("/webhooks/{webhook_id}", r.status_code, r.json(), strict=True)
    r = s.put(one, json={"active": False, "description": "off"}, timeout=10)
    check("/webhooks/{webhook_id}", r.status_code, r.json(), "put", strict=True)
    r = s.delete(one, timeout=10)
    check("/webhooks/{webhook_id}", r.status_code, r.json(), "delete", strict=True)
    for method in ("get", "put", "delete"):
        r = s.request(method.upper(), one, json={} if method == "put" else None, timeout=10)
        assert r.status_code == 404
        check("/webhooks/{webhook_id}", 404, r.json(), method, strict=True)
    for bad in ([], {"subscribed_events": "extract.job.completed"}, {"active": "yes"}):
        r = s.post(f"{base}/webhooks", json=bad, timeout=10)
        check("/webhooks", r.status_code, r.json(), "post", strict=True)
    r = s.get(f"{base}/webhooks", params={"limit": 0}, timeout=10)
    check("/webhooks", r.status_code, r.json(), strict=True)


def test_delete_job_answers_match_the_spec(check) -> None:
    dataset = Dataset(seed=11, jobs=20, days=2, end_date=EMULATOR_END_DATE)
    with EmulatorServer(dataset) as server:
        s = session()
        for job_id in dataset.job_ids()[:3]:
            r = s.delete(job_url(server.base_url, job_id), timeout=10)
            assert r.status_code == 200
            check("/extract/{job_id}", 200, r.json(), "delete", strict=True)
            r = s.delete(job_url(server.base_url, job_id), timeout=10)
            check("/extract/{job_id}", r.status_code, r.json(), "delete", strict=True)
        r = session("wrong").delete(job_url(server.base_url, "x"), timeout=10)
        check("/extract/{job_id}", r.status_code, r.json(), "delete", strict=True)
