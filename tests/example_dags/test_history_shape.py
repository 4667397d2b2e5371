"""The history DAG's shape: a UTC-day grid that only backfills walk, no rescan, history budget priority,
batches under the map cap for the busiest documented day, and the calls' window capped by the connection.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.example_dags import ringcx_recordings_history as history
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.rungrid import check_data_interval
from airflow_provider_ringcx.timetables import BackfillOnlyTimetable
from airflow_provider_ringcx.transfers.manifest import MAX_BATCHES, MAX_MAP_LENGTH

UTC = timezone.utc
DAGS = Path(__file__).resolve().parents[2] / "dags"
TASKS = {"resolve_run", "fetch_metadata_window", "plan_downloads", "download_segments", "report_window"}


@pytest.fixture(scope="module")
def dag(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The history DAG parsed from a DAG folder holding only its two-line file."""
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path_factory.mktemp("history_only")
    shutil.copy(DAGS / "ringcx_recordings_history.py", folder)
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    assert list(bag.dags) == [history.DAG_ID]
    return bag.dags[history.DAG_ID]


def test_the_dag_file_alone_gives_a_backfill_only_daily_dag_without_rescan(dag: Any) -> None:
    assert set(dag.task_dict) == TASKS  # no rescan branch
    assert dag.catchup is False
    assert dag.is_paused_upon_creation is False  # a paused DAG's backfill runs never start
    assert isinstance(dag.timetable, BackfillOnlyTimetable)
    assert dag.timetable.summary == "backfill only (0 0 * * *)"
    assert dag.timetable.interval == timedelta(days=1)
    assert dag.get_task("resolve_run").op_kwargs == {"defaults": {"batch_size": 50}, "rescan": False}
    assert dag.get_task("report_window").download_task_ids == ["download_segments"]
    fetch = dag.get_task("fetch_metadata_window")
    assert fetch.max_window_seconds == 10800
    assert fetch.budget_priority == "history"
    assert fetch.execution_timeout == timedelta(hours=2)
    assert dag.get_task("download_segments").partial_kwargs["budget_priority"] == "history"


def test_the_scheduler_gets_no_run_and_a_backfill_gets_one_run_per_utc_day(dag: Any) -> None:
    """The serialized DAG (what the scheduler and ``airflow backfill create`` read): no next run, and the
    days of a range with each logical date at the start of the day it archives."""
    from airflow.serialization.serialized_objects import DagSerialization

    restored = DagSerialization.from_dict(json.loads(json.dumps(DagSerialization.to_dict(dag))))
    assert type(restored.timetable) is BackfillOnlyTimetable
    assert restored.timetable.periodic  # backfills need a periodic timetable
    assert restored.next_dagrun_info(last_automated_run_info=None) is None
    infos = list(
        restored.iter_dagrun_infos_between(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
    )
    assert [(i.logical_date.day, i.data_interval.start.day, i.data_interval.end.day) for i in infos] == [
        (1, 1, 2),
        (2, 2, 3),
        (3, 3, 4),
    ]
    after_backfill = restored.next_dagrun_info(last_automated_run_info=infos[-1])
    assert after_backfill is None  # the scheduler does not continue from a backfill either


def test_a_manual_run_on_the_grid_archives_the_day_it_starts_as_a_backfill_run_does(dag: Any) -> None:
    import pendulum

    day = pendulum.datetime(2026, 3, 5, tz="UTC")
    on_grid = dag.timetable.infer_manual_data_interval(run_after=day)
    assert (on_grid.start, on_grid.end) == (day, day.add(days=1))
    inside = dag.timetable.infer_manual_data_interval(run_after=day.add(hours=9))  # "now": the day before
    assert (inside.start, inside.end) == (day.subtract(days=1), day)


def test_a_day_is_on_the_grid_and_an_off_grid_interval_is_refused(dag: Any) -> None:
    day, lag = datetime(2026, 3, 2, tzinfo=UTC), timedelta(minutes=15)
    check_data_interval(dag.timetable, day, day + timedelta(days=1), lag=lag, dag_id="h")
    noon = day + timedelta(hours=12)
    with pytest.raises(RingCXConfigError, match="not on the schedule's grid"):
        check_data_interval(dag.timetable, noon, noon + timedelta(days=1), lag=lag, dag_id="h")


def test_a_cron_without_a_fixed_period_is_refused() -> None:
    with pytest.raises(RingCXConfigError, match="fixed period"):
        BackfillOnlyTimetable("0 0,6 * * *")


def test_the_busiest_documented_day_stays_under_the_map_cap() -> None:
    batches = math.ceil(40_000 / history.HISTORY_BATCH_SIZE)  # the busiest day documented (docstring)
    assert batches == 800
    assert batches <= MAX_BATCHES < MAX_MAP_LENGTH  # no merging needed; a busier day is merged to 1,000


@pytest.mark.parametrize(
    ("connection", "asked", "used"),
    [(3600, 10800, 3600), (10800, 10800, 10800), (10800, None, 10800), (10800, 1800, 1800)],
)
def test_the_calls_window_is_the_asked_one_capped_by_the_connection(
    monkeypatch: pytest.MonkeyPatch, connection: int, asked: int | None, used: int
) -> None:
    from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator

    extra = {"rc_account_id": "1", "sub_account_id": "2", "jwt_token": "j", "max_window_seconds": connection}
    conn = {"conn_type": "ringcx", "login": "id", "password": "secret", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", json.dumps(conn))
    op = RingCXInteractionMetadataOperator(task_id="t", bucket="b", max_window_seconds=asked)
    assert op.window_seconds() == used
    assert op.hook.metadata.max_window_seconds == used  # what plans the calls


def test_a_window_outside_the_vendors_range_is_refused_at_parse_time() -> None:
    from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator

    with pytest.raises(RingCXConfigError, match="max_window_seconds=20000 is outside"):
        RingCXInteractionMetadataOperator(task_id="t", bucket="b", max_window_seconds=20000)


def test_history_and_audit_have_their_own_pools() -> None:
    """A history fetch pacing a day's calls holds a pool slot for minutes: it must never be the live DAG's.

    (bench/history.py measured the live window waiting 2,394 simulated seconds behind a shared slot.)
    """
    from airflow_provider_ringcx.example_dags import ringcx_archive_audit, ringcx_recordings_history, settings

    live_pools = {"ringcx_metadata", "ringcx_downloads"}
    for module in (ringcx_recordings_history, ringcx_archive_audit):
        dag = module.build_dag()
        pools = {task.pool for task in dag.tasks if task.pool != "default_pool"}
        assert pools, module.DAG_ID
        assert not pools & live_pools, (module.DAG_ID, pools)
        assert pools <= set(settings.POOLS), (module.DAG_ID, pools)
