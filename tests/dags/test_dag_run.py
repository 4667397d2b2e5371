"""``dag.test()`` runs of the example DAG against the simulator and an S3 server over HTTP.

Each run goes through the real task code (operators, hook, S3 landing, report) in this process; the checks
use S3 and the simulator's ground truth.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_ringcx.index.store import read_day
from airflow_provider_ringcx.keys import DEFAULT_KEY_TEMPLATE, index_key, recording_key, report_key
from tests.fixtures.s3 import list_keys
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

UTC = timezone.utc
RUN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # archives 14:00-14:15 (15-minute lag)
W_START, W_END = datetime(2026, 3, 2, 14, 0, tzinfo=UTC), datetime(2026, 3, 2, 14, 15, tzinfo=UTC)
SUB = "99999999"


@pytest.fixture
def sim(make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    handle = make_simulator(calls_per_hour=40, seed=7)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    return handle


def _run(dag: Any, bucket: str, run_after: datetime = RUN, **conf: Any) -> Any:
    return dag.test(logical_date=run_after, run_conf={"bucket": bucket, "prefix": "rec", **conf})


def _tis(run: Any) -> dict[tuple[str, int], Any]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id)).all()
        for row in rows:
            session.expunge(row)
    return {(ti.task_id, ti.map_index): ti for ti in rows}


def _report(s3_client: Any, bucket: str, start: datetime = W_START, end: datetime = W_END) -> dict:
    key = report_key("rec", SUB, start, end)
    return json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())


def _expected(sim: SimulatorHandle, start: datetime = W_START, end: datetime = W_END) -> list[dict]:
    return [s for s in sim.control.ground_truth(start, end) if s["hasRecording"] and not s["restricted"]]


def _wav_key(segment: dict) -> str:
    start = segment["segmentStartTimeMs"]
    when = (
        datetime.fromtimestamp(start / 1000, tz=UTC)
        if isinstance(start, (int, float))
        else datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    )
    return recording_key(
        template=DEFAULT_KEY_TEMPLATE, prefix="rec", sub_account_id=SUB,
        dialog_id=segment["dialogId"], segment_id=segment["segmentId"], when=when,
    )  # fmt: skip


def test_run_archives_the_window_reports_and_emits_the_asset(
    example_dag: Any, sim: SimulatorHandle, aws_conn: str, bucket: str, s3_client: Any
) -> None:
    run = _run(example_dag, bucket, batch_size=4)
    assert run.state == "success"
    expected = _expected(sim)
    assert len(expected) >= 8
    keys = set(list_keys(s3_client, bucket, "rec/sub_account="))
    for segment in expected:
        key = _wav_key(segment)
        assert key in keys
        head = s3_client.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"]["sha256"] == segment["sha256"]
    assert len([k for k in keys if k.endswith(".wav")]) == len(expected)  # nothing else, no duplicates
    report = _report(s3_client, bucket)
    assert report["complete"] is True
    assert report["counts"]["expected"] == report["counts"]["archived"] == len(expected)
    assert report["not_archived"] == []
    assert report["window"]["key"] == "20260302T1400Z_20260302T1415Z"
    assert report["rescan"] is None
    assert report["rescan_note"].startswith("skipped")  # 24 h earlier was never archived

    tis = _tis(run)
    labels = sorted(ti.rendered_map_index for (task, _), ti in tis.items() if task == "download_segments")
    batches = -(-len(expected) // 4)
    assert len(labels) == batches
    assert labels[0].startswith(f"batch 1/{batches} \u00b7 14:")
    assert tis[("fetch_rescan_window", -1)].state == "skipped"
    assert tis[("report_window", -1)].state == "success"

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run.run_id)).all()
        extras = [event.extra for event in events]
    assert len(extras) == 1
    assert extras[0]["expected"] == extras[0]["archived"] == len(expected)
    assert extras[0]["report_key"] == report["report_key"]


def test_zero_segment_window_succeeds_cleanly(
    example_dag: Any, make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch,
    aws_conn: str, bucket: str, s3_client: Any,
) -> None:  # fmt: skip
    handle = make_simulator(traffic_end="2026-03-01T00:00:00Z")
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    run = _run(example_dag, bucket)
    assert run.state == "success"
    tis = _tis(run)
    assert tis[("download_segments", -1)].state == "skipped"  # zero-length expand
    assert tis[("report_window", -1)].state == "success"
    report = _report(s3_client, bucket)
    assert report["complete"] is True
    assert report["counts"]["expected"] == report["counts"]["archived"] == 0


def test_report_runs_after_failed_batches_and_fails_naming_each_segment(
    example_dag: Any, make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch,
    aws_conn: str, bucket: str, s3_client: Any,
) -> None:  # fmt: skip
    handle = make_simulator(calls_per_hour=40, seed=7, restricted_share=0.3)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    run = _run(example_dag, bucket, batch_size=4, fail_on_forbidden=True)
    assert run.state == "failed"
    tis = _tis(run)
    download_states = {ti.state for (task, _), ti in tis.items() if task == "download_segments"}
    assert "failed" in download_states
    assert tis[("report_window", -1)].state == "failed"  # it ran (all_done) and found the gaps
    report = _report(s3_client, bucket)
    restricted = [
        s for s in handle.control.ground_truth(W_START, W_END) if s["hasRecording"] and s["restricted"]
    ]
    assert restricted
    assert report["complete"] is False
    assert report["counts"]["not_archived"] == len(restricted)
    assert {(i["dialog_id"], i["segment_id"]) for i in report["not_archived"]} == {
        (s["dialogId"], s["segmentId"]) for s in restricted
    }
    assert all(i["status"] == "forbidden" and i["reason"] for i in report["not_archived"])


def test_late_arrivals_are_archived_by_the_rescan_without_duplicates(
    example_dag: Any, sim: SimulatorHandle, aws_conn: str, bucket: str, s3_client: Any
) -> None:
    assert _run(example_dag, bucket).state == "success"
    late_end = W_START + timedelta(minutes=7)
    sim.control.add_segments(
        [{"dialogId": "late-dialog", "segmentId": "late-segment", "segmentEndTimeMs": late_end.isoformat()}]
    )
    later = RUN + timedelta(minutes=15)  # its window is 14:15-14:30; look back 15 min to 14:00-14:15
    # 14:00-14:15 (March) was listed just now, months after its end: final, so the rescan would be skipped
    # (test_dag_rescan.py); rescan_final_windows forces it, to show a late arrival is archived once
    run = _run(example_dag, bucket, later, rescan_lookback_minutes=15, rescan_final_windows=True)
    assert run.state == "success"
    report = _report(s3_client, bucket, W_END, W_END + timedelta(minutes=15))
    rescan = report["rescan"]
    assert rescan["window"]["key"] == "20260302T1400Z_20260302T1415Z"
    assert rescan["late"] == rescan["late_archived"] == 1
    assert rescan["late_segments"][0]["segment_id"] == "late-segment"
    assert report["counts"]["late_found"] == 1
    late_keys = [k for k in list_keys(s3_client, bucket, "rec/") if "late-segment" in k]
    assert sorted(k.rsplit(".", 1)[1] for k in late_keys) == ["json", "wav"]
    early = _expected(sim)  # now includes the late one
    wav = {k for k in list_keys(s3_client, bucket, "rec/sub_account=") if k.endswith(".wav")}
    assert {_wav_key(s) for s in early} <= wav
    # The rescan downloaded only the late segment: everything else of the window was not in its plan.
    tis = _tis(run)
    late_tasks = [ti for (task, _), ti in tis.items() if task == "download_late_segments"]
    assert len(late_tasks) == 1
    assert late_tasks[0].rendered_map_index.startswith("batch 1/1")
    # the rescan's report merged the late segment into the day's index, as a row of the earlier window
    rows, _ = read_day(s3_client, bucket, index_key("rec", SUB, W_START.date()))
    (late,) = [row for row in rows if row["segment_id"] == "late-segment"]
    assert (late["outcome"], late["archive_window"]) == ("archived", "20260302T1400Z_20260302T1415Z")
    assert ".rescan-by-20260302T1415Z_20260302T1430Z" in late["manifest_key"]
    served = sim.control.ground_truth(W_START, W_END + timedelta(minutes=15))  # both windows, all rows
    assert sorted((row["dialog_id"], row["segment_id"]) for row in rows) == sorted(
        (s["dialogId"], s["segmentId"]) for s in served
    )
