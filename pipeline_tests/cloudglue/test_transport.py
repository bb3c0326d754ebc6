"""What the client sends on the wire, through a proxy and across redirects.

A small recording relay on loopback sits in front of the emulator: it records each request's
target and headers and forwards it unchanged (origin-form as a reverse proxy, absolute-form as an
HTTP proxy), or answers a redirect. Everything is real HTTP; nothing in the client is patched.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from pipeline.cloudglue.client import CloudglueClient, job_path
from pipeline.cloudglue.errors import AuthError, NotFoundError
from pipeline.emulator import EmulatorServer
from pipeline_tests.cloudglue.fetching import complete
from pipeline_tests.conftest import EMULATOR_API_KEY


class Relay:
    """A loopback server that records requests and forwards them to ``upstream``.

    A target under ``/moved`` is answered with a 308 to the same target without that prefix
    (on ``redirect_to`` when set, else on this server)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.redirect_to: str | None = None
        self.seen: list[tuple[str, dict[str, str]]] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                relay.seen.append((self.path, dict(self.headers)))
                target = self.path
                if target.startswith("http://"):  # absolute-form: we are the proxy
                    parts = urlsplit(target)
                    target = parts.path + ("?" + parts.query if parts.query else "")
                if target.startswith("/moved/"):
                    self.send_response(308)
                    self.send_header("Location", (relay.redirect_to or "") + target[6:])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(relay.upstream.hostname, relay.upstream.port)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
                body = response.read()
                conn.close()
                self.send_response(response.status)
                for name in ("Content-Type", "Retry-After"):
                    if response.getheader(name):
                        self.send_header(name, response.getheader(name))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def relay(emulator: EmulatorServer) -> Iterator[Relay]:
    server = Relay(emulator.base_url)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def _multi_page_job(dataset, pages: int = 3) -> str:
    return next(
        j
        for j in dataset.job_ids()
        if dataset.status(j) == "completed"
        and len(dataset.complete_job(j)["data"]["segment_entities"]) > (pages - 1) * 25
    )


def test_requests_on_the_wire(no_proxy_env, relay, dataset):
    job_id = _multi_page_job(dataset)
    path = urlsplit(relay.url + "/v1").path
    with CloudglueClient(EMULATOR_API_KEY, relay.url + "/v1", page_size=25) as client:
        assert complete(client, job_id) == dataset.complete_job(job_id)
        with pytest.raises(NotFoundError):
            client.fetch_job_json("..")
    first, *later, dots = [target for target, _headers in relay.seen]
    url = f"{path}{job_path(job_id)}?limit=25"
    assert first == f"{url}&offset=0&include_chapters=true&include_shots=true"
    # Chapters and shots come with the first page only; the other pages are placed by offset.
    total = dataset.complete_job(job_id)["total"]
    assert sorted(later) == sorted(f"{url}&offset={o}" for o in range(25, total, 25))
    assert len(later) >= 2
    # The id's encoding goes out as it is: ``..`` stays one path segment, never a dot segment.
    assert dots.startswith(f"{path}/extract/%2E%2E?")
    for _target, headers in relay.seen:
        assert headers["Authorization"] == f"Bearer {EMULATOR_API_KEY}"
        assert headers["Accept"] == "application/json"
        assert headers["User-Agent"].startswith("python-requests/")
        others = [v for k, v in headers.items() if k != "Authorization"]
        assert not [v for v in others if EMULATOR_API_KEY in v]


def test_an_http_proxy_from_the_environment_is_used_unless_no_proxy_says_otherwise(
    no_proxy_env, relay, emulator, dataset
):
    job_id = _multi_page_job(dataset, pages=2)
    no_proxy_env.setenv("HTTP_PROXY", relay.url)
    with CloudglueClient(EMULATOR_API_KEY, emulator.base_url, page_size=25) as client:
        assert complete(client, job_id) == dataset.complete_job(job_id)
    assert relay.seen and all(t.startswith(emulator.base_url) for t, _h in relay.seen)

    relay.seen.clear()
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
    with CloudglueClient(EMULATOR_API_KEY, emulator.base_url, page_size=25) as client:
        assert complete(client, job_id) == dataset.complete_job(job_id)
    assert relay.seen == []


def test_redirects_are_followed_and_the_key_never_goes_to_another_host(
    no_proxy_env, relay, emulator, dataset
):
    job_id = _multi_page_job(dataset, pages=2)
    with CloudglueClient(EMULATOR_API_KEY, relay.url + "/moved/v1", page_size=25) as client:
        assert complete(client, job_id) == dataset.complete_job(job_id)
    assert any(t.startswith("/moved/") for t, _h in relay.seen)
    assert all(h["Authorization"] == f"Bearer {EMULATOR_API_KEY}" for _t, h in relay.seen)

    elsewhere = Relay(emulator.base_url)
    try:
        relay.redirect_to = elsewhere.url
        with (
            CloudglueClient(EMULATOR_API_KEY, relay.url + "/moved/v1", max_retries=0) as client,
            pytest.raises(AuthError),
        ):
            client.fetch_job_json(job_id)
        assert elsewhere.seen and all("Authorization" not in h for _t, h in elsewhere.seen)
    finally:
        elsewhere.close()
