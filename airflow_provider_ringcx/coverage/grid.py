"""The coverage grid and the classification of its windows from the reports found in the archive.

The grid is the set of windows a sub-account *should* have: ``interval``-long windows tiling each UTC day
from midnight (15 minutes for the live DAG; ``1d`` for the history DAG's whole days). A grid window is
judged only by what the archive holds, the window reports (:mod:`airflow_provider_ringcx.report`), never
by Airflow's run states: a run marked success with 0 task instances leaves no report, so its window is
``missing`` here whatever the UI shows.

Reports of any size count. A grid window is **covered** when the union of the *complete* reports' windows
covers it, so one complete daily report covers all 96 quarter-hours of its day, and four complete 15-minute
reports cover an hourly grid window. The states, in the order they are decided:

``complete``
    the union of complete reports covers the window (due or not).
``pending``
    not covered and not yet due: ``end + lag`` is after the clock. Nothing is expected yet.
``incomplete``
    due, not covered, and a report overlapping it says it is not complete; its counts and reasons are kept.
``overlapping``
    due, not covered, and only complete reports that do not cover it overlap it: an off-grid report (a
    manual run at 18:40-18:55 against a 15-minute grid) archived part of it, the rest is not archived.
``missing``
    due and no report overlaps it. Whether a manifest exists says how far its run got.

``incomplete``, ``overlapping`` and ``missing`` are the *problems*: each needs a re-archive of its bounds.
An off-grid report that overlaps windows which are covered anyway is no problem, but it is listed with the
day (``off_grid``) so that a stray manual run is noticed.

Nothing here touches S3 or the clock (the caller passes ``now``), so the ledger and its tests share it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.models import iso
from airflow_provider_ringcx.windows import Window

if TYPE_CHECKING:
    from airflow_provider_ringcx.coverage.facts import ReportFact

COMPLETE, INCOMPLETE, MISSING, PENDING, OVERLAPPING = (
    "complete",
    "incomplete",
    "missing",
    "pending",
    "overlapping",
)
STATES = (COMPLETE, INCOMPLETE, MISSING, PENDING, OVERLAPPING)
#: States of a due window that is not archived: the gaps to repair, and a non-zero CLI exit.
PROBLEM_STATES = (INCOMPLETE, MISSING, OVERLAPPING)
DAY = timedelta(days=1)
_DASH = "\u2013"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 60}


def parse_duration(text: str | int | timedelta, *, name: str = "duration") -> timedelta:
    """``15m``, ``1h``, ``1d``, ``900s`` or a bare number of minutes, as a timedelta.

    :raises RingCXConfigError: anything else (the message names ``name`` and the accepted forms).
    """
    if isinstance(text, timedelta):
        return text
    match = _DURATION.match(str(text))
    if not match:
        raise RingCXConfigError(f"{name}={text!r} is not a duration; use e.g. 15m, 1h, 1d or 900s")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


@dataclass(frozen=True)
class CoverageGrid:
    """Windows of ``interval`` tiling every UTC day from midnight; a window is due at ``end + lag``.

    :param interval: the window length; it must divide a day (15 minutes, 1 hour, 1 day...).
    :param lag: how long after a window's end its report is expected (the live DAG's settle lag, plus
        the run's duration if you want a margin). 0 or more.
    :raises RingCXConfigError: an interval that does not divide a day, or a negative lag.
    """

    interval: timedelta = timedelta(minutes=15)
    lag: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        seconds = self.interval.total_seconds()
        if seconds <= 0 or seconds != int(seconds) or DAY.total_seconds() % seconds:
            raise RingCXConfigError(
                f"coverage interval {self.interval} does not divide a day into whole windows; use 15m (the "
                "live DAG's windows), 1h or 1d (the history DAG's)"
            )
        if self.lag < timedelta(0):
            raise RingCXConfigError(f"coverage lag {self.lag} is negative; use 0 or more, e.g. 15m")

    @property
    def per_day(self) -> int:
        return int(DAY / self.interval)

    def windows(self, day: date) -> list[Span]:
        """The grid windows of a UTC day, in order."""
        first = day_start(day)
        return [Span(first + self.interval * i, first + self.interval * (i + 1)) for i in range(self.per_day)]

    def aligned(self, start: datetime, end: datetime) -> bool:
        """Both bounds on the grid: the window is a whole number of grid windows (a daily report is)."""
        return all(
            (moment - day_start(moment.astimezone(timezone.utc).date())) % self.interval == timedelta(0)
            for moment in (start, end)
        )

    def due(self, window: Span | Window, now: datetime) -> bool:
        return window.end + self.lag <= now

    def as_dict(self) -> dict[str, int]:
        return {
            "interval_seconds": int(self.interval.total_seconds()),
            "lag_seconds": int(self.lag.total_seconds()),
        }


class Span(NamedTuple):
    """A grid window's bounds (UTC, aware): a light :class:`~airflow_provider_ringcx.windows.Window`."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class WindowCoverage:
    """The state of one grid window, with why (for problems) and which reports decided it."""

    start: datetime
    end: datetime
    state: str
    reasons: tuple[str, ...] = ()
    reports: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def window(self) -> Window:
        return Window(self.start, self.end)

    @property
    def problem(self) -> bool:
        return self.state in PROBLEM_STATES

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"start": iso(self.start), "end": iso(self.end), "state": self.state}
        if self.reasons:
            data["reasons"] = list(self.reasons)
        if self.reports:
            data["reports"] = list(self.reports)
        if self.counts:
            data["counts"] = dict(self.counts)
        return data


