"""Deterministic fault injection for the emulator.

Every decision is a pure function of ``(seed, fault kind, request target, attempt)`` where the
target is the raw path plus query and ``attempt`` counts earlier requests for that same target.
A target chosen for a fault fails for its first ``burst`` attempts and then succeeds, so a client
whose retry limit exceeds ``burst`` always gets through, and one whose limit does not sees the
fault outlast its retries. ``retry_after_header`` and ``describe_inconsistently`` say how a fault
shows in a response; the server and its routes apply them.
"""

from __future__ import annotations

import email.utils
import hashlib
import time
from dataclasses import dataclass, fields
from typing import Any

import orjson

FAULT_KINDS = (
    "drop",
    "slow",
    "trickle",
    "server_error",
    "rate_limit",
    "truncate",
    "changing_total",
)
# Decided per pass over a list query (``shifts_list``) or per job (``inconsistency``), not per
# request target.
LIST_FAULT_KINDS = ("shifting_list", "inconsistent_job")
RETRY_AFTER_STYLES = ("seconds", "none", "http-date")
TRUNCATE_STYLES = ("content-length", "invalid-json", "mixed")
# How an ``inconsistent_job`` is described; "mixed" picks one per job.
INCONSISTENCIES = ("no-data", "null-data", "no-total", "total-too-high", "non-object-entities")


