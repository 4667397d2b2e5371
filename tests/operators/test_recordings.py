"""RingCXRecordingsToS3Operator, and the acceptance test: a 2-hour window through both operators."""

from __future__ import annotations

import hashlib
import io
import json
import wave
from datetime import datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXObjectLockError
from airflow_provider_ringcx.keys import DEFAULT_KEY_TEMPLATE
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.operators.recordings import (
    RingCXRecordingsToS3Operator,
    RingCXSegmentsFailedError,
    validate_batch,
)
from airflow_provider_ringcx.transfers.landing import LandingConfig, segment_keys
from airflow_provider_ringcx.transfers.manifest_reader import iter_manifest
from airflow_provider_ringcx.transfers.sidecar import SIDECAR_SCHEMA
from tests.fixtures.s3 import batch_refs, list_keys
from tests.fixtures.simulator import ringcx_connection_json
from tests.operators.conftest import context, fast_hook

WINDOW_END = datetime(2026, 3, 2, 14, 15, tzinfo=timezone.utc)


def fetch(bucket: str, start: datetime, end: datetime, **kwargs: Any) -> tuple[list, str]:
    ctx = context(start, end)
    op = fast_hook(RingCXInteractionMetadataOperator(task_id="fetch", bucket=bucket, **kwargs))
    return op.execute(ctx), ctx["ti"].pushed["manifest_key"]


def download(
    bucket: str, batch: Any, manifest_key: str | None, **kwargs: Any
) -> RingCXRecordingsToS3Operator:
    op = RingCXRecordingsToS3Operator(
        task_id="download", batch=batch, bucket=bucket, manifest_key=manifest_key, retry_backoff=0, **kwargs
    )
    return fast_hook(op)


def downloads(simulator: Any) -> int:
    return sum(simulator.control.stats()["requests"].get("download", {}).values())


def test_parse_time_touches_no_connection_and_templates() -> None:
    op = RingCXRecordingsToS3Operator(task_id="t", batch=[], bucket="b", ringcx_conn_id="x", aws_conn_id="y")
    assert "hook" not in op.__dict__
    assert "s3_hook" not in op.__dict__
    assert {"bucket", "prefix", "key_template", "manifest_key", "object_lock_mode", "tags"} <= set(
        op.template_fields
    )
    with pytest.raises(RingCXConfigError, match="dialog_id"):
        RingCXRecordingsToS3Operator(
            task_id="t", batch=[], bucket="b", key_template="{prefix}/{segment_id}.wav"
        )


@pytest.mark.parametrize("batch", ["abc", [{"dialog_id": "d"}], [1]])
def test_bad_batches_are_refused(batch: Any) -> None:
    with pytest.raises(RingCXConfigError, match="batch"):
        validate_batch(batch)


