"""The example DAG imports cleanly, touches no connection or Variable at parse time, and is wired right."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_provider_ringcx import run_settings
from airflow_provider_ringcx.example_dags import settings as dagconfig
from airflow_provider_ringcx.example_dags import shape
from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import DAG_ID, RECORDINGS_ARCHIVE
from airflow_provider_ringcx.exceptions import RingCXConfigError

DAGS = Path(__file__).resolve().parents[2] / "dags"


def _forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"touched at parse time: {args} {kwargs}")


@pytest.fixture(scope="module")
def parsed() -> Any:
    """Parse dags/ with every way to read a connection or a Variable patched to fail the test."""
    import os

    from airflow.dag_processing.dagbag import DagBag

    assert not [name for name in os.environ if name.startswith("RINGCX_")]

    patches = [
        mock.patch("airflow.sdk.BaseHook.get_connection", side_effect=_forbidden),
        mock.patch("airflow.sdk.Variable.get", side_effect=_forbidden),
        mock.patch("airflow.models.variable.Variable.get", side_effect=_forbidden),
        mock.patch(
            "airflow.models.connection.Connection.get_connection_from_secrets", side_effect=_forbidden
        ),
        mock.patch("airflow.sdk.Connection.get", side_effect=_forbidden, create=True),
    ]
    for patch in patches:
        patch.start()
    try:
        bag = DagBag(dag_folder=str(DAGS))
    finally:
        for patch in patches:
            patch.stop()
    return bag


def test_imports_without_errors_or_parse_time_access(parsed: Any) -> None:
    assert parsed.import_errors == {}
    assert DAG_ID in parsed.dags


def test_schedule_runs_and_retries(parsed: Any) -> None:
    dag = parsed.dags[DAG_ID]
    timetable = dag.timetable
    assert type(timetable).__name__ == "CronTriggerTimetable"
    assert timetable.expression == "*/15 * * * *"
    assert timetable.interval == timedelta(minutes=15)
    assert str(timetable.timezone) in ("UTC", "Timezone('UTC')")
    assert dag.catchup is True
    assert 1 <= dag.max_active_runs <= 8
    for task in dag.tasks:
        if task.task_id != "report_window":
            assert task.retries >= 1, task.task_id
        assert task.retry_exponential_backoff, task.task_id
        assert task.max_retry_delay is not None


def test_tasks_pools_trigger_rule_mapping_and_asset(parsed: Any) -> None:
    dag = parsed.dags[DAG_ID]
    tasks = dag.task_dict
    assert tasks["fetch_metadata_window"].pool == "ringcx_metadata"
    assert tasks["fetch_rescan_window"].pool == "ringcx_metadata"
    for mapped in ("download_segments", "download_late_segments"):
        assert tasks[mapped].pool == "ringcx_downloads"
        assert "ringcx_batch_label" in tasks[mapped].map_index_template
    assert set(dagconfig.POOLS) == {
        "ringcx_metadata",
        "ringcx_downloads",
        "ringcx_history_metadata",
        "ringcx_history_downloads",
    }
    report = tasks["report_window"]
    assert report.trigger_rule == "all_done"
    assert {"download_segments", "download_late_segments"} <= report.upstream_task_ids
    assert [outlet.name for outlet in report.outlets] == [RECORDINGS_ARCHIVE.name]
    assert tasks["download_segments"].upstream_task_ids == {"plan_downloads"}
    assert tasks["plan_downloads"].upstream_task_ids == {"fetch_metadata_window", "resolve_run"}


def test_every_setting_is_a_param_that_defaults_to_variable_env_default(parsed: Any) -> None:
    dag = parsed.dags[DAG_ID]
    params = dag.params
    for setting in run_settings.SETTINGS:
        param = params.get_param(setting.name)
        assert param.value is None
        assert setting.variable in param.description
        assert setting.env in param.description


def test_dag_serializes(parsed: Any) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = parsed.dags[DAG_ID]
    data = DagSerialization.to_dict(dag)
    restored = DagSerialization.from_dict(data)
    assert set(restored.task_dict) == set(dag.task_dict)


def test_parse_time_environment_shapes_the_dag(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("RINGCX_SCHEDULE", "0 * * * *")
    monkeypatch.setenv("RINGCX_INTERVAL_MINUTES", "60")
    monkeypatch.setenv("RINGCX_MAX_ACTIVE_RUNS", "2")
    monkeypatch.setenv("RINGCX_CATCHUP", "false")
    monkeypatch.setenv("RINGCX_START_DATE", "2026-05-01T00:00Z")
    dag = DagBag(dag_folder=str(DAGS)).dags[DAG_ID]
    assert dag.timetable.expression == "0 * * * *"
    assert dag.timetable.interval == timedelta(hours=1)
    assert dag.max_active_runs == 2
    assert dag.catchup is False
    assert dag.start_date.isoformat().startswith("2026-05-01T00:00:00")
    monkeypatch.setenv("RINGCX_INTERVAL_MINUTES", "15")  # a cron that does not fire every interval
    bag = DagBag(dag_folder=str(DAGS))
    assert "does not fire every" in next(iter(bag.import_errors.values()))


def test_every_writer_gets_the_runs_compliance_options(parsed: Any) -> None:
    """Issue #12 item 9: the manifests are written with the options resolve_run resolved for the run, as
    the recordings and the report are (the download tasks get them from plan_downloads)."""
    from airflow_provider_ringcx.s3.options import OPTION_NAMES

    dag = parsed.dags[DAG_ID]
    for task_id in ("fetch_metadata_window", "fetch_rescan_window"):
        task = dag.get_task(task_id)
        for name in OPTION_NAMES:
            arg = getattr(task, name)
            assert (arg.operator.task_id, arg.key) == ("resolve_run", name), (task_id, name)
            assert name in task.template_fields


def test_every_task_has_an_execution_timeout(parsed: Any) -> None:
    """No task can hold a worker and a pool slot forever (issue #12 item 11): each has the documented
    default of its kind (``shape.TASK_TIMEOUTS``)."""
    dag = parsed.dags[DAG_ID]
    minutes = {task.task_id: task.execution_timeout for task in dag.tasks}
    assert all(isinstance(value, timedelta) and value > timedelta(0) for value in minutes.values()), minutes
    assert minutes["fetch_metadata_window"] == minutes["fetch_rescan_window"] == timedelta(minutes=45)
    assert minutes["download_segments"] == minutes["download_late_segments"] == timedelta(minutes=90)
    assert minutes["report_window"] == timedelta(minutes=30)
    assert minutes["resolve_run"] == minutes["plan_downloads"] == timedelta(minutes=10)


def test_task_timeouts_are_overridable_and_bounded() -> None:
    longer = {"RINGCX_DOWNLOAD_TIMEOUT_MINUTES": "240"}
    assert shape.task_timeout("download", longer) == timedelta(hours=4)
    for bad in ("0", "2000", "ten"):
        with pytest.raises(RingCXConfigError, match="RINGCX_METADATA_TIMEOUT_MINUTES"):
            shape.task_timeout("metadata", {"RINGCX_METADATA_TIMEOUT_MINUTES": bad})
