"""The audit DAG repairs what the archive lacks (issue 15 item 2), run with ``dag.test()``.

The live DAG archives three windows against the simulator (over HTTP) into the moto S3 server. Then the
archive is damaged the two ways the issue names: the 0-task run (one window's report and manifest deleted,
and one of its recordings with its sidecar) and an incomplete window (a 403 from the simulator's fault API
for one segment while the window ran, cleared afterwards). The audit DAG must find both in the ledger,
re-archive them through the operators and end with every due window complete; a second audit makes no
metadata call. A 403 that persists makes the audit fail, and its notifier (a real ``RingCXFileNotifier``)
writes the line, as the failed live window run did before it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.coverage import CoverageGrid, CoverageLedger
from airflow_provider_ringcx.example_dags.ringcx_archive_audit import DAG_ID as AUDIT_ID
from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import DAG_ID as LIVE_ID
from airflow_provider_ringcx.keys import (
    DEFAULT_KEY_TEMPLATE,
    manifest_key,
    recording_key,
    report_key,
    sidecar_key,
)
from tests.fixtures.airflow_dag import DAGS
from tests.fixtures.s3 import list_keys
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

UTC = timezone.utc
SUB = "99999999"
Q = timedelta(minutes=15)
FIRST = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
WINDOWS = [(FIRST + i * Q, FIRST + (i + 1) * Q) for i in range(3)]  # 14:00-14:45
AUDIT_CONF = {"audit_from": "2026-03-02T14:00:00Z", "audit_to": "2026-03-02T14:45:00Z"}
AUDIT_RUN = datetime(2026, 3, 3, 1, 30, tzinfo=UTC)


@pytest.fixture
def alerts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The failure notifier's file: ``RINGCX_ALERT_FILE`` stays set, as ``dag.test()`` parses again."""
    path = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("RINGCX_ALERT_FILE", str(path))
    monkeypatch.setenv("RINGCX_RETRIES", "0")
    return path


@pytest.fixture
def dags(example_dag: Any, alerts: Path) -> dict[str, Any]:
    """``dags/`` parsed with the alert file set and written to the DB (``dag.test()`` needs it)."""
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    bag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return bag.dags