def test_acceptance_two_hour_window_end_to_end(
    make_simulator: Any, monkeypatch: pytest.MonkeyPatch, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    """Fetch a 2-hour window, download every batch, then check the manifest against S3: every expected
    segment is present, byte-identical to RingCX (ground truth), a valid WAV, with a valid sidecar."""
    simulator = make_simulator(duration_scale=0.004, calls_per_hour=40)  # short recordings, ~110 segments
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(simulator))
    start, end = WINDOW_END - timedelta(hours=2), WINDOW_END
    batches, manifest_key = fetch(
        bucket, start + timedelta(minutes=15), end + timedelta(minutes=15), batch_size=50
    )
    assert len(json.dumps(batches)) < 800 * len(batches)  # descriptors, not refs: a few hundred bytes each
    summaries = [download(bucket, batch, manifest_key).execute(context()) for batch in batches]
    total = {k: sum(s["counts"][k] for s in summaries) for k in summaries[0]["counts"]}
    truth = {
        (t["dialogId"], t["segmentId"]): t
        for t in simulator.control.ground_truth(start, end)
        if t["hasRecording"]
    }
    assert total["archived"] == len(truth) > 60
    assert all(len(json.dumps(s)) < 2048 for s in summaries)  # compact XCom summaries
    config = LandingConfig(bucket=bucket, sub_account_id="99999999")
    expected = [ref for batch in batch_refs(s3_client, bucket, batches) for ref in batch]
    assert {(r["dialog_id"], r["segment_id"]) for r in expected} == set(truth)
    lines = iter_manifest(s3_client, bucket, manifest_key)
    rows = {(x["dialog_id"], x["segment_id"]): x["row"] for x in lines if x["kind"] == "segment"}
    for ref in expected:
        key, side = segment_keys(ref, config)
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        sidecar = json.loads(s3_client.get_object(Bucket=bucket, Key=side)["Body"].read())
        want = truth[(ref["dialog_id"], ref["segment_id"])]
        assert hashlib.sha256(body).hexdigest() == sidecar["sha256"] == want["sha256"]
        with wave.open(io.BytesIO(body)) as wav:
            assert (wav.getnchannels(), wav.getframerate()) == (want["channels"], want["sample_rate"])
        jsonschema.validate(sidecar, SIDECAR_SCHEMA)
        assert sidecar["metadata"] == rows[(ref["dialog_id"], ref["segment_id"])]
        assert sidecar["s3"]["manifest_key"] == manifest_key
    assert len(list_keys(s3_client, bucket, "ringcx/sub_account=")) == 2 * len(truth)
    # a full re-run of the window: same batches from the manifest, zero recordings downloaded
    before = downloads(simulator)
    again, _ = fetch(bucket, start + timedelta(minutes=15), end + timedelta(minutes=15), batch_size=50)
    assert again == batches
    rerun = [download(bucket, batch, manifest_key).execute(context()) for batch in batches]
    assert sum(s["counts"]["already_archived"] for s in rerun) == len(truth)
    assert downloads(simulator) == before


