"""Runs off the schedule's grid, and runs without a data interval, are refused with the way to do it right.

The archive's windows tile time because every run's data interval is one step of the schedule's grid:
``[F - interval, F)`` for a fire time ``F`` of the cron. Two kinds of run break that:

- **A manual or REST run with an off-grid logical date.** ``CronTriggerTimetable`` gives a manual run the
  data interval ``[logical_date - interval, logical_date)`` whatever the logical date: 14:07 gives
  ``[13:52, 14:07)``, a window that overlaps two scheduled ones. Archiving it would write a manifest and a
  report for a window nobody reconciles against the scheduled ones, and recordings of two windows under a
  third. Snapping it silently to the grid could archive a window the user did not mean. It is refused:
  the message names the two grid-aligned logical dates around it and the backfill command.
- **A run without a data interval** (Airflow 3 REST ``POST /dagRuns`` without ``logical_date``). There is
  no window to archive; it is refused the same way, with the latest grid-aligned logical date.

Both are configuration errors (:class:`~airflow_provider_ringcx.exceptions.RingCXConfigError`): the task
fails without retries (see :mod:`~airflow_provider_ringcx.failfast`). docs/operations.md: "Logical dates
and manual runs".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.models import iso

README_SECTION = "section 'Logical dates and manual runs' of docs/operations.md"


@dataclass(frozen=True)
class Grid:
    """A cron schedule with a fixed data interval: every data interval is ``[F - interval, F)``."""

    expression: str
    tz: Any  # a tzinfo (pendulum or zoneinfo)
    tz_name: str
    interval: timedelta

    @classmethod
    def of(cls, timetable: Any) -> Grid | None:
        """The grid of a ``CronTriggerTimetable`` (``expression``, ``timezone``, ``interval``), else ``None``
        (another timetable: no grid check)."""
        import pendulum

        expression = getattr(timetable, "expression", None)
        interval = getattr(timetable, "interval", None)
        tz = getattr(timetable, "timezone", None) or "UTC"
        if not isinstance(expression, str) or not isinstance(interval, timedelta) or not interval:
            return None
        zone = pendulum.timezone(tz) if isinstance(tz, str) else tz
        return cls(expression, zone, str(getattr(zone, "name", tz)), interval)

    def at_or_before(self, moment: datetime) -> datetime:
        """The latest fire time ``<= moment`` (UTC)."""
        from croniter import croniter

        local = moment.astimezone(self.tz) + timedelta(microseconds=1)
        return croniter(self.expression, local).get_prev(datetime).astimezone(timezone.utc)

    def after(self, moment: datetime) -> datetime:
        """The earliest fire time ``> moment`` (UTC)."""
        from croniter import croniter

        return (
            croniter(self.expression, moment.astimezone(self.tz)).get_next(datetime).astimezone(timezone.utc)
        )

    def describe(self) -> str:
        minutes = self.interval.total_seconds() / 60
        return f"cron {self.expression!r} in {self.tz_name}, data interval {minutes:g} minutes"


def _option(grid: Grid, fire: datetime, lag: timedelta) -> str:
    start, end = fire - grid.interval, fire
    return (
        f"logical date {iso(fire)} (data interval {iso(start)} - {iso(end)}, archives "
        f"{iso(start - lag)} - {iso(end - lag)})"
    )


def _backfill(dag_id: str, first: datetime, last: datetime) -> str:
    return (
        f"airflow backfill create --dag-id {dag_id} --from-date {iso(first)} --to-date {iso(last)} "
        "--reprocess-behavior failed"
    )


def check_data_interval(
    timetable: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    lag: timedelta,
    dag_id: str,
    now: datetime | None = None,
) -> None:
    """Refuse a run without a data interval, or with one off the schedule's grid.

    :param timetable: the DAG's timetable (a ``CronTriggerTimetable``; other timetables are not checked
        for alignment).
    :param now: the run's ``run_after`` (or the current time), for the suggestion when there is no interval.
    :raises RingCXConfigError: no data interval, or an interval that is not one step of the grid.
    """
    grid = Grid.of(timetable)
    if start is None or end is None:
        hint = "trigger it with a logical date on the schedule's grid"
        if grid is not None:
            latest = grid.at_or_before(now or datetime.now(timezone.utc))
            hint += f" ({grid.describe()}), e.g. {_option(grid, latest, lag)}"
        raise RingCXConfigError(
            "the run has no data interval (an Airflow 3 REST trigger without logical_date?), so it has no "
            f"window to archive and is refused, not retried: {hint}; or backfill a range with 'airflow "
            f"backfill create --dag-id {dag_id} --from-date <first> --to-date <last>'. "
            f"See the {README_SECTION}"
        )
    if grid is None:
        return
    aligned = grid.at_or_before(end)
    if aligned == end.astimezone(timezone.utc) and end - start == grid.interval:
        return
    before = aligned if aligned < end else grid.at_or_before(end - timedelta(microseconds=1))
    after = grid.after(before)
    raise RingCXConfigError(
        f"the run's data interval {iso(start)} - {iso(end)} is not on the schedule's grid "
        f"({grid.describe()}): its window would overlap two scheduled windows, so the run is refused, not "
        f"retried (nothing was archived). Trigger the window you mean with {_option(grid, before, lag)} or "
        f"{_option(grid, after, lag)}, or backfill the range: '{_backfill(dag_id, before, after)}'. "
        f"See the {README_SECTION}"
    )
