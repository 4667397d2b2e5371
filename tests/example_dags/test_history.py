"""``dag.test()`` runs of the history DAG (and the live DAG beside it) against the simulator and moto (HTTP).

The checks read the simulator's request counters and ground truth, S3 (object versions) and the coverage
ledger built from the reports, never only Airflow's run states.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.coverage import CoverageGrid, CoverageLedger
from airflow_provider_ringcx.example_dags.ringcx_recordings_history import DAG_ID
from airflow_provider_ringcx.keys import DEFAULT_KEY_TEMPLATE, recording_key, report_key
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

UTC = timezone.utc
SUB = "99999999"
LAG = timedelta(minutes=15)
DAY = timedelta(days=1)
DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture
def history_dag(example_dag: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The history DAG, parsed from ``dags/`` with retries off and written to the DB (``dag.test`` needs it;
    ``example_dag`` prepared the DB). The environment stays set for the test: ``dag.test`` re-parses."""
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    monkeypatch.setenv("RINGCX_RETRIES", "0")
    monkeypatch.setenv("AIRFLOW__RINGCX__BUDGET_DIR", str(tmp_path / "budgets"))  # nothing from other tests
    bag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return bag.dags[DAG_ID]


def _connect(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, max_window_seconds: int) -> None:
    connection = ringcx_connection_json(sim, max_window_seconds=max_window_seconds)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", connection)


def _recorded(sim: SimulatorHandle, start: datetime, end: datetime) -> list[dict]:
    return [s for s in sim.control.ground_truth(start, end) if s["hasRecording"] and not s["restricted"]]


def _wav_key(segment: dict) -> str:
    start = segment["segmentStartTimeMs"]  # epoch ms, or ISO-8601 text
    when = (
        datetime.fromtimestamp(start / 1000, tz=UTC)
        if isinstance(start, (int, float))
        else datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    )
    return recording_key(
        template=DEFAULT_KEY_TEMPLATE, prefix="rec", sub_account_id=SUB,
        dialog_id=segment["dialogId"], segment_id=segment["segmentId"], when=when,
    )  # fmt: skip


def _report(s3_client: Any, bucket: str, start: datetime, end: datetime) -> dict:
    body = s3_client.get_object(Bucket=bucket, Key=report_key("rec", SUB, start, end))["Body"].read()
    return dict(json.loads(body))


def _metadata_calls(sim: SimulatorHandle) -> dict[str, int]:
    return dict(sim.control.stats()["requests"].get("metadata", {}))


