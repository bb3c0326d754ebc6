"""The account's webhooks: listed with the client's retried GET, created, updated and deleted
with writes sent once (never retried, so never applied twice)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from pipeline.cloudglue.calls import Calls
from pipeline.cloudglue.errors import ApiError
from pipeline.cloudglue.paging import MAX_PAGE_SIZE


class Webhooks:
    """``/webhooks`` through ``calls``."""

    def __init__(self, calls: Calls) -> None:
        self._get = calls.get
        self._write = calls.write
        self.base_url = calls.base_url

    def list_webhooks(self) -> list[dict[str, Any]]:
        """Every webhook of the account (``GET /webhooks``, all pages), oldest first."""
        hooks: list[dict[str, Any]] = []
        while True:
            query = urlencode({"limit": MAX_PAGE_SIZE, "offset": len(hooks), "sort": "asc"})
            page = self._get(f"{self.base_url}/webhooks?{query}")
            items = page.get("data")
            if not isinstance(items, list):
                raise ApiError(
                    "GET /webhooks answered without a data list", status=200, url=self.base_url
                )
            hooks += items
            if not items or len(hooks) >= int(page.get("total") or 0):
                return hooks

    def create_webhook(
        self, endpoint: str, events: Iterable[str], description: str | None = None
    ) -> dict[str, Any]:
        """``POST /webhooks``: the created webhook, its ``webhook_secret`` included."""
        body: dict[str, Any] = {"endpoint": endpoint, "subscribed_events": list(events)}
        if description is not None:
            body["description"] = description
        return self._write("POST", "/webhooks", body)

    def update_webhook(self, webhook_id: str, **fields: Any) -> dict[str, Any]:
        """``PUT /webhooks/{id}`` with ``fields`` (endpoint, subscribed_events, description,
        active): the updated webhook."""
        return self._write("PUT", "/webhooks/" + quote(webhook_id, safe=""), fields)

    def delete_webhook(self, webhook_id: str) -> dict[str, Any]:
        """``DELETE /webhooks/{id}``; NotFoundError when there is no such webhook."""
        return self._write("DELETE", "/webhooks/" + quote(webhook_id, safe=""), None)
