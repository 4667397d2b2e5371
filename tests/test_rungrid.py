"""Runs off the schedule's grid and runs without a data interval are refused (issue #12 item 16), and
configuration errors from the operators are not retried."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from airflow.sdk import CronTriggerTimetable
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.failfast import RingCXConfigFailure
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from airflow_provider_ringcx.rungrid import check_data_interval

UTC = timezone.utc
LAG = timedelta(minutes=15)
QUARTER = CronTriggerTimetable("*/15 * * * *", timezone="UTC", interval=timedelta(minutes=15))


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, second, tzinfo=UTC)


def test_a_grid_interval_passes() -> None:
    check_data_interval(QUARTER, at(14, 15), at(14, 30), lag=LAG, dag_id="d")
    local = CronTriggerTimetable("*/15 * * * *", timezone="America/New_York", interval=timedelta(minutes=15))
    spring = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, right after the gap
    check_data_interval(local, spring - timedelta(minutes=15), spring, lag=LAG, dag_id="d")


@pytest.mark.parametrize(
    ("start", "end", "before", "after"),
    [
        (at(13, 52), at(14, 7), "2026-03-02T14:00:00Z", "2026-03-02T14:15:00Z"),  # off-grid logical date
        (at(14, 0), at(14, 30), "2026-03-02T14:15:00Z", "2026-03-02T14:30:00Z"),  # two intervals wide
        (at(14, 15), at(14, 30, 1), "2026-03-02T14:30:00Z", "2026-03-02T14:45:00Z"),  # a second off
    ],
)
def test_an_off_grid_interval_is_refused_naming_the_grid_dates_and_a_backfill(
    start: datetime, end: datetime, before: str, after: str
) -> None:
    with pytest.raises(RingCXConfigError) as caught:
        check_data_interval(QUARTER, start, end, lag=LAG, dag_id="ringcx_recordings_to_s3")
    message = str(caught.value)
    assert "is not on the schedule's grid (cron '*/15 * * * *' in UTC, data interval 15 minutes)" in message
    assert f"logical date {before} (data interval" in message
    assert f"logical date {after} (data interval" in message
    assert f"--from-date {before} --to-date {after}" in message
    assert "section 'Logical dates and manual runs' of docs/operations.md" in message


def test_no_data_interval_is_refused_with_the_latest_grid_date() -> None:
    with pytest.raises(RingCXConfigError) as caught:
        check_data_interval(QUARTER, None, None, lag=LAG, dag_id="d", now=at(14, 7))
    message = str(caught.value)
    assert message.startswith("the run has no data interval")
    expected = (
        "logical date 2026-03-02T14:00:00Z (data interval 2026-03-02T13:45:00Z - 2026-03-02T14:00:00Z, "
        "archives 2026-03-02T13:30:00Z - 2026-03-02T13:45:00Z)"
    )
    assert expected in message


def test_other_timetables_are_not_checked_for_alignment() -> None:
    check_data_interval(None, at(13, 52), at(14, 7), lag=LAG, dag_id="d")
    with pytest.raises(RingCXConfigError):
        check_data_interval(None, None, at(14, 7), lag=LAG, dag_id="d")


def test_operator_configuration_errors_fail_without_retries() -> None:
    """Every ``execute*`` entry point of both operators turns a configuration error into an
    ``AirflowFailException`` (still a ``RingCXConfigError``)."""
    op = RingCXInteractionMetadataOperator(task_id="fetch", bucket="b")
    with pytest.raises(AirflowFailException) as caught:
        op.execute({"data_interval_start": None, "data_interval_end": None})  # type: ignore[arg-type]
    assert isinstance(caught.value, RingCXConfigFailure)
    assert "the run has no data interval: pass window_start and window_end" in str(caught.value)
    with pytest.raises(RingCXConfigFailure):
        op.execute_complete({}, {"status": "surprise"})  # type: ignore[arg-type]
    for cls in (RingCXInteractionMetadataOperator, RingCXRecordingsToS3Operator):
        entry_points = [name for name in vars(cls) if name == "execute" or name.startswith("execute_")]
        assert entry_points
        for name in entry_points:
            assert getattr(getattr(cls, name), "__ringcx_fail_fast__", False), (cls, name)
