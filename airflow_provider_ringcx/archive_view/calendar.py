"""The archive page's view models: a day as 24 hour cells of window stripes, totals, state styles.

Nothing here touches S3 or Airflow: it turns a :class:`~airflow_provider_ringcx.coverage.CoverageResult`
into what the templates render, so the tests check it without a server.

A cell is one UTC hour; it holds the grid windows that overlap that hour, each a stripe coloured by its state
(15-minute windows: four stripes; a daily grid: one stripe per hour, the same window). Colour is never the
only cue: every state also has a symbol drawn in its stripe, and every stripe and cell has a title and an
``aria-label`` in words (``14:15-14:30 incomplete: 1 forbidden``, with an en dash).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.coverage import STATES, CoverageResult, DayCoverage, WindowCoverage
from airflow_provider_ringcx.coverage.grid import day_start, span_label
from airflow_provider_ringcx.runinfo import human_bytes

HOUR = timedelta(hours=1)
_DASH = "\u2013"


@dataclass(frozen=True)
class StateStyle:
    """How a state is shown: colour (WCAG AA contrast with white text), symbol and a sentence."""

    name: str
    colour: str
    symbol: str
    meaning: str


#: One place for the legend, the stripes and the tests.
STYLES: dict[str, StateStyle] = {
    "complete": StateStyle("complete", "#1b7f3b", "✓", "archived: the complete reports cover the window"),
    "incomplete": StateStyle(
        "incomplete", "#b35900", "!", "due, and its report says not everything was archived (e.g. a 403)"
    ),
    "missing": StateStyle("missing", "#c0262d", "✗", "due, and no report: no run archived it"),
    "pending": StateStyle("pending", "#6b6f76", "…", "not yet due (window end + lag is in the future)"),
    "overlapping": StateStyle(
        "overlapping", "#6a3fb5", "≈", "only partly archived, by an off-grid report (a manual run)"
    ),
}


@dataclass(frozen=True)
class Stripe:
    """One window in an hour cell."""

    window: WindowCoverage
    label: str

    @property
    def state(self) -> str:
        return self.window.state

    @property
    def part(self) -> str:
        return keys.window_part(self.window.start, self.window.end)

    @property
    def title(self) -> str:
        reason = f": {self.window.reasons[0]}" if self.window.reasons else ""
        return f"{self.label} {self.window.state}{reason}"


@dataclass(frozen=True)
class HourCell:
    hour: int
    stripes: tuple[Stripe, ...]

    @property
    def title(self) -> str:
        counts = {state: 0 for state in STATES}
        for stripe in self.stripes:
            counts[stripe.state] += 1
        parts = ", ".join(f"{count} {state}" for state, count in counts.items() if count)
        return f"{self.hour:02d}:00{_DASH}{self.hour + 1:02d}:00: {parts or 'no window'}"


@dataclass(frozen=True)
class DayRow:
    """A day of the calendar: its cells, its counts per state, totals and where its data came from."""

    day: date
    cells: tuple[HourCell, ...]
    counts: dict[str, int]
    recordings: int
    size: str
    complete: bool
    absent: bool
    off_grid: tuple[str, ...]


@dataclass(frozen=True)
class Totals:
    """A sub-account's totals over the days shown."""

    days: int
    complete_days: int
    recordings: int
    size: str
    size_bytes: int
    counts: dict[str, int]
    absent_days: int


def hour_cells(windows: Sequence[WindowCoverage], day: date) -> tuple[HourCell, ...]:
    """24 cells, each with the windows overlapping its hour (in order)."""
    first = day_start(day)
    cells = []
    for hour in range(24):
        low, high = first + HOUR * hour, first + HOUR * (hour + 1)
        stripes = tuple(
            Stripe(window, span_label(window.start, window.end))
            for window in windows
            if window.start < high and window.end > low
        )
        cells.append(HourCell(hour, stripes))
    return tuple(cells)


def day_row(day: DayCoverage) -> DayRow:
    counts = day.counts()
    windows = day.windows
    return DayRow(
        day=day.day,
        cells=hour_cells(windows, day.day),
        counts=counts,
        recordings=day.rollup.recordings,
        size=human_bytes(day.rollup.archived_bytes),
        complete=bool(windows) and counts["complete"] == len(windows),
        absent=day.source == "absent",
        off_grid=day.rollup.off_grid,
    )


def calendar(result: CoverageResult) -> tuple[list[DayRow], Totals]:
    """The rows, newest day first, and the totals of the range."""
    rows = [day_row(day) for day in result.days]
    counts = result.counts()
    totals = Totals(
        days=len(rows),
        complete_days=sum(1 for row in rows if row.complete),
        recordings=int(counts["recordings"]),
        size=human_bytes(int(counts["bytes"])),
        size_bytes=int(counts["bytes"]),
        counts={state: int(counts[state]) for state in STATES},
        absent_days=sum(1 for row in rows if row.absent),
    )
    return rows[::-1], totals


def find_window(day: DayCoverage, start: datetime, end: datetime) -> WindowCoverage | None:
    """The grid window ``[start, end)`` of a day, if it is one."""
    return next((w for w in day.windows if (w.start, w.end) == (start, end)), None)


def recordings_prefix(template: str, prefix: str, sub: str, start: datetime, end: datetime) -> str:
    """The narrowest S3 prefix holding a window's recordings (as the "S3 recordings" extra link)."""
    last = max(start, end - timedelta(seconds=1))
    return keys.partition_prefix(template=template, prefix=prefix, sub_account_id=sub, starts=[start, last])
