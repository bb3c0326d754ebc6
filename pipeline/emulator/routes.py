"""What each request path answers: the reads of the extract and segmentation endpoints over a
Dataset (with the faults that change a body), and the writes (webhooks, job deletion).

Where the spec leaves a choice open, the emulator answers as follows (clients must not rely on
any of it):
- ``GET /extract``: ``limit`` defaults to 50, ``include_data`` to true (the full ``data`` of
  completed jobs); ``created_after=D`` / ``created_before=D`` are exclusive whole UTC days
  (created from D+1 00:00 on / before D 00:00); ``url`` is an exact match; newest first.
- ``GET /extract/{job_id}``: ``chapters``/``shots`` (and their totals) are repeated on every page,
  and only for completed jobs; the path segment is percent-decoded, so ids with ``/``, ``%``
  or ``..`` are served at their encoded path.
- Booleans accept ``true``/``false``/``1``/``0`` (any case); a repeated parameter's last value
  wins; a method a path does not serve answers 405.
- ``DELETE /extract/{job_id}`` removes the job (``{"id": ...}``); ``/webhooks`` and
  ``/webhooks/{id}`` keep webhooks in memory and deliver events to loopback endpoints (see
  ``pipeline.emulator.webhooks``); ``GET /webhooks`` takes ``limit`` (1-100, default 50),
  ``offset`` and ``sort`` (``asc``/``desc``, default ``desc``, by ``created_at``).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from pipeline.emulator.dataset import Dataset
from pipeline.emulator.faults import FaultConfig, describe_inconsistently
from pipeline.emulator.jobs import STATUSES
from pipeline.emulator.params import BadRequest, bool_param, date_param, int_param, param
from pipeline.emulator.webhooks import WebhookError, Webhooks

# Request bodies (webhook create/update) larger than this are refused unread.
_MAX_REQUEST_BODY = 64 * 1024


def write_route(method: str, path: str) -> str | None:
    """The non-GET route ``method path`` names, or None (405)."""
    parts = path.split("/")
    if method == "POST" and parts == ["", "v1", "webhooks"]:
        return "create"
    if method in ("PUT", "DELETE") and len(parts) == 4 and parts[:3] == ["", "v1", "webhooks"]:
        return method.lower()
    if method == "DELETE" and len(parts) == 4 and parts[:3] == ["", "v1", "extract"]:
        return "delete_job"
    return None


class Routes:
    """The answers of one emulator: (status, body) per request."""

    def __init__(self, dataset: Dataset, faults: FaultConfig, webhooks: Webhooks) -> None:
        self.dataset = dataset
        self.faults = faults
        self.webhooks = webhooks
        self._lock = threading.Lock()
        self._passes: dict[str, int] = {}

    def read(self, target: str, fault: str | None) -> tuple[int, dict[str, Any], str | None]:
        """(status, body, the fault that changed the body: changing_total, shifting_list)."""
        path, _, query = target.partition("?")
        parts = path.split("/")
        params = parse_qs(query, keep_blank_values=True)
        try:
            if self.faults.page_cap:
                limit = int_param(params, "limit", 50, 1, 100)
                params["limit"] = [str(min(self.faults.page_cap, limit))]
            if len(parts) == 3 and parts[:3] == ["", "v1", "extract"]:
                return self._list(params, self._shifted(params))
            if len(parts) == 4 and parts[:3] == ["", "v1", "extract"] and parts[3]:
                return self._detail(unquote(parts[3]), params, fault == "changing_total")
            if len(parts) == 4 and parts[:3] == ["", "v1", "segmentations"] and parts[3]:
                return (*self._segmentation(unquote(parts[3]), params), None)
        except BadRequest as exc:
            return 400, {"error": str(exc)}, None
        return 404, {"error": f"Not found: {path}"}, None

    def write(
        self, h: BaseHTTPRequestHandler, path: str, route: str | None
    ) -> tuple[int, dict[str, Any]]:
        """Answer the webhook endpoints and ``DELETE /extract/{job_id}`` (``route``: the path's
        ``write_route``)."""
        parts = path.split("/")
        key = unquote(parts[3]) if len(parts) == 4 else ""
        params = parse_qs(h.path.partition("?")[2], keep_blank_values=True)
        try:
            if route == "delete_job":
                try:
                    self.dataset.delete_job(key)
                except KeyError:
                    return 404, {"error": "Extract job not found"}
                return 200, {"id": key}
            if route == "create":
                return 200, self.webhooks.create(_json_body(h))
            if parts == ["", "v1", "webhooks"]:
                sort = param(params, "sort") or "desc"
                if sort not in ("asc", "desc"):
                    raise BadRequest("sort must be asc or desc")
                return 200, self.webhooks.list_body(
                    limit=int_param(params, "limit", 50, 1, 100),
                    offset=int_param(params, "offset", 0, 0, None),
                    descending=sort == "desc",
                )
            if len(parts) != 4 or not key:
                return 404, {"error": f"Not found: {path}"}
            try:
                if route == "put":
                    return 200, self.webhooks.update(key, _json_body(h))
                if route == "delete":
                    return 200, self.webhooks.delete(key)
                return 200, self.webhooks.get(key)
            except KeyError:
                return 404, {"error": "Webhook not found"}
        except (BadRequest, WebhookError) as exc:
            return 400, {"error": str(exc)}

    def _shifted(self, params: dict[str, list[str]]) -> bool:
        """Whether this list page is shifted by the shifting_list fault (counting passes)."""
        if not self.faults.shifting_list:
            return False
        offset = int_param(params, "offset", 0, 0, None)
        query = repr(sorted((k, v) for k, v in params.items() if k != "offset"))
        with self._lock:
            passes = self._passes.get(query, 0) + (offset == 0)
            self._passes[query] = passes
        return offset > 0 and self.faults.shifts_list(query, passes)

    def _list(
        self, params: dict[str, list[str]], shift: bool
    ) -> tuple[int, dict[str, Any], str | None]:
        status = param(params, "status")
        if status is not None and status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
        offset = int_param(params, "offset", 0, 0, None)
        shifted = shift and offset > 0
        body = self.dataset.list_body(
            limit=int_param(params, "limit", 50, 1, 100),
            offset=offset + 1 if shifted else offset,
            status=status,
            created_after=date_param(params, "created_after"),
            created_before=date_param(params, "created_before"),
            url=param(params, "url"),
            include_data=bool_param(params, "include_data", True),
        )
        body["offset"] = offset
        return 200, body, "shifting_list" if shifted else None

    def _detail(
        self, job_id: str, params: dict[str, list[str]], change_total: bool
    ) -> tuple[int, dict[str, Any], str | None]:
        limit = int_param(params, "limit", 50, 1, 100)
        offset = int_param(params, "offset", 0, 0, None)
        flags = {
            name: bool_param(params, name, False)
            for name in ("include_thumbnails", "include_chapters", "include_shots")
        }
        try:
            body = self.dataset.detail_body(job_id, limit=limit, offset=offset, **flags)
        except KeyError:
            return 404, {"error": "Extract job not found"}, None
        if body.get("status") == "completed":
            how = self.faults.inconsistency_of(job_id)
            if how is not None:
                describe_inconsistently(body, how)
                return 200, body, "inconsistent_job"
        if change_total and offset > 0 and "total" in body:
            body["total"] += self.faults.total_delta(job_id)
            return 200, body, "changing_total"
        return 200, body, None

    def _segmentation(self, seg_id: str, params: dict[str, list[str]]) -> tuple[int, dict]:
        limit = int_param(params, "limit", 50, 1, 100)
        offset = int_param(params, "offset", 0, 0, None)
        try:
            return 200, self.dataset.segmentation_body(seg_id, limit=limit, offset=offset)
        except KeyError:
            return 404, {"error": "Segmentation not found"}


def _json_body(h: BaseHTTPRequestHandler) -> Any:
    """The request's JSON body; one over ``_MAX_REQUEST_BODY`` is refused unread, and the
    connection closed."""
    try:
        length = int(h.headers.get("Content-Length") or 0)
    except ValueError:
        length = -1
    if not 0 <= length <= _MAX_REQUEST_BODY:
        h.close_connection = True
        raise BadRequest(f"request body must be JSON of at most {_MAX_REQUEST_BODY} bytes")
    try:
        return orjson.loads(h.rfile.read(length))
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not JSON") from None
