"""Parse-time settings of the example archive DAGs: what shapes the DAG itself, read from the environment.

The schedule, start date, catchup, ``max_active_runs``, retries and task timeouts are fixed when the DAG file
is parsed, so they can only come from the environment (``RINGCX_SCHEDULE``...); reading ``os.environ`` touches
no DB. Run-time settings (params > Variables > environment > defaults) are
:mod:`~airflow_provider_ringcx.example_dags.settings`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.models import parse_timestamp


def env_flag(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    value = environ.get(name)
    return default if value in (None, "") else value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    value = environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(str(value))
    except ValueError:
        raise RingCXConfigError(f"environment variable {name}={value!r} is not an integer") from None


#: ``execution_timeout`` of the example DAG's tasks, in minutes: (environment variable, default, why).
#: An Airflow task without one can hold a worker and a pool slot forever (a server that dribbles bytes, a
#: hung S3 call). Each default is the task's worst case with margin; a task that reaches it fails
#: retryably (Airflow's AirflowTaskTimeout) and the next try resumes from what was archived.
TASK_TIMEOUTS: dict[str, tuple[str, int, str]] = {
    "metadata": (
        "RINGCX_METADATA_TIMEOUT_MINUTES",
        45,
        "one window: up to 15 min waiting on the 9/15 min budget, 429 Retry-After waits, the metadata "
        "call's own deadline and the manifest upload",
    ),
    "download": (
        "RINGCX_DOWNLOAD_TIMEOUT_MINUTES",
        90,
        "one batch (default 100 recordings): the 120/60 s budget, each recording's own deadline, retries",
    ),
    "report": ("RINGCX_REPORT_TIMEOUT_MINUTES", 30, "HEAD/GET of every object (verify_content re-hashes)"),
    "small": ("RINGCX_TASK_TIMEOUT_MINUTES", 10, "resolve_run, the planners, rescan_enabled: a few S3 calls"),
}


def task_timeout(kind: str, environ: Mapping[str, str] | None = None) -> timedelta:
    """The ``execution_timeout`` of a kind of task (see :data:`TASK_TIMEOUTS`), from its environment
    variable (minutes, 1..1440) or the default.

    :raises RingCXConfigError: not an integer, or out of range.
    """
    name, default, _ = TASK_TIMEOUTS[kind]
    minutes = env_int(name, default, environ)
    if not 1 <= minutes <= 1440:
        raise RingCXConfigError(f"environment variable {name}={minutes} must be within 1..1440 minutes")
    return timedelta(minutes=minutes)


def start_date(environ: Mapping[str, str] | None = None) -> datetime:
    """``RINGCX_START_DATE`` (ISO-8601; naive means UTC), default 2026-01-01T00:00Z: catchup starts here."""
    environ = os.environ if environ is None else environ
    text = environ.get("RINGCX_START_DATE") or "2026-01-01T00:00:00+00:00"
    try:
        value = parse_timestamp(text)
    except ValueError:
        raise RingCXConfigError(f"RINGCX_START_DATE={text!r} is not ISO-8601, e.g. 2026-03-01T00:00Z")
    assert value is not None  # text is not empty
    return value


def build_timetable(environ: Mapping[str, str] | None = None) -> Any:
    """The DAG's ``CronTriggerTimetable`` from ``RINGCX_SCHEDULE`` (cron, default ``*/15 * * * *``),
    ``RINGCX_SCHEDULE_TZ`` (default UTC) and ``RINGCX_INTERVAL_MINUTES`` (default 15).

    The data interval of every run is ``[run_after - interval, run_after)``; windows tile only if the cron
    fires exactly every ``interval``. Both are checked on a sample of fire times. A local time zone is only
    accepted for intervals of an hour or less: a daily cron in local time fires 23 or 25 hours apart on DST
    days, which a fixed interval cannot tile.

    :raises RingCXConfigError: the cron does not fire every ``interval``, or a long interval in local time.
    """
    import pendulum
    from airflow.sdk import CronTriggerTimetable
    from croniter import croniter

    environ = os.environ if environ is None else environ
    cron = environ.get("RINGCX_SCHEDULE") or "*/15 * * * *"
    tz = environ.get("RINGCX_SCHEDULE_TZ") or "UTC"
    try:
        pendulum.timezone(tz)
    except Exception:  # pendulum's InvalidTimezone, or a name it cannot even look up
        raise RingCXConfigError(
            f"RINGCX_SCHEDULE_TZ={tz!r} is not a known time zone; use an IANA name such as 'UTC' (the "
            "default) or 'America/New_York'"
        ) from None
    interval = timedelta(minutes=env_int("RINGCX_INTERVAL_MINUTES", 15, environ))
    if tz != "UTC" and interval > timedelta(hours=1):
        raise RingCXConfigError(
            f"RINGCX_SCHEDULE_TZ={tz} with a {interval} interval: DST days are 23 or 25 hours long in local "
            "time, so fixed intervals would leave gaps or overlaps; use RINGCX_SCHEDULE_TZ=UTC"
        )
    if interval <= timedelta(0):
        raise RingCXConfigError("RINGCX_INTERVAL_MINUTES must be > 0")
    fires = croniter(cron, datetime(2026, 1, 5, tzinfo=timezone.utc))
    times = [fires.get_next(datetime) for _ in range(8)]
    steps = {later - earlier for earlier, later in itertools.pairwise(times)}
    if steps != {interval}:
        raise RingCXConfigError(
            f"RINGCX_SCHEDULE={cron!r} does not fire every {interval} (steps seen: "
            f"{sorted(str(step) for step in steps)}); windows would not tile. Set RINGCX_INTERVAL_MINUTES to "
            "the cron's period, or use a cron that fires at a fixed period"
        )
    return CronTriggerTimetable(cron, timezone=tz, interval=interval)
