"""``dag.test()`` of the live example DAG with ``include_transcripts`` on: transcripts land beside the
recordings, a late one (RingCX answers 404 until an hour after the call) is pending, then picked up by the
next run's late-arrival rescan; the archive invariants (transcripts included) hold, and no secret is in a
transcript object or its metadata.

The simulator's data clock is pinned (``now``): 14:35 for the first run (window 14:00-14:15), 16:00 for the
second (window 14:15-14:30, rescanning 14:00-14:15). The runs' logical dates are in March 2026 either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_ringcx.index.store import read_day
from airflow_provider_ringcx.keys import (
    DEFAULT_KEY_TEMPLATE,
    index_key,
    recording_key,
    report_key,
    transcript_key,
)
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.reliability.invariants import check_archive

UTC = timezone.utc
RUN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # archives 14:00-14:15 (15-minute lag)
W_START, W_END = datetime(2026, 3, 2, 14, 0, tzinfo=UTC), datetime(2026, 3, 2, 14, 15, tzinfo=UTC)
SUB = "99999999"


@pytest.fixture
def sim(make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    handle = make_simulator(
        calls_per_hour=40, seed=7, now="2026-03-02T14:35:00Z", transcript_late_share=0.3,
        transcript_missing_share=0.25,
    )  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    return handle


def _assert_indexed(s3_client: Any, bucket: str, truth: list[dict], archived: tuple[str, ...]) -> None:
    """The day's index names exactly the transcripts S3 holds (``transcript_key``: holds select by it)."""
    rows, _ = read_day(s3_client, bucket, index_key("rec", SUB, W_START.date()))
    by_ident = {(row["dialog_id"], row["segment_id"]): row for row in rows}
    for segment in truth:
        row = by_ident[(segment["dialogId"], segment["segmentId"])]
        want = _transcript_key(segment) if segment["transcript"] in archived else None
        assert row["transcript_key"] == want, (row["segment_id"], row["transcript_key"], want)


def _transcript_key(segment: dict) -> str:
    when = datetime.fromisoformat(str(segment["segmentStartTimeMs"]).replace("Z", "+00:00"))
    return transcript_key(
        recording_key(
            template=DEFAULT_KEY_TEMPLATE, prefix="rec", sub_account_id=SUB,
            dialog_id=segment["dialogId"], segment_id=segment["segmentId"], when=when,
        )
    )  # fmt: skip


def _exists(s3_client: Any, bucket: str, key: str) -> bool:
    return bool(s3_client.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))


def test_live_dag_archives_transcripts_and_the_rescan_picks_up_a_late_one(
    example_dag: Any, sim: SimulatorHandle, aws_conn: str, bucket: str, s3_client: Any
) -> None:
    conf = {"bucket": bucket, "prefix": "rec", "include_transcripts": True}
    first = example_dag.test(logical_date=RUN, run_conf=conf)
    assert first.state == "success"
    truth = [t for t in sim.control.ground_truth(W_START, W_END) if t["hasRecording"]]
    kinds = {t["transcript"] for t in truth}
    assert {"ok", "late", "missing", "none"} <= kinds, kinds
    for segment in truth:
        assert _exists(s3_client, bucket, _transcript_key(segment)) == (segment["transcript"] == "ok")
    late = [t for t in truth if t["transcript"] == "late"]
    missing = [t for t in truth if t["transcript"] == "missing"]
    key = report_key("rec", SUB, W_START, W_END)
    report = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert report["complete"] is True  # a pending transcript is not a lost recording
    check_archive(s3_client, bucket, "rec", truth, report=report).assert_ok()
    _assert_indexed(s3_client, bucket, truth, ("ok",))  # a pending transcript has no key in the index yet

    # 16:00: the late transcripts are ready; the next run's rescan of 14:00-14:15 archives them
    sim.control.patch_config(now="2026-03-02T16:00:00Z")
    conf.update(rescan_lookback_minutes=15, rescan_final_windows=True)
    second = example_dag.test(logical_date=RUN + timedelta(minutes=15), run_conf=conf)
    assert second.state == "success"
    for segment in late:
        assert _exists(s3_client, bucket, _transcript_key(segment)), segment["segmentId"]
    for segment in missing:  # 404 forever: still pending, never reported lost, never an object
        assert not _exists(s3_client, bucket, _transcript_key(segment))
    _assert_indexed(s3_client, bucket, truth, ("ok", "late"))  # re-indexed by the rescan's report
    both = [t for t in sim.control.ground_truth(W_START, W_END + timedelta(minutes=15)) if t["hasRecording"]]
    check = check_archive(s3_client, bucket, "rec", both)
    check.assert_ok()
    assert check.transcripts == sum(1 for t in both if t["transcript"] in ("ok", "late"))
    versions = s3_client.list_object_versions(Bucket=bucket).get("Versions", [])
    assert len({v["Key"] for v in versions}) == len(versions)  # nothing written twice

    # no secret in a transcript object or its metadata (the client secret, the JWT, every issued token)
    secrets = {
        sim.config.client_secret,
        sim.config.jwt,
        *(t["token"] for t in sim.control.stats()["tokens_issued"]),
    }
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="rec/"):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".transcript.json"):
                head = s3_client.head_object(Bucket=bucket, Key=obj["Key"])
                text = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
                text += json.dumps(head["Metadata"])
                assert not [s for s in secrets if s and s in text], obj["Key"]
