"""The client's base URL: where it comes from, and what is wrong with a malformed one.

A rejected value is echoed so the user sees their typo, but never whole: credentials
(``user:password@``), a query and a fragment are left out (any of them may hold a secret), and so
is the API key should it have been pasted in.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from pipeline.cloudglue.errors import ConfigError
from pipeline.settings import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL

_SHOWN_CHARS = 100


def resolve_base_url(base_url: str | None, source: str, secrets: tuple[str, ...] = ()) -> str:
    """The base URL without a trailing slash: ``base_url``, which the user set through ``source``
    (a flag, a resource field), else CLOUDGLUE_BASE_URL, else the public API's.

    Raises ConfigError naming the source, the value as it may be shown, and what is wrong."""
    if base_url is None:
        from_env = os.environ.get(BASE_URL_ENV)
        base_url, source = (from_env, BASE_URL_ENV) if from_env else (DEFAULT_BASE_URL, "default")
    url = base_url.strip()
    problem = base_url_problem(url)
    if problem:
        raise ConfigError(
            f"{source}={shown_base_url(url, secrets)!r} is not a usable Cloudglue base URL: "
            f"{problem}; e.g. {DEFAULT_BASE_URL}"
        )
    return url.rstrip("/")


def base_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a base URL, or None when it is an http(s) URL of a host
    without credentials, query or fragment."""
    if not url:
        return "it is empty"
    # A space would be percent-encoded and a control character sent: a typo, not a path.
    if any(c.isspace() for c in url):
        return "it contains whitespace (a space, tab or line break)"
    if not url.isprintable():
        return "it contains a non-printable character"
    if "://" not in url:
        return "it has no scheme (https:// or http://)"
    if "@" in url:
        return f"it holds credentials (…@); the key goes in {API_KEY_ENV} only"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            return "its port is not a number in 1..65535"
        return f"it does not parse as a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"its scheme is {parts.scheme!r}, not http or https"
    if not parts.hostname:
        return "it has no host"
    if port == 0:
        return "its port is not a number in 1..65535"
    if parts.query:
        return "it has a query (?…); the client adds its own"
    if parts.fragment:
        return "it has a fragment (#…)"
    return None


def shown_base_url(url: str, secrets: tuple[str, ...] = ()) -> str:
    """``url`` as a message may show it: no credentials, query or fragment, no ``secrets``,
    at most about 100 characters."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" in rest:
        rest = "…@" + rest.rpartition("@")[2]
    url = scheme + sep + rest
    for mark in "?#":
        head, found, _ = url.partition(mark)
        url = head + (mark + "…" if found else "")
    for secret in secrets:
        if secret:
            url = url.replace(secret, "<redacted>")
    return url if len(url) <= _SHOWN_CHARS else url[: _SHOWN_CHARS - 1] + "…"