@pytest.fixture
def sim(make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    handle = make_simulator(calls_per_hour=40, seed=7)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    return handle


def _live(dags: dict[str, Any], bucket: str, window: tuple[datetime, datetime]) -> Any:
    run_after = window[1] + Q  # the run of logical date L archives [L - 30 min, L - 15 min)
    return dags[LIVE_ID].test(
        logical_date=run_after, run_conf={"bucket": bucket, "prefix": "rec", "batch_size": 4}
    )


def _audit(dags: dict[str, Any], bucket: str, when: datetime = AUDIT_RUN) -> Any:
    return dags[AUDIT_ID].test(logical_date=when, run_conf={"bucket": bucket, "prefix": "rec", **AUDIT_CONF})


def _recorded(sim: SimulatorHandle, window: tuple[datetime, datetime]) -> list[dict]:
    return [s for s in sim.control.ground_truth(*window) if s["hasRecording"] and not s["restricted"]]


def _wav(segment: dict) -> str:
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


def _states(s3_client: Any, bucket: str) -> list[str]:
    ledger = CoverageLedger(s3_client, bucket, "rec")
    result = ledger.refresh(SUB, date(2026, 3, 2), date(2026, 3, 3), CoverageGrid())
    return [w.state for w in result.days[0].windows if w.start >= FIRST and w.end <= WINDOWS[-1][1]]


def _metadata_calls(sim: SimulatorHandle) -> int:
    return sum(sim.control.stats()["requests"].get("metadata", {}).values())


def _tis(run: Any) -> dict[tuple[str, int], str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id)).all()
        return {(ti.task_id, ti.map_index): ti.state for ti in rows}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_audit_repairs_a_zero_task_run_and_an_incomplete_window(
    dags: dict[str, Any], sim: SimulatorHandle, aws_conn: str, bucket: str, s3_client: Any, alerts: Path
) -> None:
    zero, broken, fine = WINDOWS
    assert _live(dags, bucket, zero).state == "success"
    forbidden = _recorded(sim, broken)[0]
    sim.control.set_faults([
        {"route": "download", "kind": "status", "status": 403, "match": forbidden["segmentId"]}
    ])  # fmt: skip
    assert _live(dags, bucket, broken).state == "failed"  # the report says incomplete
    sim.control.clear_faults()
    assert _live(dags, bucket, fine).state == "success"
    assert not s3_client.list_objects_v2(Bucket=bucket, Prefix=_wav(forbidden)).get("KeyCount")

    # the 0-task run: no manifest and no report for the first window; and one of its recordings gone
    lost = _recorded(sim, zero)[0]
    for key in (
        report_key("rec", SUB, *zero),
        manifest_key("rec", SUB, *zero),
        _wav(lost),
        sidecar_key(_wav(lost)),
    ):
        s3_client.delete_object(Bucket=bucket, Key=key)
    assert _states(s3_client, bucket) == ["missing", "incomplete", "complete"]

    before = _metadata_calls(sim)
    run = _audit(dags, bucket)
    assert run.state == "success", _tis(run)
    tis = _tis(run)
    assert sorted(i for (task, i) in tis if task == "fetch_repair_windows") == [0, 1]  # a task per gap
    assert {tis[("report_repairs", 0)], tis[("report_repairs", 1)]} == {"success"}
    assert _metadata_calls(sim) - before == 1  # the missing window's; the incomplete one had its manifest
    assert _states(s3_client, bucket) == ["complete", "complete", "complete"]
    for segment in (lost, forbidden):  # the repaired recordings, each with its sidecar
        head = s3_client.head_object(Bucket=bucket, Key=_wav(segment))
        assert head["Metadata"]["sha256"] == segment["sha256"]
        sidecar = json.loads(
            s3_client.get_object(Bucket=bucket, Key=sidecar_key(_wav(segment)))["Body"].read()
        )
        assert segment["segmentId"] in json.dumps(sidecar)
    wavs = {k for k in list_keys(s3_client, bucket, "rec/sub_account=") if k.endswith(".wav")}
    assert wavs == {_wav(s) for window in WINDOWS for s in _recorded(sim, window)}
    for window in (zero, broken):
        body = s3_client.get_object(Bucket=bucket, Key=report_key("rec", SUB, *window))["Body"].read()
        assert json.loads(body)["complete"] is True

    before = _metadata_calls(sim)
    again = _audit(dags, bucket, AUDIT_RUN + timedelta(days=1))
    assert again.state == "success"
    assert _metadata_calls(sim) == before  # nothing to repair: no metadata call
    assert _tis(again)[("fetch_repair_windows", -1)] == "skipped"  # a zero-length map
    audit_lines = [line for line in _lines(alerts) if line["dag_id"] == AUDIT_ID]
    assert audit_lines == []  # no audit failed


def test_an_unrepairable_gap_fails_the_audit_and_notifies(
    dags: dict[str, Any], sim: SimulatorHandle, aws_conn: str, bucket: str, s3_client: Any, alerts: Path
) -> None:
    window = WINDOWS[0]
    forbidden = _recorded(sim, window)[0]
    sim.control.set_faults([
        {"route": "download", "kind": "status", "status": 403, "match": forbidden["segmentId"]}
    ])  # fmt: skip
    live = _live(dags, bucket, window)
    assert live.state == "failed"
    (line,) = _lines(alerts)  # the failed window run notified: DAG, run and window in the message
    assert (line["event"], line["dag_id"], line["run_id"]) == ("failure", LIVE_ID, live.run_id)
    assert line["window"] == {"start": "2026-03-02T14:00:00Z", "end": "2026-03-02T14:15:00Z"}
    assert LIVE_ID in line["message"]
    assert live.run_id in line["message"]
    assert "2026-03-02T14:00:00Z - 2026-03-02T14:15:00Z" in line["message"]

    run = dags[AUDIT_ID].test(
        logical_date=AUDIT_RUN,
        run_conf={"bucket": bucket, "prefix": "rec", "audit_from": "2026-03-02T14:00Z",
                  "audit_to": "2026-03-02T14:15Z"},
    )  # fmt: skip
    assert run.state == "failed"
    tis = _tis(run)
    assert tis[("report_repairs", 0)] == "failed"  # the 403 again
    assert tis[("verify_coverage", -1)] == "failed"
    audit = [entry for entry in _lines(alerts) if entry["dag_id"] == AUDIT_ID]
    assert len(audit) == 1
    assert (audit[0]["event"], audit[0]["run_id"]) == ("failure", run.run_id)
    assert audit[0]["failed_task"] in {"report_repairs", "verify_coverage"}, audit[0]
    assert os.stat(alerts).st_mode & 0o077 == 0  # the alert file is private
