"""The client's HTTP connections: keep-alive pools through urllib3, the key only in a header."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urljoin

import requests.utils
import urllib3
from requests.adapters import HTTPAdapter

# No retries inside urllib3 (``Calls.get`` owns them) and read errors raised as they are;
# redirects are followed as requests follows them (at most 30), never carrying the key to
# another host.
NO_RETRIES = urllib3.Retry(total=None, connect=0, read=False, status=0, other=0, redirect=30)


class Transport:
    """Keep-alive HTTP(S) connections for one client, through urllib3 without requests' layers.

    ``requests.Session`` spends CPU on every request preparing, hooking, merging the environment
    and wrapping (bench/README.md). What it decides is decided here once, the same way:
    proxies from ``HTTP(S)_PROXY``/``NO_PROXY`` for the base URL, the CA bundle from
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` or certifi, TLS always verified, requests' headers
    (user agent, ``Accept-Encoding``) and the key only in the ``Authorization`` header (no
    ``~/.netrc``). The headers are never shown: ``repr`` redacts them.
    """

    verify = True

    def __init__(self, key: str, base_url: str, maxsize: int) -> None:
        self.headers = {
            "User-Agent": requests.utils.default_user_agent(),
            "Accept-Encoding": requests.utils.DEFAULT_ACCEPT_ENCODING,
            "Accept": "application/json",
            "Connection": "keep-alive",
            "Authorization": f"Bearer {key}",
        }
        bundle = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or requests.utils.DEFAULT_CA_BUNDLE_PATH
        )
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
        tls["ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"] = bundle
        # requests' own pool settings (10 hosts, ``maxsize`` connections each, never blocking).
        adapter = HTTPAdapter(pool_maxsize=maxsize, max_retries=0)
        proxy = requests.utils.select_proxy(base_url, requests.utils.get_environ_proxies(base_url))
        if proxy:
            proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
            self.manager = adapter.proxy_manager_for(proxy, **tls)
        else:
            self.manager = urllib3.PoolManager(num_pools=10, maxsize=maxsize, block=False, **tls)
        # Without a proxy, URLs under the base URL go straight to its host's pool, skipping the
        # manager's parsing and pool lookup, as long as the manager would send them unchanged.
        self._origin = ""
        self._pool: urllib3.HTTPConnectionPool | None = None
        parts = urllib3.util.parse_url(base_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if not proxy and base_url == origin + (parts.path or ""):
            self._origin = origin
            self._pool = self.manager.connection_from_url(base_url)

    def __repr__(self) -> str:
        return "Transport(<headers redacted>)"

    def open(self, url: str, timeout: urllib3.Timeout) -> urllib3.BaseHTTPResponse:
        """Send ``GET url`` and return the response with its body not read yet."""
        pool = self._pool
        if pool is None or not url.startswith(self._origin + "/"):
            return self._open_managed(url, self.headers, NO_RETRIES, timeout)
        response = pool.urlopen(
            "GET",
            url[len(self._origin) :],
            headers=self.headers,
            retries=NO_RETRIES,
            timeout=timeout,
            preload_content=False,
            redirect=False,
            assert_same_host=False,
        )
        location = response.get_redirect_location()
        if not location:
            return response
        # Redirected: this hop as ``PoolManager.urlopen`` takes it (the key's header only to the
        # same host), then the manager follows any further ones.
        location = urljoin(url, location)
        headers = self.headers
        if not pool.is_same_host(location):
            unsafe = NO_RETRIES.remove_headers_on_redirect
            headers = {k: v for k, v in headers.items() if k.lower() not in unsafe}
        retries = NO_RETRIES.increment("GET", url, response=response, _pool=pool)
        response.drain_conn()
        response.release_conn()
        return self._open_managed(location, headers, retries, timeout)

    def _open_managed(
        self, url: str, headers: dict[str, str], retries: urllib3.Retry, timeout: urllib3.Timeout
    ) -> urllib3.BaseHTTPResponse:
        return self.manager.urlopen(
            "GET", url, headers=headers, retries=retries, timeout=timeout, preload_content=False
        )

    def close(self) -> None:
        self.manager.clear()