def test_retryable_failure_fails_the_task_and_the_retry_redoes_only_it(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    batches, manifest_key = fetch(bucket, WINDOW_END, WINDOW_END + timedelta(minutes=15), batch_size=500)
    batch = batches[0]  # the descriptor, as mapped from the metadata task's XCom
    refs = batch_refs(s3_client, bucket, batches)[0]
    victim = refs[3]["segment_id"]
    simulator.control.set_faults([{"route": "download", "kind": "status", "status": 503, "match": victim}])
    ctx = context()
    with pytest.raises(RingCXSegmentsFailedError, match="retry redoes only those") as info:
        download(bucket, batch, manifest_key, segment_attempts=2).execute(ctx)
    assert isinstance(info.value, AirflowException)
    summary = ctx["ti"].pushed["summary"]  # pushed before failing, for the report task
    assert summary["counts"]["failed"] == 1
    assert summary["counts"]["archived"] == len(refs) - 1
    assert summary["not_archived"][0]["segment_id"] == victim
    assert summary["not_archived"][0]["retryable"]
    simulator.control.clear_faults()
    before = downloads(simulator)
    result = download(bucket, batch, manifest_key).execute(context())  # the Airflow retry
    assert result["counts"]["archived"] == 1
    assert result["counts"]["already_archived"] == len(refs) - 1
    assert downloads(simulator) == before + 1


def test_forbidden_and_missing_are_reported_not_failed_by_default(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    simulator.control.add_segments(
        [
            {
                "dialogId": "d-403",
                "segmentId": "s-403",
                "segmentEndTimeMs": "2026-03-02T14:10:00Z",
                "restricted": True,
            }
        ]
    )
    batches, manifest_key = fetch(bucket, WINDOW_END, WINDOW_END + timedelta(minutes=15), batch_size=500)
    refs = batch_refs(s3_client, bucket, batches)[0]
    ghost = {**refs[0], "dialog_id": "d-404", "segment_id": "s-404"}
    batch = [*refs[:3], ghost, next(r for r in refs if r["dialog_id"] == "d-403")]  # an explicit ref list
    result = download(bucket, batch, manifest_key).execute(context())
    assert result["counts"] == {
        "archived": 3,
        "already_archived": 0,
        "forbidden": 1,
        "missing": 1,
        "failed": 0,
    }
    assert {(p["segment_id"], p["outcome"]) for p in result["not_archived"]} == {
        ("s-403", "forbidden"),
        ("s-404", "missing"),
    }
    with pytest.raises(AirflowFailException, match="forbidden"):
        download(bucket, batch, manifest_key, fail_on_forbidden=True).execute(context())
    with pytest.raises(RingCXSegmentsFailedError, match="missing"):
        download(bucket, batch, manifest_key, fail_on_missing=True).execute(context())


def test_object_lock_on_a_bucket_without_it_fails_before_downloading(
    simulator: Any, ringcx_conn: str, aws_conn: str, bucket: str, s3_client: Any
) -> None:
    batches, manifest_key = fetch(bucket, WINDOW_END, WINDOW_END + timedelta(minutes=15))
    before = downloads(simulator)
    op = download(
        bucket, batches[0], manifest_key, object_lock_mode="GOVERNANCE", object_lock_retention_days=7
    )
    # a configuration error: failed at once, without Airflow retries, the lock error as its cause
    with pytest.raises(AirflowFailException, match="not Object-Lock enabled") as raised:
        op.execute(context())
    assert isinstance(raised.value.__cause__, RingCXObjectLockError)
    assert downloads(simulator) == before
    assert list_keys(s3_client, bucket, "ringcx/sub_account=") == []


def test_locked_bucket_archives_with_retention(
    simulator: Any, ringcx_conn: str, aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    batches, manifest_key = fetch(locked_bucket, WINDOW_END, WINDOW_END + timedelta(minutes=15))
    refs = batch_refs(s3_client, locked_bucket, batches)[0]
    op = download(
        locked_bucket,
        refs[:2],
        manifest_key,
        object_lock_mode="GOVERNANCE",
        object_lock_retention_days="30",  # templated values arrive as strings
        tags={"case": "audit-1"},
    )
    assert op.execute(context())["counts"]["archived"] == 2
    key, _ = segment_keys(refs[0], LandingConfig(bucket=locked_bucket, sub_account_id="99999999"))
    head = s3_client.head_object(Bucket=locked_bucket, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert DEFAULT_KEY_TEMPLATE.startswith("{prefix}/sub_account=")


def test_non_retryable_failure_fails_without_retry(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    batches, manifest_key = fetch(bucket, WINDOW_END, WINDOW_END + timedelta(minutes=15))
    refs = batch_refs(s3_client, bucket, batches)[0]
    timeless = {**refs[0], "start": None, "end": None}  # no partition can be chosen for it
    ctx = context()
    with pytest.raises(AirflowFailException, match="non-retryable"):
        download(bucket, [timeless, refs[1]], manifest_key).execute(ctx)
    summary = ctx["ti"].pushed["summary"]
    assert summary["counts"]["failed"] == 1
    assert summary["counts"]["archived"] == 1
    assert "neither a start nor an end" in summary["not_archived"][0]["reason"]
    assert not summary["not_archived"][0]["retryable"]


def test_a_descriptor_that_does_not_match_its_manifest_fails_without_retry(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    batches, manifest_key = fetch(bucket, WINDOW_END, WINDOW_END + timedelta(minutes=15), batch_size=3)
    shifted = {**batches[0], "range": batches[1]["range"]}
    before = downloads(simulator)
    with pytest.raises(AirflowFailException, match=r"batch 0 of manifest .* hash to .*clear the window's"):
        download(bucket, shifted, manifest_key).execute(context())
    assert downloads(simulator) == before
    assert list_keys(s3_client, bucket, "ringcx/sub_account=") == []
