"""``dag.test()`` of the live example DAG with ``include_summaries: both``: AI summaries land beside the
recordings, a late one (RingCX answers 404 until 90 minutes after the call) is pending, then picked up by
the next run's late-arrival rescan; the archive invariants (summaries included) hold, and no secret is in a
summary object or its metadata (the token went to RingCX as a cookie).

The simulator's data clock is pinned (``now``): 14:35 for the first run (window 14:00-14:15), 16:00 for the
second (window 14:15-14:30, rescanning 14:00-14:15).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from airflow_provider_ringcx.index.store import read_day
from airflow_provider_ringcx.keys import (
    DEFAULT_KEY_TEMPLATE,
    SUMMARY_KINDS,
    index_key,
    recording_key,
    report_key,
    summary_key,
)
from tests.dags.test_dag_transcripts import RUN, SUB, W_END, W_START, _exists
from tests.fixtures.secret_scan import s3_object_places, scan_places, secret_needles
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.reliability.invariants import check_archive


@pytest.fixture
def sim(make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    knobs = {"summary_late_share": 0.3, "summary_missing_share": 0.25}
    handle = make_simulator(calls_per_hour=40, seed=7, now="2026-03-02T14:35:00Z", **knobs)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    return handle


def _keys(segment: dict) -> dict[str, str]:
    when = datetime.fromisoformat(str(segment["segmentStartTimeMs"]).replace("Z", "+00:00"))
    wav = recording_key(
        template=DEFAULT_KEY_TEMPLATE, prefix="rec", sub_account_id=SUB,
        dialog_id=segment["dialogId"], segment_id=segment["segmentId"], when=when,
    )  # fmt: skip
    return {kind: summary_key(wav, kind) for kind in SUMMARY_KINDS}


def assert_indexed(s3_client: Any, bucket: str, truth: list[dict], archived: tuple[str, ...]) -> None:
    """The day's index names exactly the summaries S3 holds (``summary_keys``: legal holds select by it)."""
    rows, _ = read_day(s3_client, bucket, index_key("rec", SUB, W_START.date()))
    by_ident = {(row["dialog_id"], row["segment_id"]): row for row in rows}
    for segment in truth:
        row = by_ident[(segment["dialogId"], segment["segmentId"])]
        want = sorted(key for kind, key in _keys(segment).items() if segment["summaries"][kind] in archived)
        assert row["summary_keys"] == (want or None), (row["segment_id"], row["summary_keys"], want)


def test_live_dag_archives_summaries_and_the_rescan_picks_up_a_late_one(
    example_dag: Any, sim: SimulatorHandle, aws_conn: str, bucket: str, s3_client: Any
) -> None:
    conf = {"bucket": bucket, "prefix": "rec", "include_summaries": "both"}
    first = example_dag.test(logical_date=RUN, run_conf=conf)
    assert first.state == "success"
    truth = [t for t in sim.control.ground_truth(W_START, W_END) if t["hasRecording"] and not t["restricted"]]
    served = {kind for t in truth for kind in t["summaries"].values()}
    assert {"ok", "late", "missing", "none"} <= served, served
    for segment in truth:
        for kind, key in _keys(segment).items():
            assert _exists(s3_client, bucket, key) == (segment["summaries"][kind] == "ok"), key
    report = json.loads(
        s3_client.get_object(Bucket=bucket, Key=report_key("rec", SUB, W_START, W_END))["Body"].read()
    )
    assert report["complete"] is True  # a pending summary is not a lost recording
    check_archive(s3_client, bucket, "rec", truth, report=report).assert_ok()
    assert_indexed(s3_client, bucket, truth, ("ok",))  # a pending summary is not indexed yet

    # 16:00: the late summaries are ready; the next run's rescan of 14:00-14:15 archives them
    sim.control.patch_config(now="2026-03-02T16:00:00Z")
    conf.update(rescan_lookback_minutes=15, rescan_final_windows=True)
    second = example_dag.test(logical_date=RUN + timedelta(minutes=15), run_conf=conf)
    assert second.state == "success"
    for segment in truth:
        for kind, key in _keys(segment).items():  # missing: 404 forever, pending, never reported lost
            assert _exists(s3_client, bucket, key) == (segment["summaries"][kind] in ("ok", "late")), key
    assert_indexed(s3_client, bucket, truth, ("ok", "late"))  # the rescan's report re-indexed the late ones
    both = [t for t in sim.control.ground_truth(W_START, W_END + timedelta(minutes=15)) if t["hasRecording"]]
    check = check_archive(s3_client, bucket, "rec", both)
    check.assert_ok()
    assert check.summaries == sum(
        1 for t in both if not t["restricted"] for k in SUMMARY_KINDS if t["summaries"][k] in ("ok", "late")
    )
    versions = s3_client.list_object_versions(Bucket=bucket).get("Versions", [])
    assert len({v["Key"] for v in versions}) == len(versions)  # nothing written twice

    secrets = {"client secret": sim.config.client_secret, "JWT": sim.config.jwt}
    secrets.update({f"token {i}": t["token"] for i, t in enumerate(sim.control.stats()["tokens_issued"])})
    places = s3_object_places(s3_client, bucket, "rec/", lambda key: ".summary." in key)
    assert places
    assert scan_places(places, secret_needles(secrets, sim.config.client_id)) == []
