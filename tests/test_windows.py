"""Archive windows tile time with no gap and no overlap (scheduled, manual, backfill runs; DST included).

The timetable comes from the same builder the example DAG uses, serialized and decoded the way the
scheduler sees it; windows are derived with the same helper the DAG and the metadata operator use.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pendulum
import pytest

from airflow_provider_ringcx.example_dags import shape
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.windows import (
    Window,
    archive_window,
    batch_label,
    parse_lag,
    rescan_window,
)
from tests.fixtures.tiling import tiling_problems

UTC = timezone.utc
LAG = timedelta(minutes=15)
#: Stretches with DST changes: US spring forward (Mar 8 2026), EU spring (Mar 29), EU fall back (Oct 25),
#: US fall back (Nov 1), plus an ordinary week-end and a year boundary.
RANGES = [
    (datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)),
    (datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC)),
    (datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 26, tzinfo=UTC)),
    (datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 2, 12, tzinfo=UTC)),
    (datetime(2026, 12, 31, 20, tzinfo=UTC), datetime(2027, 1, 1, 4, tzinfo=UTC)),
]


def _core_timetable(environ: dict[str, str]):
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    return decode_timetable(encode_timetable(shape.build_timetable(environ)))


def _scheduled(timetable, start: datetime, end: datetime) -> list[Window]:
    from airflow.timetables.base import TimeRestriction

    windows, last = [], None
    restriction = TimeRestriction(pendulum.instance(start), pendulum.instance(end), catchup=True)
    while True:
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None:
            return windows
        last = info.data_interval
        windows.append(archive_window(last.start, last.end, LAG))


def _assert_tiles(windows: list[Window], start: datetime, end: datetime, width: timedelta) -> None:
    assert tiling_problems(windows) == []
    assert all(window.duration == width for window in windows)
    ordered = sorted(windows)
    assert ordered[0].start == start - LAG
    assert ordered[-1].end == end - LAG
    assert len({window.key for window in windows}) == len(windows)


@pytest.mark.parametrize(("start", "end"), RANGES)
@pytest.mark.parametrize(
    "environ",
    [
        {},  # the DAG's default: */15 in UTC
        {"RINGCX_SCHEDULE_TZ": "America/New_York"},  # a local-time cron, sub-hourly
        {"RINGCX_SCHEDULE_TZ": "Europe/Berlin"},
        {
            "RINGCX_SCHEDULE": "0 * * * *",
            "RINGCX_INTERVAL_MINUTES": "60",
            "RINGCX_SCHEDULE_TZ": "Europe/Berlin",
        },
    ],
)
def test_scheduled_windows_tile_across_dst(environ: dict[str, str], start: datetime, end: datetime) -> None:
    timetable = _core_timetable(environ)
    windows = _scheduled(timetable, start, end)
    width = timedelta(minutes=int(environ.get("RINGCX_INTERVAL_MINUTES", 15)))
    assert len(windows) == (end - start) // width + 1  # catchup creates every run, both ends included
    _assert_tiles(windows, start - width, end, width)  # data intervals cover [start - width, end)


def test_manual_backfill_and_scheduled_runs_share_one_grid() -> None:
    """Scheduled runs, manual runs (triggered at a grid instant) and a backfill give identical windows."""
    from airflow.sdk import DAG
    from airflow.serialization.definitions.dag import SerializedDAG
    from airflow.serialization.serialized_objects import DagSerialization

    timetable = _core_timetable({})
    start, end = datetime(2026, 3, 7, 23, tzinfo=UTC), datetime(2026, 3, 8, 9, tzinfo=UTC)
    scheduled = _scheduled(timetable, start, end)
    manual = []
    for window in scheduled:
        run_after = pendulum.instance(window.end + LAG)
        interval = timetable.infer_manual_data_interval(run_after=run_after)
        manual.append(archive_window(interval.start, interval.end, LAG))
    assert manual == scheduled
    with DAG("tiling_probe", schedule=shape.build_timetable({}), start_date=start, catchup=True) as dag:
        pass
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert isinstance(serialized, SerializedDAG)
    backfill = [
        archive_window(info.data_interval.start, info.data_interval.end, LAG)
        for info in serialized.iter_dagrun_infos_between(pendulum.instance(start), pendulum.instance(end))
    ]
    assert backfill == scheduled
    # a backfill of the first half, then scheduled runs of the rest: still no gap and no overlap
    mixed = backfill[: len(backfill) // 2] + scheduled[len(scheduled) // 2 :]
    _assert_tiles(mixed, start - timedelta(minutes=15), end, timedelta(minutes=15))


def test_daily_local_cron_would_not_tile_and_is_refused() -> None:
    """A daily cron in local time fires 23/25 h apart on DST days: a fixed interval leaves gaps/overlaps."""
    from airflow.sdk import CronTriggerTimetable
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    raw = CronTriggerTimetable("30 1 * * *", timezone="America/New_York", interval=timedelta(days=1))
    windows = _scheduled(decode_timetable(encode_timetable(raw)), *RANGES[0])
    assert tiling_problems(windows)  # this is why the builder refuses it
    with pytest.raises(RingCXConfigError, match="DST"):
        shape.build_timetable(
            {
                "RINGCX_SCHEDULE": "30 1 * * *",
                "RINGCX_INTERVAL_MINUTES": "1440",
                "RINGCX_SCHEDULE_TZ": "America/New_York",
            }
        )
    assert shape.build_timetable({"RINGCX_SCHEDULE": "30 1 * * *", "RINGCX_INTERVAL_MINUTES": "1440"})


def test_cron_period_must_match_interval() -> None:
    with pytest.raises(RingCXConfigError, match="does not fire every"):
        shape.build_timetable({"RINGCX_SCHEDULE": "*/10 * * * *"})
    with pytest.raises(RingCXConfigError, match="does not fire every"):
        shape.build_timetable({"RINGCX_SCHEDULE": "0,15,30 * * * *"})


def test_window_helpers() -> None:
    start = datetime(2026, 3, 2, 14, 15, tzinfo=UTC)
    window = archive_window(start, start + timedelta(minutes=15), LAG)
    assert window == Window(datetime(2026, 3, 2, 14, 0, tzinfo=UTC), datetime(2026, 3, 2, 14, 15, tzinfo=UTC))
    assert window.key == "20260302T1400Z_20260302T1415Z"
    assert window.label() == "14:00\u201314:15"
    assert Window(start, start + timedelta(seconds=30)).key == "20260302T1415Z_20260302T141530Z"
    assert rescan_window(window, timedelta(hours=24)) == window.shift(-timedelta(days=1))
    assert rescan_window(window, timedelta(0)) is None
    with pytest.raises(RingCXConfigError, match="shorter than the window"):
        rescan_window(window, timedelta(minutes=5))
    with pytest.raises(RingCXConfigError, match="5-minute minimum"):
        parse_lag(4)
    with pytest.raises(RingCXConfigError, match="is empty"):
        archive_window(start, start, LAG)
    with pytest.raises(RingCXConfigError, match="no time zone"):
        Window(datetime(2026, 3, 2), datetime(2026, 3, 3))
    # pendulum input (what Airflow passes) gives plain aware datetimes that survive arithmetic
    shifted = archive_window(
        pendulum.datetime(2026, 3, 2, 14, 15), pendulum.datetime(2026, 3, 2, 14, 30), LAG
    )
    assert shifted.shift(timedelta(minutes=1)).start.tzinfo is UTC


def test_batch_label() -> None:
    batch = [{"end": "2026-03-02T14:17:02Z"}, {"end": "2026-03-02T14:15:40Z"}, {"end": None}]
    assert batch_label(2, 12, batch) == "batch 3/12 \u00b7 14:15\u201314:17"
    assert batch_label(0, None, []) == "batch 1"
    descriptor = {
        "manifest_key": "m",
        "range": [0, 9],
        "ends": ["2026-03-02T14:15:40Z", "2026-03-02T14:17:02Z"],
    }
    assert batch_label(2, 12, descriptor) == "batch 3/12 \u00b7 14:15\u201314:17"
    assert batch_label(0, 1, {**descriptor, "ends": []}) == "batch 1/1"


def test_gap_and_overlap_are_reported() -> None:
    a = Window(datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2026, 1, 1, 0, 15, tzinfo=UTC))
    assert "gap" in tiling_problems([a, a.shift(timedelta(minutes=20))])[0]
    assert "overlap" in tiling_problems([a, a.shift(timedelta(minutes=10))])[0]