def _unit(*parts: object) -> float:
    """A stable number in [0, 1) from its parts."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Which faults the emulator injects; all rates are 0 (off) by default.

    Rates are the share of distinct request targets (path + query) that get the fault; each
    kind draws independently and the first in ``FAULT_KINDS`` order wins.

    - ``seed``: varies which targets are hit; same seed, same faults.
    - ``burst``: attempts in a row at a hit target that fail before it answers normally.
    - ``drop``: close the socket without sending any response.
    - ``slow``: answer normally but only after ``slow_seconds`` (make it exceed the client's
      timeout to test timeouts).
    - ``slow_seconds``: delay of a ``slow`` response.
    - ``trickle``: send the status line and headers at once, then the body in small pieces
      spread over ``trickle_seconds``: each read gets data soon, the whole body takes long.
    - ``trickle_seconds``: how long a ``trickle`` body takes.
    - ``server_error``: answer 500, 502 or 503 (picked per attempt); 502 has an HTML body like a
      gateway, 500/503 the API's ``{"error": ...}``.
    - ``rate_limit``: answer 429 ``{"error": ...}``.
    - ``retry_after``: the 429's ``Retry-After`` header: ``"seconds"`` (integer
      ``retry_after_seconds``), ``"none"`` (no header) or ``"http-date"`` (now +
      ``retry_after_seconds`` as an IMF-fixdate).
    - ``retry_after_seconds``: the delay ``Retry-After`` announces.
    - ``truncate``: send a broken body: ``truncate_style`` ``"content-length"`` declares the
      full length, sends half and closes; ``"invalid-json"`` sends half of the JSON with a
      matching Content-Length; ``"mixed"`` picks one per attempt.
    - ``changing_total``: on pages with ``offset > 0`` of a completed job, report a ``total``
      larger by 1-3 than the first page did (the segment entities themselves are unchanged).
    - ``shifting_list``: the share of list queries (their parameters but ``offset``) that change
      while paged: during the first ``burst`` passes over a hit query (a pass starts with its
      page at offset 0), pages with ``offset > 0`` answer as if a job before the offset had been
      deleted and another added after the page: the items move up by one (the one at the page
      edge is never served there) while ``total`` stays the same.
    - ``inconsistent_job``: the share of completed jobs the API describes inconsistently on every
      page and every attempt, as ``inconsistency`` says: ``"no-data"`` (no ``data``),
      ``"null-data"`` (``data: null``), ``"no-total"`` (no ``total``), ``"total-too-high"``
      (``total`` 2 more than the segment entities there are), ``"non-object-entities"`` (every
      segment entity a string) or ``"mixed"`` (one of them per job).
    - ``duplicate_delivery``: the share of webhook events delivered a second time (same
      ``event_id``) after their first delivery was answered 200, as senders that retry on a lost
      answer do (not a request fault: ``active`` ignores it).
    - ``page_cap``: not a rate; when > 0, every page (list and job) holds at most this many items
      whatever ``limit`` asked, and reports ``limit`` as this cap, like an API or proxy that caps
      pages lower than asked.
    """

    seed: int = 0
    burst: int = 1
    drop: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 2.0
    trickle: float = 0.0
    trickle_seconds: float = 3.0
    server_error: float = 0.0
    rate_limit: float = 0.0
    retry_after: str = "seconds"
    retry_after_seconds: int = 1
    truncate: float = 0.0
    truncate_style: str = "mixed"
    changing_total: float = 0.0
    shifting_list: float = 0.0
    inconsistent_job: float = 0.0
    inconsistency: str = "mixed"
    page_cap: int = 0
    duplicate_delivery: float = 0.0

    def __post_init__(self) -> None:
        for kind in (*FAULT_KINDS, *LIST_FAULT_KINDS, "duplicate_delivery"):
            if not 0.0 <= getattr(self, kind) <= 1.0:
                raise ValueError(f"fault rate {kind} must be within 0..1")
        if self.burst < 1:
            raise ValueError("burst must be >= 1")
        if self.inconsistency not in (*INCONSISTENCIES, "mixed"):
            raise ValueError(f"inconsistency must be one of {INCONSISTENCIES} or 'mixed'")
        if self.page_cap < 0:
            raise ValueError("page_cap must be >= 0 (0: off)")
        if self.retry_after not in RETRY_AFTER_STYLES:
            raise ValueError(f"retry_after must be one of {RETRY_AFTER_STYLES}")
        if self.truncate_style not in TRUNCATE_STYLES:
            raise ValueError(f"truncate_style must be one of {TRUNCATE_STYLES}")

    @property
    def active(self) -> bool:
        return any(getattr(self, kind) > 0 for kind in FAULT_KINDS + LIST_FAULT_KINDS)

    def decide(self, target: str, attempt: int) -> str | None:
        """The fault kind for this attempt at ``target``, or None to answer normally."""
        if attempt >= self.burst:
            return None
        for kind in FAULT_KINDS:
            rate = getattr(self, kind)
            if rate > 0 and _unit(self.seed, kind, target) < rate:
                return kind
        return None

    def shifts_list(self, query: str, passes: int) -> bool:
        """Whether pass number ``passes`` (1-based) over the list ``query`` is shifted."""
        return (
            0 < passes <= self.burst
            and _unit(self.seed, "shifting_list", query) < self.shifting_list
        )

    def inconsistency_of(self, job_id: str) -> str | None:
        """How the completed job ``job_id`` is described inconsistently, or None."""
        if (
            not self.inconsistent_job
            or _unit(self.seed, "inconsistent", job_id) >= self.inconsistent_job
        ):
            return None
        if self.inconsistency != "mixed":
            return self.inconsistency
        return INCONSISTENCIES[
            int(_unit(self.seed, "inconsistency", job_id) * len(INCONSISTENCIES))
        ]

    def duplicates_delivery(self, event_id: str) -> bool:
        """Whether the webhook event ``event_id`` is delivered twice."""
        return _unit(self.seed, "duplicate_delivery", event_id) < self.duplicate_delivery

    def server_error_status(self, target: str, attempt: int) -> int:
        return (500, 502, 503)[int(_unit(self.seed, "status", target, attempt) * 3)]

    def truncate_as_json(self, target: str, attempt: int) -> bool:
        """True: valid HTTP carrying invalid JSON; False: a body shorter than Content-Length."""
        if self.truncate_style == "mixed":
            return _unit(self.seed, "truncate", target, attempt) < 0.5
        return self.truncate_style == "invalid-json"

    def total_delta(self, target: str) -> int:
        return 1 + int(_unit(self.seed, "delta", target) * 3)

    def retry_after_header(self) -> dict[str, str]:
        """The ``Retry-After`` header of a 429, as ``retry_after`` says (none: empty)."""
        style, seconds = self.retry_after, self.retry_after_seconds
        if style == "none":
            return {}
        if style == "http-date":
            return {"Retry-After": email.utils.formatdate(time.time() + seconds, usegmt=True)}
        return {"Retry-After": str(seconds)}

    @classmethod
    def from_specs(cls, specs: list[str]) -> FaultConfig:
        """Build from CLI ``--fault`` specs such as ``429=0.1``, ``5xx=0.05`` or ``burst=3``.

        Aliases: ``429`` = rate_limit, ``5xx`` = server_error, ``total`` = changing_total;
        ``FAULT_HELP`` lists them all for ``cloudglue-pipeline emulator --help``;
        dashes may stand for underscores; any other field is given by its name.
        """
        aliases = {"429": "rate_limit", "5xx": "server_error", "total": "changing_total"}
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, object] = {}
        for spec in specs:
            name, sep, raw = spec.partition("=")
            name = aliases.get(name.strip(), name.strip().replace("-", "_"))
            if not sep or name not in types:
                raise ValueError(
                    f"bad --fault {spec!r}; expected NAME=VALUE, NAME one of "
                    f"{sorted([*aliases, *types])}"
                )
            kind = types[name]
            values[name] = int(raw) if kind == "int" else float(raw) if kind == "float" else raw
        return cls(**values)  # type: ignore[arg-type]


