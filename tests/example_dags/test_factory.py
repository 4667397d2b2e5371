"""The archive DAG factory: other DAG shapes are other calls (a history DAG, one DAG per sub-account)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_ringcx import run_settings
from airflow_provider_ringcx.example_dags import settings, shape
from airflow_provider_ringcx.example_dags.factory import ArchiveDagOptions, ringcx_archive_dag
from airflow_provider_ringcx.example_dags.runplan import RunPlan
from airflow_provider_ringcx.example_dags.tasks import resolve_run
from airflow_provider_ringcx.exceptions import RingCXConfigError

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAGS = Path(__file__).resolve().parents[2] / "dags"
ARCHIVE_TASKS = {
    "resolve_run",
    "fetch_metadata_window",
    "plan_downloads",
    "download_segments",
    "report_window",
}
RESCAN_TASKS = {"rescan_enabled", "fetch_rescan_window", "plan_late_downloads", "download_late_segments"}


def test_a_history_dag_is_one_call_without_schedule_catchup_or_rescan() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = ringcx_archive_dag(
        dag_id="ringcx_recordings_history",
        schedule=None,
        start_date=START,
        catchup=False,
        rescan=False,
        defaults={"batch_size": 500},
        timeouts={"metadata": timedelta(hours=3)},
    )
    assert set(dag.task_dict) == ARCHIVE_TASKS
    assert dag.catchup is False
    assert type(dag.timetable).__name__ == "NullTimetable"
    report = dag.get_task("report_window")
    assert report.download_task_ids == ["download_segments"]
    assert report.trigger_rule == "all_done"
    assert dag.get_task("fetch_metadata_window").execution_timeout == timedelta(hours=3)
    assert dag.get_task("resolve_run").op_kwargs == {"defaults": {"batch_size": 500}, "rescan": False}
    assert "default 500" in dag.params.get_param("batch_size").description
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert set(restored.task_dict) == ARCHIVE_TASKS


def test_one_dag_per_sub_account_from_shared_options() -> None:
    base = ArchiveDagOptions(dag_id="ringcx_archive", schedule=shape.build_timetable({}), start_date=START)
    dags = [
        ringcx_archive_dag(base, dag_id=f"ringcx_archive_{name}", params={"ringcx_conn_id": f"ringcx_{name}"})
        for name in ("east", "west")
    ]
    assert [dag.dag_id for dag in dags] == ["ringcx_archive_east", "ringcx_archive_west"]
    assert [dag.params["ringcx_conn_id"] for dag in dags] == ["ringcx_east", "ringcx_west"]
    assert all(set(dag.task_dict) == ARCHIVE_TASKS | RESCAN_TASKS for dag in dags)
    assert dags[0].params["bucket"] is None  # not fixed: falls back to the Variable, env, default


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"params": {"buckt": "x"}}, RingCXConfigError, "buckt is not a run setting"),
        ({"defaults": {"lag": 5}}, RingCXConfigError, "defaults: lag is not a run setting"),
        ({"timeouts": {"downloads": timedelta(hours=1)}}, RingCXConfigError, "timeouts for downloads"),
        ({"retrys": 1}, TypeError, "retrys"),
    ],
)
def test_a_typo_in_the_options_is_refused_naming_it(fields: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ringcx_archive_dag(dag_id="probe", schedule=None, start_date=START, **fields)


def test_enum_params_list_their_values_labels_and_sections() -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    params = settings.dag_params()
    sse = params["server_side_encryption"]
    assert sse.schema["type"] == ["null", "string"]
    assert sse.schema["enum"] == [None, "AES256", "aws:kms", "aws:kms:dsse"]
    assert sse.schema["values_display"]["aws:kms"] == "SSE-KMS (aws:kms)"
    assert sse.schema["section"] == run_settings.SECTION_COMPLIANCE
    assert params["object_lock_mode"].schema["enum"] == [None, "GOVERNANCE", "COMPLIANCE"]
    assert "STANDARD_IA" in params["storage_class"].schema["examples"]
    assert {param.schema["section"] for param in params.values()} == {
        run_settings.SECTION_TARGET,
        run_settings.SECTION_WINDOW,
        run_settings.SECTION_COMPLIANCE,
        run_settings.SECTION_CHECKS,
    }
    assert sse.resolve(None) is None  # empty: falls back to the Variable, env, default
    assert sse.resolve("aws:kms") == "aws:kms"
    with pytest.raises(ParamValidationError, match="is not one of"):
        params["object_lock_mode"].resolve("STRICT")
    assert params["storage_class"].resolve("EXPRESS_ONEZONE") == "EXPRESS_ONEZONE"  # examples, not enum


def test_dag_defaults_sit_between_the_environment_and_the_built_in_defaults() -> None:
    def resolved(environ: dict[str, str]) -> int:
        return run_settings.resolve_settings({"bucket": "b"}, lambda _n: None, environ, {"lag_minutes": 30})[
            "lag_minutes"
        ]

    assert resolved({}) == 30
    assert resolved({"RINGCX_LAG_MINUTES": "20"}) == 20
    with pytest.raises(RingCXConfigError, match="set by the DAG default lag_minutes"):
        run_settings.resolve_settings({"bucket": "b"}, lambda _n: None, {}, {"lag_minutes": 1})


def test_the_run_plan_has_exactly_the_typed_keys_and_stays_small() -> None:
    resolved = run_settings.resolve_settings(
        {"bucket": "b", "rescan_lookback_minutes": 0}, lambda _n: None, {}
    )
    end = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)
    plan = resolve_run(
        resolved,
        data_interval_start=end - timedelta(minutes=15),
        data_interval_end=end,
        sub_account_id="1",
        s3=None,
    )
    assert set(plan) == RunPlan.__required_keys__ | RunPlan.__optional_keys__
    assert len(json.dumps(plan)) < 2048  # one XCom per key, and the whole plan for the planners


def test_a_dag_folder_holding_only_the_dag_file_finds_the_dag(tmp_path: Path) -> None:
    """The shipped DAG file needs nothing beside it: the DAG comes from the installed package."""
    from airflow.dag_processing.dagbag import DagBag

    shutil.copy(DAGS / "ringcx_recordings_to_s3.py", tmp_path)
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    assert list(bag.dags) == ["ringcx_recordings_to_s3"]
    assert set(bag.dags["ringcx_recordings_to_s3"].task_dict) == ARCHIVE_TASKS | RESCAN_TASKS
