"""AI summaries beside the recordings: simulator (RingCX) and moto (S3) over HTTP, through the real hook.

The simulator's data clock is pinned: 14:30 on the window's day, when the recordings of 14:00-14:05 are
ready but a *late* summary (ready 90 minutes after its segment's end) is not; then 18:00, when it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_ringcx.keys import SUMMARY_KINDS, safe_id, sidecar_key, summary_key, transcript_key
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.transfers.batch import BatchArchiver, summarize
from airflow_provider_ringcx.transfers.landing import LandingConfig, SegmentLander, segment_keys
from airflow_provider_ringcx.transfers.summaries import SummaryLander, summary_problem
from airflow_provider_ringcx.transfers.transcripts import TranscriptLander
from tests.fixtures.landing import listing, refs_of

EARLY, LATER = "2026-03-02T14:30:00Z", "2026-03-02T18:00:00Z"
REFUSED = {"malformed": "is not JSON", "array": "not an object", "html": "HTML"}
EXPECTED = {"ok": "archived", "late": "pending", "missing": "pending"}


@pytest.fixture
def make_summarizing(hook: Any, s3: Any) -> Callable[..., BatchArchiver]:
    def make(
        bucket: str, rows: dict, options: S3WriteOptions | None = None, kinds: Any = "both", transcripts=False
    ) -> BatchArchiver:
        options = options or S3WriteOptions()
        lander_kinds = SummaryLander(hook=hook, client=s3, bucket=bucket, options=options, kinds=kinds)
        config = LandingConfig(
            bucket=bucket, sub_account_id="99999999", prefix="archive", options=options,
            include_transcripts=transcripts, summary_kinds=tuple(lander_kinds.kinds),
        )  # fmt: skip
        lander = SegmentLander(hook=hook, client=s3, config=config, rows=rows)
        return BatchArchiver(
            lander, max_workers=4, attempts=2, backoff=0.0, summaries=lander_kinds if kinds else None,
            transcripts=TranscriptLander(hook=hook, client=s3, bucket=bucket, options=options)
            if transcripts else None,
        )  # fmt: skip

    return make


def test_summaries_land_verified_beside_the_recordings_and_late_ones_later(
    simulator: Any, hook: Any, make_summarizing: Callable, s3_client: Any, locked_bucket: str
) -> None:
    simulator.control.patch_config(
        now=EARLY, summary_hostile_share=0.3, summary_late_share=0.25, summary_missing_share=0.15
    )
    records, truth = listing(simulator, hook)
    kinds = {truth[r.key]["summaries"][k] for r in records for k in SUMMARY_KINDS}
    assert {"none", "ok", "late", "missing"} <= kinds, kinds
    assert kinds & set(REFUSED), kinds
    options = S3WriteOptions(object_lock_mode="GOVERNANCE", object_lock_retention_days=3)
    archiver = make_summarizing(locked_bucket, {r.key: r.raw for r in records}, options)
    outcomes = archiver.run(refs_of(records))
    assert {o.outcome for o in outcomes} == {"archived"}  # a summary never changes the recording's
    for record, outcome in zip(records, outcomes, strict=True):
        wav, side = segment_keys(record.to_ref(), archiver.lander.config)
        sidecar = json.loads(s3_client.get_object(Bucket=locked_bucket, Key=side)["Body"].read())
        if not truth[record.key]["hasTranscript"]:
            assert outcome.summaries is None
            assert "summaries" not in sidecar
            continue
        assert sidecar["summaries"] == {k: {"key": summary_key(wav, k)} for k in SUMMARY_KINDS}
        assert outcome.summaries is not None
        for kind in SUMMARY_KINDS:
            served, key = truth[record.key]["summaries"][kind], summary_key(wav, kind)
            state, reason = outcome.summaries[kind]
            assert state == EXPECTED.get(served, "not_archived"), (served, reason)
            if state != "archived":
                assert not s3_client.list_objects_v2(Bucket=locked_bucket, Prefix=key).get("KeyCount")
                assert REFUSED.get(served, "404") in reason
                continue
            head = s3_client.head_object(Bucket=locked_bucket, Key=key, ChecksumMode="ENABLED")
            body = s3_client.get_object(Bucket=locked_bucket, Key=key)["Body"].read()
            assert head["ContentType"] == "application/json"
            assert head["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
            assert head["Metadata"]["source-path"].endswith(f"/segments/{record.segment_id}/{kind}")
            assert json.loads(body)["summaryType"] == kind.upper()  # the vendor's bytes, as sent
            assert head["ObjectLockMode"] == "GOVERNANCE"
            wav_head = s3_client.head_object(Bucket=locked_bucket, Key=wav)
            assert head["ObjectLockRetainUntilDate"] == wav_head["ObjectLockRetainUntilDate"]
    summary = summarize(outcomes)
    asked = [(r, k) for r in records if truth[r.key]["hasTranscript"] for k in SUMMARY_KINDS]
    pending = {(p["dialog_id"], p["segment_id"], p["kind"]) for p in summary["summary_pending"]}
    assert pending == {(*r.key, k) for r, k in asked if truth[r.key]["summaries"][k] in ("late", "missing")}
    archived = sum(1 for r, k in asked if truth[r.key]["summaries"][k] == "ok")
    assert summary["summaries"]["archived"] == archived
    assert len(summary["summary_not_archived"]) == sum(
        1 for r, k in asked if truth[r.key]["summaries"][k] in REFUSED
    )

    # later: the late summaries are ready; a re-run archives them, downloads no audio, writes no duplicate
    simulator.control.patch_config(now=LATER)
    downloads = sum(simulator.control.stats()["requests"].get("download", {}).values())
    again = archiver.run(refs_of(records))
    assert {o.outcome for o in again} == {"already_archived"}
    assert sum(simulator.control.stats()["requests"].get("download", {}).values()) == downloads
    later = {"ok": "already_archived", "late": "archived", "missing": "pending"}
    for record, outcome in zip(records, again, strict=True):
        for kind, (state, _) in (outcome.summaries or {}).items():
            assert state == later.get(truth[record.key]["summaries"][kind], "not_archived")
    versions = s3_client.list_object_versions(Bucket=locked_bucket).get("Versions", [])
    assert len({v["Key"] for v in versions}) == len(versions)  # one version per key


def test_one_kind_with_transcripts_shares_the_budget_route_and_sidecar(
    simulator: Any, hook: Any, make_summarizing: Callable, s3_client: Any, bucket: str
) -> None:
    simulator.control.patch_config(
        now=LATER, summary_missing_share=0.0, summary_late_share=0.0, transcript_missing_share=0.0,
        transcript_late_share=0.0,
    )  # fmt: skip
    records, truth = listing(simulator, hook)
    record = next(r for r in records if truth[r.key]["hasTranscript"])
    archiver = make_summarizing(bucket, {record.key: record.raw}, kinds="auto", transcripts=True)
    (outcome,) = archiver.run(refs_of([record]))
    assert outcome.transcript == "archived"
    assert outcome.summaries == {"auto": ("archived", "")}
    wav, side = segment_keys(record.to_ref(), archiver.lander.config)
    sidecar = json.loads(s3_client.get_object(Bucket=bucket, Key=side)["Body"].read())
    assert sidecar["transcript"] == {"key": transcript_key(wav)}
    assert sidecar["summaries"] == {"auto": {"key": summary_key(wav, "auto")}}
    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert summary_key(wav, "agent") not in keys
    assert wav[: -len(".wav")] + ".summary.auto.json" in keys  # {segmentId}.summary.{kind}.json
    assert simulator.control.stats()["requests"]["summaries"] == {"200": 1}


def test_summaries_are_off_by_default(
    simulator: Any, hook: Any, make_summarizing: Callable, s3_client: Any, bucket: str
) -> None:
    simulator.control.patch_config(now=LATER)
    records, _ = listing(simulator, hook)
    outcomes = make_summarizing(bucket, {r.key: r.raw for r in records}, kinds=False).run(refs_of(records))
    assert all(o.summaries is None for o in outcomes)
    assert "summaries" not in summarize(outcomes)
    assert not simulator.control.stats()["requests"].get("summaries")
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert not [k for k in keys if ".summary." in k]


@pytest.mark.parametrize(
    ("fault", "state", "reason"),
    [
        ({"kind": "deep_nesting", "depth": 100000}, "not_archived", "is not JSON"),  # no RecursionError
        ({"kind": "non_finite"}, "not_archived", "is not JSON"),  # NaN is not JSON
        ({"kind": "malformed_json"}, "not_archived", "is not JSON"),
        ({"kind": "html200"}, "not_archived", "HTML"),
        ({"kind": "json_object"}, "archived", ""),  # any JSON object: the shape is not documented
        ({"kind": "truncate", "after_bytes": 10}, "pending", "RingCX"),  # cut off: retried later
        ({"kind": "status", "status": 503}, "pending", "503"),
        ({"kind": "status", "status": 403}, "not_archived", "forbidden"),
    ],
)
def test_hostile_summary_answers_are_never_archived(
    simulator: Any, hook: Any, make_summarizing: Callable, s3_client: Any, bucket: str,
    fault: dict, state: str, reason: str,
) -> None:  # fmt: skip
    simulator.control.patch_config(now=LATER, summary_missing_share=0.0, summary_late_share=0.0)
    records, truth = listing(simulator, hook)
    record = next(r for r in records if truth[r.key]["hasTranscript"])
    simulator.control.set_faults([{"route": "summaries", **fault}])
    archiver = make_summarizing(bucket, {record.key: record.raw}, kinds="agent")
    (outcome,) = archiver.run(refs_of([record]))
    assert outcome.outcome == "archived"  # the recording is archived whatever its summary does
    assert outcome.summaries is not None
    got, why = outcome.summaries["agent"]
    assert got == state, why
    assert reason in why
    wav, _ = segment_keys(record.to_ref(), archiver.lander.config)
    stored = s3_client.list_objects_v2(Bucket=bucket, Prefix=summary_key(wav, "agent")).get("KeyCount")
    assert bool(stored) is (state == "archived")


def test_a_stored_summary_that_is_not_proven_is_kept_and_reported(
    simulator: Any, hook: Any, make_summarizing: Callable, s3_client: Any, bucket: str
) -> None:
    simulator.control.patch_config(now=LATER, summary_missing_share=0.0, summary_late_share=0.0)
    records, truth = listing(simulator, hook)
    record = next(r for r in records if truth[r.key]["hasTranscript"])
    archiver = make_summarizing(bucket, {record.key: record.raw}, kinds="agent")
    wav, _ = segment_keys(record.to_ref(), archiver.lander.config)
    key = summary_key(wav, "agent")
    forged = b"<html>not a summary</html>"
    metadata = {"sha256": hashlib.sha256(forged).hexdigest()}
    s3_client.put_object(Bucket=bucket, Key=key, Body=forged, Metadata=metadata)
    (outcome,) = archiver.run(refs_of([record]))
    assert outcome.summaries is not None
    state, reason = outcome.summaries["agent"]
    assert state == "not_archived"
    assert "body_invalid" in reason
    assert "kept" in reason
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == forged  # never overwritten


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"anything": ["goes", 1, null]}', None),
        (b"{}", None),
        (b"  <!DOCTYPE html><html></html>", "HTML"),
        (b'[{"summary": "x"}]', "a JSON array, not an object"),
        (b'"a string"', "a JSON string, not an object"),
        (b'{"summary": NaN}', "is not JSON"),
        (b'{"summary": "cut', "is not JSON"),
        (b"\xff\xfe{}", "is not JSON"),
        (b"", "is not JSON"),
    ],
)
def test_summary_problem(body: bytes, problem: str | None) -> None:
    found = summary_problem(body)
    assert found is None if problem is None else problem in (found or ""), found


@pytest.mark.parametrize("segment_id", ["x.summary.agent", "x.summary.auto", "x.transcript"])
def test_no_sidecar_key_equals_a_summary_or_transcript_key(segment_id: str) -> None:
    wav_of = lambda seg: f"p/{safe_id(seg)}.wav"  # noqa: E731
    documents = {transcript_key(wav_of("x"))} | {summary_key(wav_of("x"), k) for k in SUMMARY_KINDS}
    assert sidecar_key(wav_of(segment_id)) not in documents
    assert safe_id(segment_id).startswith("x%2E")


def test_summary_key_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="agent, auto"):
        summary_key("p/s.wav", "human")
