"""Transcripts beside the recordings: simulator (RingCX) and moto (S3) over HTTP, through the real hook.

The simulator's data clock is pinned: 14:30 on the window's day, when the recordings of 14:00-14:05 are
ready but a *late* transcript (ready an hour after its segment's end) is not; then 16:00, when it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_ringcx.keys import transcript_key
from airflow_provider_ringcx.models import SegmentRecord
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.transfers.batch import BatchArchiver, summarize
from airflow_provider_ringcx.transfers.landing import LandingConfig, SegmentLander, segment_keys
from airflow_provider_ringcx.transfers.transcripts import TranscriptLander, body_problem, has_transcript
from airflow_provider_ringcx.transfers.verdict import verify_transcript
from tests.fixtures.landing import listing, refs_of

EARLY, LATER = "2026-03-02T14:30:00Z", "2026-03-02T16:00:00Z"
REFUSED = {"malformed": "is not JSON", "array": "not an object", "wrong_ids": "another segment's",
           "huge": "too large"}  # fmt: skip


@pytest.fixture
def make_transcribing(hook: Any, s3: Any) -> Callable[..., BatchArchiver]:
    def make(bucket: str, rows: dict, options: S3WriteOptions | None = None) -> BatchArchiver:
        options = options or S3WriteOptions()
        config = LandingConfig(
            bucket=bucket,
            sub_account_id="99999999",
            prefix="archive",
            options=options,
            include_transcripts=True,
        )
        lander = SegmentLander(hook=hook, client=s3, config=config, rows=rows)
        transcripts = TranscriptLander(hook=hook, client=s3, bucket=bucket, options=options)
        return BatchArchiver(lander, max_workers=4, attempts=2, backoff=0.0, transcripts=transcripts)

    return make


def test_transcripts_land_verified_beside_the_recordings_and_late_ones_later(
    simulator: Any, hook: Any, make_transcribing: Callable, s3_client: Any, locked_bucket: str
) -> None:
    simulator.control.patch_config(
        now=EARLY, transcript_hostile_share=0.4, transcript_late_share=0.2, transcript_missing_share=0.1
    )
    records, truth = listing(simulator, hook)
    kinds = {truth[r.key]["transcript"] for r in records}
    assert {"none", "ok", "late", "missing"} <= kinds, kinds
    assert kinds & set(REFUSED), kinds
    options = S3WriteOptions(object_lock_mode="GOVERNANCE", object_lock_retention_days=3)
    archiver = make_transcribing(locked_bucket, {r.key: r.raw for r in records}, options)
    outcomes = archiver.run(refs_of(records))
    assert {o.outcome for o in outcomes} == {"archived"}  # a transcript never changes the recording's
    config = archiver.lander.config
    for record, outcome in zip(records, outcomes, strict=True):
        kind = truth[record.key]["transcript"]
        wav, side = segment_keys(record.to_ref(), config)
        key = transcript_key(wav)
        sidecar = json.loads(s3_client.get_object(Bucket=locked_bucket, Key=side)["Body"].read())
        if kind == "none":
            assert outcome.transcript is None
            assert "transcript" not in sidecar
            continue
        assert sidecar["transcript"] == {"key": key}  # the sidecar references it, landed or not
        expected = {"ok": "archived", "late": "pending", "missing": "pending"}.get(kind, "not_archived")
        assert outcome.transcript == expected, (kind, outcome.transcript_reason)
        if expected != "archived":
            assert not s3_client.list_objects_v2(Bucket=locked_bucket, Prefix=key).get("KeyCount")
            if kind in REFUSED:
                assert REFUSED[kind] in outcome.transcript_reason
            else:
                assert "404" in outcome.transcript_reason  # not ready yet: pending, never "missing"
            continue
        head = s3_client.head_object(Bucket=locked_bucket, Key=key, ChecksumMode="ENABLED")
        body = s3_client.get_object(Bucket=locked_bucket, Key=key)["Body"].read()
        assert head["ContentType"] == "application/json"
        assert head["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
        assert head["Metadata"]["source-path"].endswith("/segments/" + record.segment_id.replace("/", "%2F"))
        assert body_problem(body, record.dialog_id, record.segment_id) is None
        assert json.loads(body)["segmentId"] == record.segment_id
        wav_head = s3_client.head_object(Bucket=locked_bucket, Key=wav)
        assert head["ObjectLockMode"] == "GOVERNANCE"
        assert head["ObjectLockRetainUntilDate"] == wav_head["ObjectLockRetainUntilDate"]  # as the audio's
    summary = summarize(outcomes)
    pending = {(p["dialog_id"], p["segment_id"]) for p in summary["transcript_pending"]}
    assert pending == {r.key for r in records if truth[r.key]["transcript"] in ("late", "missing")}
    assert summary["transcripts"]["archived"] == sum(1 for r in records if truth[r.key]["transcript"] == "ok")
    assert len(summary["transcript_not_archived"]) == sum(
        1 for r in records if truth[r.key]["transcript"] in REFUSED
    )

    # later: the late transcripts are ready; a re-run archives them, downloads no audio, writes no duplicate
    simulator.control.patch_config(now=LATER)
    downloads = sum(simulator.control.stats()["requests"].get("download", {}).values())
    again = archiver.run(refs_of(records))
    assert {o.outcome for o in again} == {"already_archived"}
    assert sum(simulator.control.stats()["requests"].get("download", {}).values()) == downloads
    for record, outcome in zip(records, again, strict=True):
        kind = truth[record.key]["transcript"]
        expected = {"ok": "already_archived", "late": "archived", "missing": "pending", "none": None}
        assert outcome.transcript == expected.get(kind, "not_archived"), kind
    versions = s3_client.list_object_versions(Bucket=locked_bucket).get("Versions", [])
    assert len({v["Key"] for v in versions}) == len(versions)  # one version per key


def test_a_stored_transcript_that_is_not_proven_is_kept_and_reported(
    simulator: Any, hook: Any, make_transcribing: Callable, s3_client: Any, bucket: str
) -> None:
    simulator.control.patch_config(now=LATER, transcript_missing_share=0.0, transcript_late_share=0.0)
    records, truth = listing(simulator, hook)
    record = next(r for r in records if truth[r.key]["transcript"] == "ok")
    archiver = make_transcribing(bucket, {record.key: record.raw})
    wav, _ = segment_keys(record.to_ref(), archiver.lander.config)
    key = transcript_key(wav)
    forged = json.dumps({"segmentId": "someone-else", "transcript": []}).encode()
    s3_client.put_object(
        Bucket=bucket, Key=key, Body=forged, Metadata={"sha256": hashlib.sha256(forged).hexdigest()}
    )
    (outcome,) = archiver.run(refs_of([record]))
    assert outcome.outcome == "archived"
    assert outcome.transcript == "not_archived"
    assert "body_invalid" in outcome.transcript_reason
    assert "kept" in outcome.transcript_reason
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == forged  # never overwritten

    tampered = b'{"segmentId": "x"}'
    s3_client.put_object(Bucket=bucket, Key=key, Body=tampered, Metadata={"sha256": "0" * 64})
    verdict = verify_transcript(s3_client, bucket, key, lambda body: None)
    assert verdict.state == "content_mismatch"  # the bytes read back do not hash to the claimed sha256
    assert not verdict.archived


def test_transcripts_are_off_by_default(
    simulator: Any,
    hook: Any,
    records: list[SegmentRecord],
    make_archiver: Callable,
    s3_client: Any,
    bucket: str,
) -> None:
    outcomes = make_archiver(bucket, rows={r.key: r.raw for r in records}).run(refs_of(records))
    assert all(o.transcript is None for o in outcomes)
    assert "transcripts" not in summarize(outcomes)
    assert not simulator.control.stats()["requests"].get("transcripts")
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys
    assert not [k for k in keys if k.endswith(".transcript.json")]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"transcript": [], "segmentId": "s", "dialogId": "d"}', None),
        (b'{"transcript": [{"message": "hi"}]}', None),  # no ids in the body: the documented shape
        (b'{"transcript": [], "segmentID": "other"}', "another segment's"),
        (b'{"transcript": [], "dialogId": "other"}', "another segment's"),
        (b'{"transcript": null, "errorCode": "NOT_READY"}', "errorCode 'NOT_READY'"),
        (b'{"channelClass": "VOICE"}', "no transcript array"),
        (b'{"transcript": [NaN]}', "is not JSON"),
        (b"\xff\xfe", "is not JSON"),
        (b"[" * 100 + b"]" * 100, "is not JSON"),  # deeper than jsonutil.MAX_DEPTH: refused, no recursion
        (b'"text"', "is a JSON string"),
    ],
)
def test_body_problem(body: bytes, problem: str | None) -> None:
    found = body_problem(body, "d", "s")
    assert found == problem if problem is None else problem in str(found)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("true", True), (1, True), (False, False), (None, False), ("no", False)],
)
def test_has_transcript_never_guesses(value: Any, expected: bool) -> None:
    assert has_transcript({"hasTranscript": value}) is expected
    assert has_transcript(None) is False


@pytest.mark.parametrize(
    ("fault", "state", "reason"),
    [
        ({"kind": "deep_nesting", "depth": 100000}, "not_archived", "is not JSON"),  # no RecursionError
        ({"kind": "non_finite"}, "not_archived", "is not JSON"),  # NaN is not JSON
        ({"kind": "malformed_json"}, "not_archived", "is not JSON"),
        ({"kind": "json_object"}, "not_archived", "no transcript array"),
        ({"kind": "truncate", "after_bytes": 10}, "pending", "RingCX"),  # cut off: retried later
        ({"kind": "status", "status": 503}, "pending", "503"),
        ({"kind": "status", "status": 403}, "not_archived", "forbidden"),
    ],
)
def test_hostile_transcript_answers_are_never_archived(
    simulator: Any, hook: Any, make_transcribing: Callable, s3_client: Any, bucket: str,
    fault: dict, state: str, reason: str,
) -> None:  # fmt: skip
    simulator.control.patch_config(now=LATER, transcript_missing_share=0.0, transcript_late_share=0.0)
    records, truth = listing(simulator, hook)
    record = next(r for r in records if truth[r.key]["transcript"] == "ok")
    simulator.control.set_faults([{"route": "transcripts", **fault}])
    archiver = make_transcribing(bucket, {record.key: record.raw})
    (outcome,) = archiver.run(refs_of([record]))
    assert outcome.outcome == "archived"  # the recording is archived whatever its transcript does
    assert outcome.transcript == state, outcome.transcript_reason
    assert reason in outcome.transcript_reason
    wav, _ = segment_keys(record.to_ref(), archiver.lander.config)
    assert not s3_client.list_objects_v2(Bucket=bucket, Prefix=transcript_key(wav)).get("KeyCount")


@pytest.mark.parametrize("variant", sorted(REFUSED))
def test_each_hostile_variant_is_refused_with_its_reason(
    simulator: Any, hook: Any, make_transcribing: Callable, s3_client: Any, bucket: str, variant: str
) -> None:
    simulator.control.patch_config(now=LATER, transcript_missing_share=0.0, transcript_late_share=0.0)
    records, truth = listing(simulator, hook)
    record = next(r for r in records if truth[r.key]["transcript"] == "ok")
    simulator.control.patch_config(transcript_variants=[f"{record.segment_id}={variant}"])
    (outcome,) = make_transcribing(bucket, {record.key: record.raw}).run(refs_of([record]))
    assert outcome.transcript == "not_archived"
    assert REFUSED[variant] in outcome.transcript_reason
