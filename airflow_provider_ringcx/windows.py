"""Pure helpers for archive windows: lag shifting, rescan windows, tiling checks and labels.

An Airflow run covers the data interval ``[data_interval_start, data_interval_end)``. The window archived by
that run is the same interval shifted back by the settle *lag*, ``[start - lag, end - lag)``, because the
vendor only lists a segment once its recording is processed. Shifting every interval by the same lag keeps
the tiling of the timetable: consecutive data intervals that meet end-to-start give consecutive windows that
meet end-to-start, whatever the run type (scheduled, manual with a data interval, backfill).

Nothing here touches Airflow, the network or the clock, so the DAG, the operators and the tests share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.models import iso

#: The vendor rejects metadata windows that end less than 5 minutes ago; a lag below that never works.
MIN_LAG = timedelta(minutes=5)
#: Product default: recordings are processed about 15 minutes after a segment ends.
DEFAULT_LAG = timedelta(minutes=15)
_DASH = "\u2013"  # en dash, as in "14:15-14:30" labels


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise RingCXConfigError(f"{name} {value.isoformat()} has no time zone; pass an aware datetime")
    value = value.astimezone(timezone.utc)
    # A plain datetime, even for pendulum input: pendulum arithmetic on a stdlib tzinfo can drop the zone.
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond,
        tzinfo=timezone.utc,
    )  # fmt: skip


@dataclass(frozen=True, order=True)
class Window:
    """A half-open UTC time window ``[start, end)`` of segment end times."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _utc(self.start, "window start"))
        object.__setattr__(self, "end", _utc(self.end, "window end"))
        if self.end <= self.start:
            raise RingCXConfigError(
                f"window end {self.end.isoformat()} is not after its start {self.start.isoformat()}"
            )

    @property
    def key(self) -> str:
        """``20260302T1400Z_20260302T1415Z``: the window's part of manifest and report keys."""
        return keys.window_part(self.start, self.end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def shift(self, delta: timedelta) -> Window:
        """The same window moved by ``delta`` (negative moves it back in time)."""
        return Window(self.start + delta, self.end + delta)

    def label(self) -> str:
        """A short human label, ``14:15-14:30`` (the date is added when the window spans days)."""
        if self.start.date() == (self.end - timedelta(microseconds=1)).date():
            return f"{self.start:%H:%M}{_DASH}{self.end:%H:%M}"
        return f"{self.start:%Y-%m-%d %H:%M}{_DASH}{self.end:%Y-%m-%d %H:%M}"

    def as_dict(self) -> dict[str, str]:
        """ISO-8601 UTC strings, for XCom and reports."""
        return {"start": iso(self.start), "end": iso(self.end), "key": self.key}


def parse_lag(value: Any, *, name: str = "lag_minutes") -> timedelta:
    """Read a lag given in minutes (int, float, numeric string or timedelta) and check it is >= 5 minutes.

    :raises RingCXConfigError: not a number, or under the vendor's 5-minute minimum.
    """
    if isinstance(value, timedelta):
        lag = value
    else:
        try:
            lag = timedelta(minutes=float(value))
        except (TypeError, ValueError):
            raise RingCXConfigError(f"{name}={value!r} is not a number of minutes; use e.g. 15") from None
    if lag < MIN_LAG:
        raise RingCXConfigError(
            f"{name}={lag.total_seconds() / 60:g} minutes is under the 5-minute minimum: RingCX rejects "
            "metadata windows that end less than 5 minutes ago; use 15 (the default) or more"
        )
    return lag


def archive_window(data_interval_start: datetime, data_interval_end: datetime, lag: timedelta) -> Window:
    """The window a run archives: its data interval shifted back by ``lag``.

    :param data_interval_start: the run's ``data_interval_start`` (aware).
    :param data_interval_end: the run's ``data_interval_end`` (aware).
    :param lag: the settle lag, at least :data:`MIN_LAG`.
    :raises RingCXConfigError: a zero-width data interval (a plain cron schedule) or a lag under 5 minutes.
    """
    parse_lag(lag)
    if data_interval_end <= data_interval_start:
        raise RingCXConfigError(
            f"the run's data interval [{data_interval_start.isoformat()}, {data_interval_end.isoformat()}) "
            "is empty: schedule the DAG with CronTriggerTimetable(..., interval=timedelta(minutes=15)) "
            "rather than a plain cron string, or trigger it with an explicit data interval"
        )
    return Window(data_interval_start, data_interval_end).shift(-lag)


def run_window(
    window_start: datetime | str | None,
    window_end: datetime | str | None,
    lag: Any,
    context: Mapping[str, Any],
) -> Window:
    """The window a task archives: explicit bounds when given, else the run's data interval shifted back by
    the lag (the one rule of the metadata and report operators).

    :raises RingCXConfigError: a bound that is not ISO-8601, one bound without the other, or no bounds and
        a run without a data interval.
    """
    shift = parse_lag(lag, name="lag")
    if window_start or window_end:
        return Window(_bound(window_start, "window_start"), _bound(window_end, "window_end"))
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None:
        raise RingCXConfigError(
            "the run has no data interval: pass window_start and window_end, or schedule the DAG with a "
            "timetable that has intervals (CronTriggerTimetable(..., interval=...))"
        )
    return archive_window(start, end, shift)


def _bound(value: datetime | str | None, name: str) -> datetime:
    from airflow_provider_ringcx.models import parse_timestamp

    moment: datetime | None
    try:
        moment = value if isinstance(value, datetime) else parse_timestamp(value)
    except ValueError:
        moment = None
    if moment is None:
        raise RingCXConfigError(f"{name}={value!r} is not an ISO-8601 timestamp; both bounds are needed")
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def rescan_window(window: Window, lookback: timedelta) -> Window | None:
    """The earlier window re-listed for late arrivals: ``window`` moved back by ``lookback``.

    :param lookback: how far back to look (e.g. 24 h); zero disables the rescan (returns ``None``).
    :raises RingCXConfigError: a negative look-back, or one shorter than the window (it would overlap).
    """
    if not lookback:
        return None
    if lookback < window.duration:
        raise RingCXConfigError(
            f"rescan look-back {lookback} is shorter than the window ({window.duration}); it must reach a "
            "window that an earlier run already archived (e.g. 1440 minutes), or 0 to disable the rescan"
        )
    return window.shift(-lookback)


def batch_label(index: int, count: int | None, batch: Any) -> str:
    """Grid label of a mapped download task, e.g. ``batch 3/12 · 14:15-14:20`` (with an en dash).

    :param index: the 0-based map index.
    :param count: the number of batches, if known.
    :param batch: the batch: a descriptor with ``ends`` (earliest and latest segment end, ISO strings) or a
        list of segment refs with ``end``; the label spans the earliest and the latest segment end, which is
        what windows are cut on.
    """
    text = f"batch {index + 1}/{count}" if count else f"batch {index + 1}"
    if isinstance(batch, Mapping):
        ends = sorted(str(end) for end in batch.get("ends") or ())
    else:
        ends = sorted(str(ref["end"]) for ref in batch or () if isinstance(ref, Mapping) and ref.get("end"))
    if ends:
        text += f" · {_hhmm(ends[0])}{_DASH}{_hhmm(ends[-1])}"
    return text


def _hhmm(iso: str) -> str:
    # "2026-03-02T14:01:40Z" -> "14:01"
    time_part = iso.split("T", 1)[-1]
    return time_part[:5]
