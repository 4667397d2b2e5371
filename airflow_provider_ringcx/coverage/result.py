"""What a ledger refresh or read returns: days, their windows, totals, the gaps to repair, the request count.

:meth:`CoverageResult.gaps` is the input of a repair (the audit DAG maps a re-archive over it): each gap has
explicit bounds (ISO-8601 UTC ``start`` and ``end``) and is small as an XCom value. Consecutive ``missing``
(or ``overlapping``) windows of one UTC day are merged into one gap up to ``max_span``, so a day with no run
at all is one gap rather than 96; an ``incomplete`` window is never merged with its neighbours: its
re-archive may stay incomplete (a 403 stays a 403) and would then taint windows that a separate re-archive
would have completed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from airflow_provider_ringcx.coverage.grid import (
    DAY,
    INCOMPLETE,
    PROBLEM_STATES,
    STATES,
    CoverageGrid,
    WindowCoverage,
    iso,
)
from airflow_provider_ringcx.coverage.rollup import DayRollup
from airflow_provider_ringcx.keys import window_part


@dataclass
class RequestCounts:
    """S3 requests one refresh or read made (pages of a LIST count one each)."""

    get: int = 0
    list: int = 0
    put: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"get": self.get, "list": self.list, "put": self.put}


@dataclass(frozen=True)
class DayCoverage:
    """One UTC day: its rollup (windows, facts, totals) and how it was obtained.

    :param source: ``trusted`` (a final rollup, not re-listed), ``listed`` (its reports listed now),
        ``cached`` (read from the rollup only) or ``absent`` (no rollup: nothing known).
    :param written: the rollup was rewritten by this refresh.
    """

    rollup: DayRollup
    source: str
    written: bool = False

    @property
    def day(self) -> date:
        return self.rollup.day

    @property
    def windows(self) -> tuple[WindowCoverage, ...]:
        return self.rollup.windows

    @property
    def final(self) -> bool:
        return self.rollup.final

    def counts(self) -> dict[str, int]:
        counts = {state: 0 for state in STATES}
        for window in self.windows:
            counts[window.state] += 1
        return counts

    def problems(self) -> list[WindowCoverage]:
        return [window for window in self.windows if window.problem]


@dataclass(frozen=True)
class Gap:
    """A stretch of due time to re-archive: one problem window, or consecutive ones merged."""

    start: datetime
    end: datetime
    state: str
    windows: int
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A small, JSON-ready value (an XCom, a mapped task's argument)."""
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "key": window_part(self.start, self.end),
            "state": self.state,
            "windows": self.windows,
            "reasons": list(self.reasons[:3]),
        }


@dataclass(frozen=True)
class CoverageResult:
    """The coverage of ``[start, end)`` (UTC days, end excluded) for one sub-account, as of ``now``."""

    sub_account_id: str
    start: date
    end: date
    grid: CoverageGrid
    now: datetime
    days: tuple[DayCoverage, ...]
    requests: RequestCounts

    def counts(self) -> dict[str, int]:
        """Windows per state, plus recordings, bytes, final days and off-grid reports, over the range."""
        total = {state: 0 for state in STATES}
        for day in self.days:
            for state, count in day.counts().items():
                total[state] += count
        return {
            **total,
            "recordings": sum(day.rollup.recordings for day in self.days),
            "bytes": sum(day.rollup.archived_bytes for day in self.days),
            "final_days": sum(1 for day in self.days if day.final),
            "off_grid": sum(len(day.rollup.off_grid) for day in self.days),
        }

    def problems(self) -> list[WindowCoverage]:
        """Every due window that is not archived (``incomplete``, ``missing``, ``overlapping``), in order."""
        return [window for day in self.days for window in day.problems()]

    @property
    def ok(self) -> bool:
        """Nothing due is missing, incomplete or only partly archived."""
        return not self.problems()

    def gaps(self, *, max_span: timedelta = DAY, limit: int | None = None) -> list[Gap]:
        """The problem windows as re-archive bounds (see the module docstring for the merging rule).

        :param max_span: the longest merged gap (at most a day: gaps never cross midnight UTC).
        :param limit: return at most this many gaps (the earliest), e.g. Airflow's ``max_map_length``.
        """
        gaps: list[Gap] = []
        for window in self.problems():
            last = gaps[-1] if gaps else None
            if (
                last is not None
                and window.state == last.state != INCOMPLETE
                and last.end == window.start
                and last.start.date() == window.start.date()
                and window.end - last.start <= min(max_span, DAY)
            ):
                reasons = tuple(dict.fromkeys([*last.reasons, *window.reasons]))
                gaps[-1] = Gap(last.start, window.end, last.state, last.windows + 1, reasons)
            else:
                gaps.append(Gap(window.start, window.end, window.state, 1, window.reasons))
        return gaps[:limit] if limit is not None else gaps

    def as_dict(self, *, windows: bool = False) -> dict[str, Any]:
        """JSON-ready: range, grid, totals, per-day counts, problems and gaps (and every window's state)."""
        return {
            "sub_account_id": self.sub_account_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "grid": self.grid.as_dict(),
            "as_of": iso(self.now),
            "ok": self.ok,
            "counts": self.counts(),
            "requests": self.requests.as_dict(),
            "days": [
                {
                    "date": day.day.isoformat(),
                    "final": day.final,
                    "source": day.source,
                    **day.counts(),
                    "recordings": day.rollup.recordings,
                    "bytes": day.rollup.archived_bytes,
                    "off_grid": list(day.rollup.off_grid),
                    **({"states": [w.state for w in day.windows]} if windows else {}),
                }
                for day in self.days
            ],
            "problems": [window.as_dict() for window in self.problems()],
            "gaps": [gap.as_dict() for gap in self.gaps()],
        }


__all__ = ["PROBLEM_STATES", "CoverageResult", "DayCoverage", "Gap", "RequestCounts"]
