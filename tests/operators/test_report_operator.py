"""RingCXWindowReportOperator against the simulator and moto over HTTP: the window's verdict.

The window is fetched and downloaded by the real operators; the report operator then runs ``execute`` with
a context dict. The only stand-in is :class:`TaskInstanceStandIn` (``xcom_push``/``xcom_pull`` and the
ids of a TaskInstance, which does not exist outside a DAG run); the Asset events are a plain mapping.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ringcx.failfast import RingCXConfigFailure
from airflow_provider_ringcx.keys import manifest_key, report_key
from airflow_provider_ringcx.links import REPORT_LINK_XCOM_KEY, RingCXReportLink
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from airflow_provider_ringcx.operators.report import RingCXWindowIncompleteError, RingCXWindowReportOperator
from airflow_provider_ringcx.s3.options import OPTION_NAMES
from tests.operators.conftest import XComRecorder, fast_hook

START = datetime(2026, 3, 2, 14, 15, tzinfo=timezone.utc)
END = START + timedelta(minutes=15)
W_START, W_END = START - timedelta(minutes=15), START  # the default 15-minute lag
SUB = "99999999"
ASSET = Asset(name="ringcx_test_archive", uri="ringcx://test-archive")


class TaskInstanceStandIn(XComRecorder):
    """``xcom_pull`` answers from what other tasks pushed (``by_task``), as the TaskInstance would."""

    dag_id, run_id, try_number = "probe", "manual__1", 1

    def __init__(self, by_task: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.by_task = by_task

    def xcom_pull(self, task_ids: str | list[str], key: str = "return_value") -> Any:
        if isinstance(task_ids, str):
            return self.by_task.get(task_ids, {}).get(key)
        values = []
        for task_id in task_ids:
            values += self.by_task.get(task_id, {}).get(key, [])
        return values


class Events(dict):
    def __missing__(self, asset: Asset) -> Any:
        self[asset] = SimpleNamespace(extra={})
        return self[asset]


def _context(ti: TaskInstanceStandIn) -> dict[str, Any]:
    return {"data_interval_start": START, "data_interval_end": END, "ti": ti, "outlet_events": Events()}


def archive_window(bucket: str, *, skip_batches: int = 0) -> TaskInstanceStandIn:
    """Fetch the window and download all but the first ``skip_batches`` batches; return their XComs."""
    fetch = XComRecorder()
    batches = fast_hook(
        RingCXInteractionMetadataOperator(task_id="fetch", bucket=bucket, batch_size=3)
    ).execute({"data_interval_start": START, "data_interval_end": END, "ti": fetch})
    assert len(batches) > skip_batches
    summaries = []
    for batch in batches[skip_batches:]:
        ti = XComRecorder()
        op = RingCXRecordingsToS3Operator(task_id="download", batch=batch, bucket=bucket, retry_backoff=0)
        fast_hook(op).execute({"ti": ti})
        summaries.append(ti.pushed["summary"])
    return TaskInstanceStandIn(
        {"fetch": {"manifest": fetch.pushed["manifest"]}, "download": {"summary": summaries}}
    )


def report_operator(bucket: str, **kwargs: Any) -> RingCXWindowReportOperator:
    return RingCXWindowReportOperator(
        task_id="report",
        bucket=bucket,
        metadata_task_id="fetch",
        download_task_ids=["download"],
        outlets=[ASSET],
        **kwargs,
    )


def test_an_archived_window_is_reported_complete_with_its_asset_event_and_link(
    simulator: Any,
    ringcx_conn: str,
    aws_conn: str,
    s3_client: Any,
    bucket: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ti = archive_window(bucket)
    context = _context(ti)
    caplog.set_level(logging.INFO, logger="airflow.task")
    summary = report_operator(bucket).execute(context)  # type: ignore[arg-type]
    assert summary["complete"] is True
    assert summary["archived"] == summary["expected"] > 0
    key = report_key("ringcx", SUB, W_START, W_END)  # the default key, sub-account from the connection
    report = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert report["complete"] is True
    assert report["manifest"]["verified"] is True  # checked against the metadata task's identity
    assert report["manifest"]["key"] == manifest_key("ringcx", SUB, W_START, W_END)
    assert context["outlet_events"][ASSET].extra["archived"] == summary["archived"]
    assert context["outlet_events"][ASSET].extra["report_key"] == key
    assert ti.pushed[REPORT_LINK_XCOM_KEY]["key"] == key
    assert f"ringcx window {W_START:%Y%m%dT%H%MZ}" in caplog.text  # the outcome table ends the log


def test_a_missing_batch_fails_the_report_naming_the_window_and_the_report(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    ti = archive_window(bucket, skip_batches=1)
    with pytest.raises(RingCXWindowIncompleteError, match="is incomplete") as err:
        report_operator(bucket).execute(_context(ti))  # type: ignore[arg-type]
    assert isinstance(err.value, AirflowFailException)  # not retried: a retry finds the same gaps
    key = report_key("ringcx", SUB, W_START, W_END)
    assert f"s3://{bucket}/{key}" in str(err.value)
    report = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert report["complete"] is False
    assert {item["status"] for item in report["not_archived"]} == {"object_missing"}


def test_allowed_statuses_and_flags_from_templates_are_parsed(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    ti = archive_window(bucket, skip_batches=1)
    op = report_operator(bucket, allow_unarchived='["object_missing"]', verify_content="false", rescan="no")
    summary = op.execute(_context(ti))  # type: ignore[arg-type]
    assert summary["complete"] is True
    assert summary["not_archived"] > 0
    report = json.loads(
        s3_client.get_object(Bucket=bucket, Key=report_key("ringcx", SUB, W_START, W_END))["Body"].read()
    )
    assert report["verification"] == "sidecar+checksum"  # "false" is False, not a truthy string


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"allow_unarchived": ["forbiden"]}, "'forbiden', not a status of the report"),
        ({"verify_content": "maybe"}, "verify_content='maybe' is not a boolean"),
        ({"object_lock_mode": "STRICT"}, "object_lock_mode"),
    ],
)
def test_a_bad_argument_fails_without_retries_before_any_s3_call(kwargs: dict[str, Any], match: str) -> None:
    op = report_operator("no-such-bucket", sub_account_id=SUB, **kwargs)
    with pytest.raises(RingCXConfigFailure, match=match):
        op.execute(_context(TaskInstanceStandIn({})))  # type: ignore[arg-type]


def test_a_report_without_its_bucket_says_the_upstream_task_did_not_complete() -> None:
    op = report_operator(None)  # type: ignore[arg-type]  # what an XComArg of a failed resolve_run renders to
    with pytest.raises(AirflowFailException, match=r"resolve_run in the example DAGs.*did not complete"):
        op.execute(_context(TaskInstanceStandIn({})))  # type: ignore[arg-type]


def test_the_operator_carries_its_link_and_runs_after_failed_downloads_by_default() -> None:
    assert [link.name for link in RingCXWindowReportOperator.operator_extra_links] == ["Window report"]
    assert isinstance(RingCXWindowReportOperator.operator_extra_links[0], RingCXReportLink)
    op = report_operator("b")
    assert op.trigger_rule == "all_done"
    assert RingCXWindowReportOperator(task_id="r", bucket="b", trigger_rule="all_success").trigger_rule == (
        "all_success"
    )
    assert set(OPTION_NAMES) <= set(op.template_fields)
    with pytest.raises(TypeError):
        RingCXWindowReportOperator("report", bucket="b")  # type: ignore[misc]  # keyword-only
