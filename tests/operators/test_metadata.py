"""RingCXInteractionMetadataOperator against the simulator and moto: windows, readiness, manifest, batches."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXError, RingCXWindowNotReadyError
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.transfers.manifest_reader import iter_manifest, read_summary
from airflow_provider_ringcx.triggers.window import WindowReadyTrigger
from tests.fixtures.s3 import batch_refs, list_keys
from tests.operators.conftest import context, fast_hook

START = datetime(2026, 3, 2, 14, 15, tzinfo=timezone.utc)
END = START + timedelta(minutes=15)
MANIFEST = "ringcx/_manifests/sub_account=99999999/window=20260302T1400Z_20260302T1415Z.jsonl"


def operator(bucket: str, **kwargs: Any) -> RingCXInteractionMetadataOperator:
    return fast_hook(
        RingCXInteractionMetadataOperator(task_id="fetch_metadata_window", bucket=bucket, **kwargs)
    )


def metadata_calls(simulator: Any) -> int:
    return sum(simulator.control.stats()["requests"].get("metadata", {}).values())


def test_parse_time_touches_no_connection() -> None:
    op = RingCXInteractionMetadataOperator(
        task_id="t", bucket="b", ringcx_conn_id="does_not_exist", aws_conn_id="nor_this"
    )
    assert "hook" not in op.__dict__
    assert "s3_hook" not in op.__dict__
    assert {"window_start", "window_end", "bucket", "prefix", "lag", "batch_size", "manifest_key"} <= set(
        op.template_fields
    )


@pytest.mark.parametrize("lag", [4, timedelta(minutes=4, seconds=59), "1"])
def test_lag_under_five_minutes_is_refused(lag: Any) -> None:
    with pytest.raises(RingCXConfigError, match="5-minute minimum"):
        RingCXInteractionMetadataOperator(task_id="t", bucket="b", lag=lag)


def test_window_is_the_data_interval_shifted_by_the_lag(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    ctx = context(START, END)
    batches = operator(bucket, batch_size=7).execute(ctx)
    truth = [
        t for t in simulator.control.ground_truth(START - timedelta(minutes=15), START, sha256=False)
        if t["hasRecording"]
    ]  # fmt: skip
    loaded = batch_refs(s3_client, bucket, batches)
    refs = [ref for batch in loaded for ref in batch]
    assert {(r["dialog_id"], r["segment_id"]) for r in refs} == {
        (t["dialogId"], t["segmentId"]) for t in truth
    }
    assert all(len(batch) == b["count"] <= 7 for batch, b in zip(loaded, batches, strict=True))
    assert len(batches) == -(-len(refs) // 7)
    assert ctx["ti"].pushed["manifest_key"] == MANIFEST
    assert ctx["ti"].pushed["window"]["key"] == "20260302T1400Z_20260302T1415Z"
    assert ctx["ti"].pushed["counts"]["with_recording"] == len(refs)
    summary = read_summary(s3_client, bucket, MANIFEST)
    assert summary["with_recording"] == len(refs)
    assert len(json.dumps(batches[0])) < 800  # a descriptor (key, range, ids, digests), not refs


def test_manifest_holds_every_row_including_no_recording_and_unparseable(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    simulator.control.add_segments(
        [
            {"dialogId": "d-norec", "segmentId": "s-1", "segmentEndTimeMs": "2026-03-02T14:05:00Z",
             "hasRecording": False},
            {"dialogId": "d-bad", "segmentId": "s-2", "segmentEndTimeMs": "2026-03-02T14:06:00Z",
             "fields": {"segmentStartTimeMs": "not a time"}},
        ]
    )  # fmt: skip
    batches = operator(bucket).execute(context(START, END))
    lines = list(iter_manifest(s3_client, bucket, MANIFEST))
    rows = [line for line in lines if line["kind"] == "segment"]
    invalid = [line for line in lines if line["kind"] == "invalid"]
    assert any(row["dialog_id"] == "d-norec" and not row["has_recording"] for row in rows)
    assert len(invalid) == 1
    assert "not a time" in invalid[0]["raw"]
    assert invalid[0]["reason"]
    refs = {ref["dialog_id"] for batch in batch_refs(s3_client, bucket, batches) for ref in batch}
    assert "d-norec" not in refs
    assert "d-bad" not in refs
    assert lines[0]["window_start"] == "2026-03-02T14:00:00Z"
    assert lines[-1]["invalid"] == 1


def test_existing_manifest_is_reused_without_querying_ringcx(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    first = operator(bucket).execute(context(START, END))
    calls = metadata_calls(simulator)
    before = s3_client.head_object(Bucket=bucket, Key=MANIFEST)["ETag"]
    simulator.control.add_segments(  # a late arrival does not change a written manifest
        [{"dialogId": "d-late", "segmentId": "s", "segmentEndTimeMs": "2026-03-02T14:10:00Z"}]
    )
    ctx = context(START, END)
    again = operator(bucket).execute(ctx)
    assert again == first
    assert metadata_calls(simulator) == calls  # no metadata budget spent on a retry
    assert s3_client.head_object(Bucket=bucket, Key=MANIFEST)["ETag"] == before
    assert ctx["ti"].pushed["counts"]["reused"] == 1


def test_explicit_window_and_manifest_key_overrides(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    op = operator(
        bucket,
        window_start="2026-03-02T14:00:00Z",
        window_end="2026-03-02T14:05:00Z",
        manifest_key="ringcx/_manifests/rescan/window=x.jsonl",
    )
    ctx = context(None, None)
    batches = op.execute(ctx)
    assert ctx["ti"].pushed["manifest_key"] == "ringcx/_manifests/rescan/window=x.jsonl"
    truth = simulator.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T14:05:00Z", sha256=False)
    assert sum(b["count"] for b in batches) == sum(1 for t in truth if t["hasRecording"])
    assert {b["manifest_key"] for b in batches} == {"ringcx/_manifests/rescan/window=x.jsonl"}


def test_window_not_ready_fails_with_when(ringcx_conn: str, aws_conn: str, bucket: str) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with pytest.raises(RingCXWindowNotReadyError, match="can be queried only once") as info:
        operator(bucket, deferrable=False).execute(context(now, now + timedelta(minutes=15)))
    assert info.value.ready_at == now + timedelta(minutes=15)


def test_deferrable_defers_until_ready_then_resumes(
    simulator: Any, ringcx_conn: str, aws_conn: str, bucket: str
) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    op = operator(bucket, deferrable=True, lag=timedelta(minutes=20))
    with pytest.raises(TaskDeferred) as info:  # e.g. a manual run whose data interval ends in 15 minutes
        op.execute(context(now, now + timedelta(minutes=15)))
    trigger = info.value.trigger
    assert isinstance(trigger, WindowReadyTrigger)
    assert trigger.ready_at == now + timedelta(minutes=15)  # window end + lag = the data interval's end
    assert trigger.window_end == (now - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert info.value.method_name == "execute_complete"
    # once the trigger fired, the task resumes and lists the window
    batches = op.execute_complete(context(START, END), event={"status": "ready"})
    assert batches


def test_more_than_1024_segments_map_correctly(
    make_simulator: Any, monkeypatch: Any, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    from tests.fixtures.simulator import ringcx_connection_json

    simulator = make_simulator(calls_per_hour=2400)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(simulator))
    start, end = (
        datetime(2026, 3, 2, 13, 0, tzinfo=timezone.utc),
        datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc),
    )
    batches = operator(
        bucket, window_start=start.isoformat(), window_end=end.isoformat(), batch_size=1
    ).execute(context())
    truth = [t for t in simulator.control.ground_truth(start, end, sha256=False) if t["hasRecording"]]
    assert len(truth) > 1024
    assert len(batches) < 1024  # batch size raised to stay under the map-length cap
    flat = [
        (r["dialog_id"], r["segment_id"]) for batch in batch_refs(s3_client, bucket, batches) for r in batch
    ]
    assert len(flat) == len(set(flat)) == len(truth)  # every segment in exactly one batch
    assert set(flat) == {(t["dialogId"], t["segmentId"]) for t in truth}
    assert max(len(json.dumps(batch)) for batch in batches) < 800  # each mapped XCom stays tiny


@pytest.mark.parametrize("kind", ["reset", "malformed_json"])
def test_broken_metadata_response_leaves_no_manifest(
    kind: str, simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    simulator.control.set_faults([{"route": "metadata", "kind": kind, "after_bytes": 20000}])
    with pytest.raises(RingCXError):
        operator(bucket).execute(context(START, END))
    assert list_keys(s3_client, bucket) == []  # a retry will query again: no half manifest was kept
    assert not s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    simulator.control.clear_faults()
    assert operator(bucket).execute(context(START, END))


def test_long_metadata_wait_defers_instead_of_sleeping_then_resumes(
    make_simulator: Any, monkeypatch: Any, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    """Issue #12 item 13: the simulator's metadata budget is exhausted and its window is long, so the
    next call is answered 429 with a long Retry-After: the task defers (no worker, no pool slot) on a
    DateTimeTrigger until then, and resumes by fetching the window."""
    import time

    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    from tests.fixtures.simulator import ringcx_connection_json

    # 1 call per 300 simulated seconds; time_scale 60: the window lasts 5 real seconds
    sim = make_simulator(metadata_budget="1/300", time_scale=60)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(sim))
    assert operator(bucket).execute(context(START, END))
    second = (START + timedelta(minutes=15), END + timedelta(minutes=15))
    op = operator(bucket, defer_waits_over=1)
    sleeps: list[float] = []
    op.hook._sleep = sleeps.append  # any sleep in the worker would show up here
    before = datetime.now(timezone.utc)
    with pytest.raises(TaskDeferred) as info:
        op.execute(context(*second))
    assert sleeps == []
    trigger = info.value.trigger
    assert isinstance(trigger, DateTimeTrigger)
    assert info.value.method_name == "execute_after_wait"
    wait = (trigger.moment - before).total_seconds()
    assert 1 < wait <= 6, wait  # the simulator's Retry-After (real seconds), not a local guess
    time.sleep(max(0.0, (trigger.moment - datetime.now(timezone.utc)).total_seconds()))  # the triggerer
    batches = op.execute_after_wait(context(*second), event=trigger.moment)
    assert batches
    assert metadata_calls(sim) == 3  # one 200, one 429, one 200 after the deferral


def test_defer_waits_over_is_validated() -> None:
    with pytest.raises(RingCXConfigError, match="defer_waits_over"):
        RingCXInteractionMetadataOperator(task_id="t", bucket="b", defer_waits_over=0)
