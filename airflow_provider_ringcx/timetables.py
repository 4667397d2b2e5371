"""A timetable for DAGs that run only when asked: a grid of fixed intervals that backfills walk, no schedule.

The history DAG (``ringcx_recordings_history``) archives whole UTC days, but only days someone asks for:
``airflow backfill create``, the UI's "Run Backfill" form or ``POST /api/v2/backfills``. Airflow 3.3 offers
no built-in timetable for that:

- ``schedule=None`` (``NullTimetable``) is not *periodic*: backfills are refused ("non-periodic schedule").
- A daily cron timetable with ``catchup=False`` runs yesterday as soon as the DAG is unpaused, and every day
  after, duplicating the live DAG's work; and a paused DAG's backfill runs never start.
- ``allowed_run_types`` without ``SCHEDULED`` is refused for a DAG that has a schedule; a DAG ``end_date``
  in the past also stops the backfill's tasks (the "Logical Date" dependency); a future ``start_date``
  creates manual runs with no task instances.

:class:`BackfillOnlyTimetable` is a ``CronDataIntervalTimetable`` (a run's logical date is the start of its
interval, so a backfill's dates name the days it archives) that answers only bounded questions. A backfill
asks for the runs between its ``--from-date`` and ``--to-date`` (a ``TimeRestriction`` with a ``latest``)
and gets every grid step in it; the scheduler asks for the DAG's next run with no upper bound (the DAG has
no ``end_date``) and gets none, so the DAG may stay unpaused and never runs by itself. A manual run (the
Trigger button) with a logical date on the grid archives the interval it starts, as a backfill run does;
one inside an interval archives the last whole interval before it.

A custom timetable must be registered with every Airflow component that deserializes DAGs (dag-processor,
scheduler, API server): :class:`RingCXTimetablesPlugin` is the distribution's ``airflow.plugins`` entry
point, so installing the provider registers it (a provider info ``plugins`` entry would only be loaded with
``[core] lazy_load_providers = False``).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_ringcx.exceptions import RingCXConfigError

if TYPE_CHECKING:
    from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
    from pendulum import DateTime


class BackfillOnlyTimetable(CronDataIntervalTimetable):
    """A cron grid of fixed intervals that only backfills (and manual runs) use; it never schedules a run.

    Each run's data interval is one step of ``cron``, ``[F, next F)``, and its logical date is the step's
    start (a ``CronDataIntervalTimetable``): ``airflow backfill create --from-date 2026-03-01 --to-date
    2026-03-02`` archives the days of March 1 and March 2 (each shifted back by the DAG's settle lag).

    :param cron: the grid, e.g. ``"0 0 * * *"`` (every UTC midnight: one day per run). It must fire at a
        fixed period (the data interval), so that the runs tile time.
    :param timezone: the time zone ``cron`` is read in (UTC for days: local days are 23 or 25 hours long on
        DST changes).
    :raises RingCXConfigError: ``cron`` does not fire at a fixed period.
    """

    def __init__(self, cron: str, timezone: Any = "UTC") -> None:
        super().__init__(cron, timezone)
        self.description = f"Backfill only (no schedule), on the grid {self._expression!r}"
        self._interval = _period(self._expression)

    @property
    def summary(self) -> str:
        return f"backfill only ({self._expression})"

    # the names rungrid.Grid.of reads (as on the SDK's CronTriggerTimetable)
    @property
    def expression(self) -> str:
        return self._expression

    @property
    def timezone(self) -> Any:
        return self._timezone

    @property
    def interval(self) -> timedelta:
        return self._interval

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        """A manual run on the grid archives the interval it starts, as a backfill run of that logical date
        does (Trigger with 2026-03-05T00:00Z archives March 5); a logical date inside an interval archives
        the last whole interval before it (Airflow's rule: Trigger "now" archives yesterday)."""
        from airflow.timetables.base import DataInterval

        if self._align_to_prev(run_after) == run_after:
            return DataInterval(start=run_after, end=self._get_next(run_after))
        return super().infer_manual_data_interval(run_after=run_after)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        """The next grid step within a bounded range (a backfill's); ``None`` when the range is open (the
        scheduler's question for a DAG without ``end_date``)."""
        if restriction.latest is None:
            return None
        return super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )


def _period(cron: str) -> timedelta:
    from croniter import croniter

    fires = croniter(cron, datetime(2026, 1, 5, tzinfo=timezone.utc))
    steps = {b - a for a, b in itertools.pairwise([fires.get_next(datetime) for _ in range(8)])}
    if len(steps) != 1:
        raise RingCXConfigError(
            f"BackfillOnlyTimetable({cron!r}) does not fire at a fixed period (steps seen: "
            f"{sorted(str(step) for step in steps)}): its runs would not tile time; use e.g. '0 0 * * *'"
        )
    return steps.pop()


class RingCXTimetablesPlugin(AirflowPlugin):
    """Registers :class:`BackfillOnlyTimetable` (the ``airflow.plugins`` entry point of the distribution)."""

    name = "ringcx_timetables"
    timetables = [BackfillOnlyTimetable]