def describe_inconsistently(body: dict[str, Any], how: str) -> None:
    """Change a completed job's page as the ``inconsistent_job`` fault says (see FaultConfig)."""
    if how == "no-data":
        body.pop("data", None)
    elif how == "null-data":
        body["data"] = None
    elif how == "no-total":
        body.pop("total", None)
    elif how == "total-too-high":
        body["total"] += 2
    else:
        data = body["data"] = dict(body["data"])
        data["segment_entities"] = [orjson.dumps(s).decode() for s in data["segment_entities"]]


FAULT_HELP = """\
--fault NAME=VALUE (repeatable) configures FaultConfig; every rate is the share (0..1) of
distinct request URLs hit, and a hit URL fails for its first `burst` attempts, then succeeds:
  429=R / rate_limit=R        answer 429 {"error": ...}
  5xx=R / server_error=R      answer 500, 502 (HTML body) or 503
  drop=R                      close the connection without a response
  slow=R                      answer after slow-seconds (default 2)
  trickle=R                   send the body in small pieces over trickle-seconds (default 3)
  truncate=R                  broken body (see truncate-style)
  total=R / changing_total=R  pages with offset>0 report a larger `total`
  shifting-list=R             list queries whose pages with offset>0 move up by one item
                              (same `total`) during the first `burst` passes over them
  page-cap=N                  at most N items per page whatever `limit` asked (0: off)
  inconsistent-job=R          share of completed jobs described inconsistently (every time)
  inconsistency=no-data|null-data|no-total|total-too-high|non-object-entities|mixed
                              how (default mixed: one per job)
  duplicate-delivery=R        share of webhook events delivered twice (same event_id)
  burst=N                     failing attempts per hit URL (default 1)
  retry-after=seconds|none|http-date   Retry-After header style of 429s (default seconds)
  retry-after-seconds=N       delay announced by Retry-After (default 1)
  slow-seconds=S              delay of slow answers
  trickle-seconds=S           how long a trickled body takes
  truncate-style=content-length|invalid-json|mixed (default mixed)
  seed=N                      which URLs are hit (default 0)
example: --fault 429=0.1 --fault 5xx=0.05 --fault burst=2 --fault retry-after=http-date
"""