def _download_summaries(run: Any) -> list[dict]:
    """The ``summary`` XCom of each mapped ``download_segments`` task of ``run``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.run_id == run.run_id,
                XComModel.dag_id == run.dag_id,
                XComModel.task_id == "download_segments",
                XComModel.key == "summary",
            )
        ).all()
        return [XComModel.deserialize_value(row) for row in rows]


@pytest.mark.parametrize(
    ("day", "max_window_seconds"),
    [(datetime(2026, 3, 5, tzinfo=UTC), 10800), (datetime(2026, 3, 6, tzinfo=UTC), 3600)],
)
def test_a_history_day_takes_ceil_day_over_window_metadata_calls_and_no_rescan(
    history_dag: Any,
    make_simulator: Callable[..., SimulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    aws_conn: str,
    bucket: str,
    s3_client: Any,
    day: datetime,
    max_window_seconds: int,
) -> None:
    """One run archives its whole day with ``ceil(86400 / window)`` calls: 8 where the connection allows the
    vendor's 10800 s, 24 at 3600 s (the connection caps the 10800 s the DAG asks); one manifest, one
    report, no late-arrival rescan."""
    sim = make_simulator(calls_per_hour=1, seed=21)
    _connect(sim, monkeypatch, max_window_seconds)
    run = history_dag.test(logical_date=day, run_conf={"bucket": bucket, "prefix": "rec"})
    assert run.state == "success"
    calls = math.ceil(86400 / max_window_seconds)
    assert _metadata_calls(sim) == {"200": calls}  # every call answered; no 429, no rescan call
    start, end = day - LAG, day + DAY - LAG
    expected = _recorded(sim, start, end)
    assert len(expected) >= 10
    report = _report(s3_client, bucket, start, end)
    assert report["complete"] is True
    assert report["counts"]["expected"] == report["counts"]["archived"] == len(expected)
    assert report["rescan"] is None
    assert report["rescan_note"].startswith("disabled")
    manifests = s3_client.list_objects_v2(Bucket=bucket, Prefix="rec/_manifests/")["Contents"]
    assert [m["Key"].rsplit("window=", 1)[1] for m in manifests] == [f"{report['window']['key']}.jsonl"]


def test_live_and_history_archive_a_recording_once_and_their_coverage_tiles(
    history_dag: Any,
    example_dag: Any,
    make_simulator: Callable[..., SimulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    aws_conn: str,
    locked_bucket: str,
    s3_client: Any,
) -> None:
    """The live DAG archives three windows: the first and the last of the history day (inside it) and the
    first one after it. Then the history DAG archives the day: what live archived it finds
    ``already_archived`` (not downloaded again), S3 holds one version of each recording, and the day's
    coverage (live and history reports together) is complete, the history's end meeting the live window
    after it with no gap."""
    day = datetime(2026, 3, 8, tzinfo=UTC)  # archives [03-07 23:45, 03-08 23:45)
    start, end = day - LAG, day + DAY - LAG
    sim = make_simulator(calls_per_hour=3, seed=5)
    _connect(sim, monkeypatch, 10800)
    conf = {"bucket": locked_bucket, "prefix": "rec"}
    live_runs = [day + LAG, day + DAY, day + DAY + LAG]  # windows [start, day), [end - 15m, end), [end, +15m)
    live_windows = [(at - 2 * LAG, at - LAG) for at in live_runs]
    for at in live_runs:
        assert example_dag.test(logical_date=at, run_conf=conf).state == "success"
    inside = [s for a, b in live_windows[:2] for s in _recorded(sim, a, b)]
    assert inside, "the simulated traffic left the live windows inside the day empty; change the seed"

    sim.control.reset_stats()
    run = history_dag.test(logical_date=day, run_conf=conf)
    assert run.state == "success"
    expected = _recorded(sim, start, end)
    summaries = _download_summaries(run)
    assert sum(s["counts"]["already_archived"] for s in summaries) == len(inside)
    assert sum(s["counts"]["archived"] for s in summaries) == len(expected) - len(inside)
    downloads = sim.control.stats()["requests"].get("download", {})
    assert sum(downloads.values()) == len(expected) - len(inside)  # nothing live archived is fetched again
    report = _report(s3_client, locked_bucket, start, end)
    assert report["complete"] is True
    assert report["counts"]["expected"] == len(expected)

    everything = _recorded(sim, start, live_windows[2][1])  # the day and the live window after it
    for segment in everything:
        key = _wav_key(segment)
        versions = s3_client.list_object_versions(Bucket=locked_bucket, Prefix=key)["Versions"]
        assert [v["Key"] for v in versions] == [key], key  # one object, one version
    wavs = [
        obj["Key"]
        for page in s3_client.get_paginator("list_object_versions").paginate(
            Bucket=locked_bucket, Prefix="rec/sub_account="
        )
        for obj in page.get("Versions", [])
        if obj["Key"].endswith(".wav")
    ]
    assert sorted(wavs) == sorted(_wav_key(s) for s in everything)

    ledger = CoverageLedger(s3_client, locked_bucket, "rec")
    result = ledger.refresh(SUB, day.date(), (day + DAY).date(), CoverageGrid())
    assert result.ok, [w.as_dict() for w in result.problems()]
    assert result.counts()["complete"] == 96  # 00:00-23:45 by the history's report, 23:45-24:00 by live's
    assert report["window"]["end"] == _report(s3_client, locked_bucket, *live_windows[2])["window"]["start"]
