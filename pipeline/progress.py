"""Progress and summary of a command-line sync.

The CLI runs ranges of days through the Dagster assets in-process; the assets cannot take a
callback through Dagster's config, so the CLI installs a :class:`ProgressReporter` in a context
variable (:func:`reporting`) and the assets pass :func:`current_reporter` as ``sync_range``'s
``progress`` callback. Runs started by ``dagster dev`` have no reporter and report
nothing. The reporter writes to stderr: one live line redrawn in place on a terminal, plain lines
every few seconds otherwise (logs, CI), and a line per finished day either way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TextIO

ProgressCallback = Callable[[str, dict[str, Any]], None]

_current: ContextVar[ProgressCallback | None] = ContextVar("cloudglue_progress", default=None)


def current_reporter() -> ProgressCallback | None:
    """The progress callback of the sync running in this context, if any."""
    return _current.get()


@contextlib.contextmanager
def reporting(callback: ProgressCallback | None) -> Iterator[None]:
    """Make ``callback`` the :func:`current_reporter` inside the block."""
    token = _current.set(callback)
    try:
        yield
    finally:
        _current.reset(token)


@dataclass
class DaySummary:
    """What one day's run did: the summary table's row (from the run's metadata)."""

    day: dt.date
    seconds: float
    ok: bool = True
    listed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    fetched: int = 0
    already_landed: int = 0
    skipped_jobs: list[str] = field(default_factory=list)
    segment_rows: int = 0
    failed_checks: list[str] = field(default_factory=list)
    # Nothing changed upstream since the day was built: no run was needed.
    unchanged: bool = False


class ProgressReporter:
    """Receives ``sync_range`` events (``listed`` per day, ``fetched`` per job) plus the start of
    each span of days and the end of each day.

    Thread-safe: the callback may be called from any thread. ``live`` defaults to whether the
    stream is a terminal; ``interval`` is the seconds between plain lines when not live.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_print = float("-inf")
        self._days_total = 0
        self._days_done = 0
        self._span = ""
        self._listed = 0
        self._to_fetch: int | None = None
        self._fetched = 0
        self._segments = 0
        self._jobs_total = 0
        self._segments_total = 0
        self._line_width = 0

    def start(self, days_total: int) -> None:
        with self._lock:
            self._days_total = days_total
            self._started = self.clock()

    def start_span(self, first: dt.date, last: dt.date) -> None:
        """A run over the days ``first..last`` begins: its counters start from zero."""
        with self._lock:
            self._span = span_text((first, last))
            self._listed = self._fetched = self._segments = 0
            self._to_fetch = None
            if self.live:
                self._emit(force=True)

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        with self._lock:
            if event == "listed":
                self._listed += int(data.get("listed", 0))
                self._to_fetch = (self._to_fetch or 0) + int(data.get("to_fetch", 0))
            elif event == "fetched":
                self._fetched += 1
                self._segments += int(data.get("segments", 0))
                self._jobs_total += 1
                self._segments_total += int(data.get("segments", 0))
            else:
                return
            self._emit(force=event == "listed")

    def finish_day(self, summary: DaySummary) -> None:
        with self._lock:
            self._days_done += 1
            self._write_line(day_line(summary))
            self._last_print = self.clock()

    def close(self) -> None:
        with self._lock:
            self._clear()

    # ---- output (callers hold the lock) --------------------------------------------------

    def _status(self) -> str:
        elapsed = max(self.clock() - self._started, 1e-9)
        head = f"[{self._days_done}/{self._days_total} days] {self._span}"
        if self._to_fetch is None:
            return f"{head}  listing..."
        return (
            f"{head}  jobs {self._fetched}/{self._to_fetch} of {self._listed} listed  "
            f"segments {self._segments}  {self._jobs_total / elapsed:.1f} jobs/s "
            f"{self._segments_total / elapsed:.0f} seg/s"
        )

    def _emit(self, *, force: bool = False) -> None:
        now = self.clock()
        if self.live:
            if force or now - self._last_print >= 0.1:
                text = self._status()[: shutil.get_terminal_size().columns - 1]
                pad = max(self._line_width - len(text), 0)
                self.stream.write("\r" + text + " " * pad)
                self.stream.flush()
                self._line_width = len(text)
                self._last_print = now
        elif now - self._last_print >= self.interval:
            self.stream.write(self._status() + "\n")
            self.stream.flush()
            self._last_print = now

    def _clear(self) -> None:
        if self.live and self._line_width:
            self.stream.write("\r" + " " * self._line_width + "\r")
            self.stream.flush()
            self._line_width = 0

    def _write_line(self, text: str) -> None:
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()


def span_text(days: Sequence[dt.date]) -> str:
    """Sorted days as a span: ``A`` for one day, ``A..B`` for more."""
    return str(days[0]) if days[0] == days[-1] else f"{days[0]}..{days[-1]}"


def day_state(summary: DaySummary) -> str:
    return "FAILED" if not summary.ok else "unchanged" if summary.unchanged else "done"


def day_line(summary: DaySummary) -> str:
    """The line that reports a finished day."""
    return (
        f"{summary.day} {day_state(summary)}: {summary.listed} jobs listed, {summary.fetched} "
        f"fetched, {summary.segment_rows} segment entities, {summary.seconds:.1f} s"
    )


def by_status_text(counts: dict[str, int]) -> str:
    """``completed 5, failed 1``: jobs by status, in a cell of a table."""
    return ", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or "-"


def render_summary(days: Sequence[DaySummary], total_seconds: float) -> str:
    """The end-of-sync table: one row per day, a totals row and the overall rate."""
    header = ("day", "listed", "by status", "fetched", "landed before", "segments", "seconds")
    rows = [
        (
            str(s.day) + ("" if s.ok else " FAILED") + (" (unchanged)" if s.unchanged else ""),
            str(s.listed),
            by_status_text(s.by_status),
            str(s.fetched),
            str(s.already_landed),
            str(s.segment_rows),
            f"{s.seconds:.1f}",
        )
        for s in days
    ]
    totals: dict[str, int] = {}
    for s in days:
        for status, n in s.by_status.items():
            totals[status] = totals.get(status, 0) + n
    fetched = sum(s.fetched for s in days)
    segments = sum(s.segment_rows for s in days)
    rows.append(
        (
            "total",
            str(sum(s.listed for s in days)),
            by_status_text(totals),
            str(fetched),
            str(sum(s.already_landed for s in days)),
            str(segments),
            f"{total_seconds:.1f}",
        )
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    numeric = {1, 3, 4, 5, 6}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows[:-1]]
    out += [line(["-" * w for w in widths]), line(rows[-1])]
    elapsed = max(total_seconds, 1e-9)
    out.append(
        f"{len(days)} day(s), {fetched} jobs fetched, {segments} segment entities in "
        f"{total_seconds:.1f} s ({fetched / elapsed:.1f} jobs/s, {segments / elapsed:.0f} "
        "segment entities/s)"
    )
    for s in days:
        for line in s.skipped_jobs:
            out.append(f"warning: {s.day}: skipped job {line}")
    for s in days:
        for check in s.failed_checks:
            out.append(f"warning: {s.day}: check {check} failed (see the run in the Dagster UI)")
    return "\n".join(out)
