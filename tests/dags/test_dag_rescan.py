"""The live DAG's late-arrival rescan runs only where it can find something (issue 14 item 2).

An earlier window whose first listing (its manifest's ``LastModified``) came ``look-back + lag`` or more
after its end was final when listed: re-listing it costs a metadata call for nothing. That is every rescan of
a backfill over old history (each earlier window was listed by the same backfill, late), which doubled its
metadata calls. A window listed on time keeps its rescan however late the run that rescans it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_ringcx import run_settings
from airflow_provider_ringcx.example_dags import tasks
from airflow_provider_ringcx.keys import manifest_key, report_key
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

UTC = timezone.utc
SUB = "99999999"
LOOKBACK = timedelta(minutes=15)


def _plan(s3_client: Any, bucket: str, window_end: datetime, **values: Any) -> dict:
    """``resolve_run`` for the live window ending at ``window_end`` (lag 15, look-back 15 minutes)."""
    resolved = run_settings.resolve_settings(
        {"bucket": bucket, "prefix": "rec", "rescan_lookback_minutes": 15, **values}, lambda _name: None, {}
    )
    end = window_end + timedelta(minutes=15)  # data interval end = window end + lag
    return dict(
        tasks.resolve_run(
            resolved,
            data_interval_start=end - timedelta(minutes=15),
            data_interval_end=end,
            sub_account_id=SUB,
            s3=s3_client,
        )
    )


def _archive_earlier(s3_client: Any, bucket: str, window_end: datetime) -> None:
    """Write the earlier window's manifest now (its first listing happens at this moment)."""
    earlier_end = window_end - LOOKBACK
    key = manifest_key("rec", SUB, earlier_end - timedelta(minutes=15), earlier_end)
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"{}\n")


def _now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def test_an_earlier_window_listed_long_after_its_end_is_not_rescanned(s3_client: Any, bucket: str) -> None:
    old = datetime(2026, 3, 9, 14, 30, tzinfo=UTC)
    _archive_earlier(s3_client, bucket, old)
    plan = _plan(s3_client, bucket, old)
    assert plan["rescan"] is False
    assert "is final" in plan["rescan_note"]
    assert "look-back + lag = 0:30:00" in plan["rescan_note"]
    forced = _plan(s3_client, bucket, old, rescan_final_windows=True)
    assert forced["rescan"] is True
    assert "rescan_final_windows" in forced["rescan_note"]


def test_an_earlier_window_listed_on_time_is_rescanned_however_late_this_run(
    s3_client: Any, bucket: str
) -> None:
    """Listed now, 10 minutes after its end (before look-back + lag): late arrivals may still come."""
    recent = _now() - timedelta(minutes=10) + LOOKBACK  # the earlier window ended 10 minutes ago
    _archive_earlier(s3_client, bucket, recent)
    plan = _plan(s3_client, bucket, recent)
    assert plan["rescan"] is True
    assert plan["rescan_note"].startswith("rescanning")


def test_an_earlier_window_never_archived_is_not_rescanned(s3_client: Any, bucket: str) -> None:
    plan = _plan(s3_client, bucket, datetime(2026, 3, 9, 16, 0, tzinfo=UTC))
    assert plan["rescan"] is False
    assert "never archived" in plan["rescan_note"]


@pytest.fixture
def sim(make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    handle = make_simulator(calls_per_hour=20, seed=3)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    return handle


def test_a_backfill_of_old_windows_makes_one_metadata_call_per_window(
    example_dag: Any, sim: SimulatorHandle, aws_conn: str, bucket: str, s3_client: Any
) -> None:
    """Two consecutive old windows, each rescanning the one before (look-back 15 minutes), as a backfill
    runs them: the second run's rescan is skipped, so the simulator sees one call per window, not two."""
    first = datetime(2026, 3, 9, 14, 30, tzinfo=UTC)  # archives 14:00-14:15
    conf = {"bucket": bucket, "prefix": "rec", "rescan_lookback_minutes": 15}
    assert example_dag.test(logical_date=first, run_conf=conf).state == "success"
    sim.control.reset_stats()
    run = example_dag.test(logical_date=first + LOOKBACK, run_conf=conf)  # 14:15-14:30, rescans 14:00-14:15
    assert run.state == "success"
    assert sim.control.stats()["requests"]["metadata"] == {"200": 1}
    start = datetime(2026, 3, 9, 14, 15, tzinfo=UTC)
    body = s3_client.get_object(Bucket=bucket, Key=report_key("rec", SUB, start, start + LOOKBACK))["Body"]
    report = json.loads(body.read())
    assert report["complete"] is True
    assert report["rescan"] is None
    assert "20260309T1400Z_20260309T1415Z is final" in report["rescan_note"]