def uncovered(start: datetime, end: datetime, spans: Iterable[tuple[datetime, datetime]]) -> list[tuple]:
    """The parts of ``[start, end)`` that the union of ``spans`` leaves uncovered, in order."""
    gaps, cursor = [], start
    for span_start, span_end in sorted(spans):
        if span_end <= cursor or span_start >= end:
            continue
        if span_start > cursor:
            gaps.append((cursor, span_start))
        cursor = max(cursor, span_end)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def span_label(start: datetime, end: datetime) -> str:
    """``14:15-14:30`` (en dash), ``00:00-24:00`` for a whole day; with dates when it spans two days."""
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    if end - start <= DAY and end.date() == start.date():
        return f"{start:%H:%M}{_DASH}{end:%H:%M}"
    if end - start <= DAY and end == day_start(start.date()) + DAY:
        return f"{start:%H:%M}{_DASH}24:00"
    return f"{start:%Y-%m-%d %H:%M}{_DASH}{end:%Y-%m-%d %H:%M}"


def classify(
    window: Span | Window,
    facts: Sequence[ReportFact],
    grid: CoverageGrid,
    now: datetime,
    *,
    manifests: Iterable[tuple[datetime, datetime]] | None = None,
) -> WindowCoverage:
    """Decide the state of one grid window (see the module docstring for the rules and their order).

    :param facts: the reports that may overlap the window (others are ignored).
    :param manifests: the windows that have a manifest, for the reason of a ``missing`` window (``None``:
        not listed, the reason says so).
    """
    start, end = window.start, window.end
    over = [fact for fact in facts if fact.start < end and fact.end > start]
    done = [fact for fact in over if fact.complete]
    holes = uncovered(start, end, [(fact.start, fact.end) for fact in done])
    if not holes:
        return WindowCoverage(start, end, COMPLETE, reports=tuple(sorted(f.key for f in done)))
    if not grid.due(window, now):
        return WindowCoverage(start, end, PENDING, reports=tuple(sorted(f.key for f in over)))
    bad = [fact for fact in over if not fact.complete]
    if bad:
        reasons: list[str] = []
        counts: dict[str, int] = {}
        for fact in sorted(bad, key=lambda f: (f.start, f.end)):
            why = "; ".join(fact.reasons) or "says it is not complete"
            reasons.append(f"report {fact.window_label()}: {why}")
            for name in ("expected", "archived", "not_archived"):
                counts[name] = counts.get(name, 0) + getattr(fact, name)
        return WindowCoverage(
            start, end, INCOMPLETE, tuple(dict.fromkeys(reasons)), tuple(f.key for f in bad), counts
        )
    if done:
        by = ", ".join(fact.window_label() for fact in sorted(done, key=lambda f: f.start))
        missing = ", ".join(span_label(a, b) for a, b in holes)
        reason = f"only partly archived, by off-grid report(s) {by}; {missing} has no report"
        return WindowCoverage(start, end, OVERLAPPING, (reason,), tuple(f.key for f in done))
    if manifests is None:
        reason = "no report (manifests not listed)"
    elif any(m_start < end and m_end > start for m_start, m_end in manifests):
        reason = (
            "a manifest but no report: its run fetched the metadata and stopped before the report (see the "
            "run's download and report tasks)"
        )
    else:
        reason = "no report and no manifest: no run archived it (a run with 0 task instances, or never run)"
    return WindowCoverage(start, end, MISSING, (reason,))


def day_totals(facts: Sequence[ReportFact]) -> tuple[int, int]:
    """Recordings and bytes archived by a day's reports, each stretch of time counted once.

    Reports may overlap (a daily report and quarter-hours of the same day, an off-grid re-run): they are
    taken complete first, then longest (then by key), and one that overlaps a report already taken is left
    out, so the same recordings are not added twice.
    """
    taken: list[ReportFact] = []
    for fact in sorted(facts, key=lambda f: (not f.complete, -(f.end - f.start).total_seconds(), f.key)):
        if all(fact.end <= other.start or fact.start >= other.end for other in taken):
            taken.append(fact)
    return sum(f.archived for f in taken), sum(f.archived_bytes for f in taken)
