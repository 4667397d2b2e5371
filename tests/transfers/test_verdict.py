"""One verdict (issue #12 items 1, 5, 6): the lander's idempotency check and the window report, fed the same
S3 state (moto over HTTP, recordings from the simulator), agree on every state; bad sidecars and collisions
are loud, never ``already_archived``, and never crash the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest

from airflow_provider_ringcx.models import SegmentRecord
from airflow_provider_ringcx.report import (
    ExpectedSegment,
    build_report,
    check_segment,
    reconcile,
    write_report,
)
from airflow_provider_ringcx.transfers.landing import segment_keys
from airflow_provider_ringcx.transfers.sidecar import SIDECAR_SCHEMA, SidecarInvalid, parse_sidecar
from airflow_provider_ringcx.transfers.verdict import STATES, Identity, verify_archived
from airflow_provider_ringcx.windows import Window
from tests.fixtures.landing import refs_of

SUB = "99999999"


def _doc(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _put_doc(s3: Any, bucket: str, key: str, doc: Any) -> None:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _edit(**changes: Any) -> Callable[..., None]:
    """Rewrite the stored sidecar with ``changes`` (a callable computes the value, ``_DROP`` deletes it)."""

    def mutate(s3: Any, bucket: str, key: str, side: str) -> None:
        doc = _doc(s3, bucket, side)
        for name, value in changes.items():
            if value is _DROP:
                doc.pop(name)
            else:
                doc[name] = value(doc) if callable(value) else value
        _put_doc(s3, bucket, side, doc)

    return mutate


_DROP = object()


def _raw(body: bytes) -> Callable[..., None]:
    return lambda s3, bucket, key, side: _put_doc(s3, bucket, side, body)


def _partial(s3: Any, bucket: str, key: str, side: str) -> None:
    doc = _doc(s3, bucket, side)
    _put_doc(s3, bucket, side, {"sha256": doc["sha256"], "size": doc["size"]})  # what v0.1 tests planted


def _delete(*which: str) -> Callable[..., None]:
    def mutate(s3: Any, bucket: str, key: str, side: str) -> None:
        for name in which:
            s3.delete_object(Bucket=bucket, Key={"wav": key, "sidecar": side}[name])

    return mutate


def _tamper(s3: Any, bucket: str, key: str, side: str) -> None:
    """Same length, one byte changed, with honest metadata for the new bytes: the sidecar disagrees."""
    import hashlib

    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[-1] ^= 0xFF
    s3.put_object(
        Bucket=bucket, Key=key, Body=bytes(body), Metadata={"sha256": hashlib.sha256(body).hexdigest()}
    )


def _untagged(s3: Any, bucket: str, key: str, side: str) -> None:
    """The same bytes with no checksum anywhere (an attempt completed a multipart upload, then died)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _nothing(s3: Any, bucket: str, key: str, side: str) -> None:
    return None


#: name -> (how the S3 state is changed after a clean landing, report status, lander outcome afterwards)
CASES: dict[str, tuple[Callable[..., None], str, str]] = {
    "archived": (_nothing, "archived", "already_archived"),
    "no stored checksum": (_untagged, "archived", "already_archived"),
    "object missing": (_delete("wav", "sidecar"), "object_missing", "archived"),
    "sidecar missing": (_delete("sidecar"), "sidecar_missing", "archived"),
    "size is text": (_edit(size="12,345"), "sidecar_invalid", "archived"),
    "size is null": (_edit(size=None), "sidecar_invalid", "archived"),
    "no sha256": (_edit(sha256=_DROP), "sidecar_invalid", "archived"),
    "sha256 not hex": (_edit(sha256="z" * 64), "sidecar_invalid", "archived"),
    "not JSON": (_raw(b'{"sha256": "'), "sidecar_invalid", "archived"),
    "a JSON list": (_raw(b"[1, 2]"), "sidecar_invalid", "archived"),
    "deeply nested": (_raw(b"[" * 200_000 + b"]" * 200_000), "sidecar_invalid", "archived"),
    "partial": (_partial, "sidecar_invalid", "archived"),
    "foreign dialog": (_edit(dialog_id="s-v-1_p"), "collision", "failed"),
    "foreign sub-account": (_edit(sub_account_id="12345678"), "collision", "failed"),
    "foreign and invalid": (_edit(segment_id="p_x-1", size="1"), "collision", "failed"),
    "sidecar size wrong": (_edit(size=lambda d: d["size"] + 1), "size_mismatch", "archived"),
    "sidecar sha256 wrong": (_edit(sha256="0" * 64), "checksum_mismatch", "archived"),
    "object replaced": (_tamper, "checksum_mismatch", "failed"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_lander_and_report_agree_on_every_state(
    case: str, records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    mutate, status, outcome = CASES[case]
    refs = refs_of(records[:1])
    archiver = make_archiver(bucket)
    assert [o.outcome for o in archiver.run(refs)] == ["archived"]
    key, side = segment_keys(refs[0], archiver.lander.config)
    wav_before = (
        s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() if status != "object_missing" else b""
    )
    mutate(s3_client, bucket, key, side)
    segment = ExpectedSegment(refs[0]["dialog_id"], refs[0]["segment_id"], key, side, sub_account_id=SUB)
    client = archiver.lander.client  # one client for both: the same S3 state, read the same way

    before = check_segment(client, bucket, segment)
    assert before.status == status, before.reason
    assert status in STATES
    if not before.archived:
        assert before.reason

    [landed] = make_archiver(bucket).run(refs)
    assert landed.outcome == outcome, landed.reason
    assert (landed.outcome == "already_archived") == before.archived  # the one verdict, both sides
    after = check_segment(client, bucket, segment)
    assert after.archived == (landed.outcome in ("archived", "already_archived")), after.reason
    if landed.outcome == "failed":
        assert not landed.retryable
        assert landed.attempts == 1
        assert after.status == status  # nothing was overwritten: the state is as it was
        if status == "collision":
            assert "key collision" in landed.reason
            assert "NOT archived" in landed.reason
        else:
            assert "nothing overwritten" in landed.reason
    if status not in ("object_missing",) and landed.outcome != "failed":
        # the WAV is never rewritten when it already held the recording: only the sidecar was
        assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == wav_before
    if after.archived:
        jsonschema.validate(_doc(s3_client, bucket, side), SIDECAR_SCHEMA)


def test_collision_names_both_identities_and_the_key(
    records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    refs = refs_of(records[:1])
    archiver = make_archiver(bucket)
    archiver.run(refs)
    key, side = segment_keys(refs[0], archiver.lander.config)
    _edit(dialog_id="s-v-1_p", segment_id="x-1")(s3_client, bucket, key, side)
    verdict = verify_archived(
        s3_client, bucket, Identity(SUB, refs[0]["dialog_id"], refs[0]["segment_id"]), key, side
    )
    assert verdict.state == "collision"
    assert "'s-v-1_p'" in verdict.reason
    assert "'x-1'" in verdict.reason
    assert repr(refs[0]["dialog_id"]) in verdict.reason
    assert repr(refs[0]["segment_id"]) in verdict.reason
    assert key in verdict.reason


def test_a_403_makes_the_segment_unverifiable_on_both_sides(
    records: list[SegmentRecord], make_archiver: Callable, bucket: str
) -> None:
    refs = refs_of(records[:1])
    archiver = make_archiver(bucket)
    archiver.run(refs)
    key, side = segment_keys(refs[0], archiver.lander.config)
    rerun = make_archiver(bucket)
    client = rerun.lander.client

    def denied(params: dict[str, Any], **_: Any) -> Any:
        error = {"Code": "AccessDenied", "Message": "Access Denied"}
        return SimpleNamespace(status_code=403, headers={}), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }

    client.meta.events.register("before-call.s3.GetObject", denied)
    try:
        segment = ExpectedSegment(refs[0]["dialog_id"], refs[0]["segment_id"], key, side, sub_account_id=SUB)
        check = check_segment(client, bucket, segment)
        [landed] = rerun.run(refs)
    finally:
        client.meta.events.unregister("before-call.s3.GetObject", denied)
    assert check.status == "unverifiable"
    assert "s3:GetObject" in check.reason
    assert (landed.outcome, landed.retryable) == ("failed", False)
    assert "403" in landed.reason


def test_one_bad_sidecar_never_stops_the_report_and_the_next_run_lands_it_again(
    records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, locked_bucket: str
) -> None:
    """``"size": "12,345"`` used to crash report_window; ``"size": null`` counted as archived."""
    refs = refs_of(records[:3])
    archiver = make_archiver(locked_bucket)
    archiver.run(refs)
    segments = []
    for ref in refs:
        key, side = segment_keys(ref, archiver.lander.config)
        segments.append(ExpectedSegment(ref["dialog_id"], ref["segment_id"], key, side, sub_account_id=SUB))
    _edit(size="12,345")(s3_client, locked_bucket, segments[0].key, segments[0].sidecar_key)
    _edit(size=None)(s3_client, locked_bucket, segments[1].key, segments[1].sidecar_key)

    result = reconcile(s3_client, locked_bucket, segments)
    window = Window(
        datetime(2026, 3, 2, 14, tzinfo=timezone.utc), datetime(2026, 3, 2, 14, 5, tzinfo=timezone.utc)
    )
    report = build_report(
        window=window, sub_account_id=SUB, bucket=locked_bucket, manifest_key="m", key="r.json",
        reconciliation=result,
    )  # fmt: skip
    write_report(s3_client, locked_bucket, "r.json", report)
    stored = _doc(s3_client, locked_bucket, "r.json")
    assert stored["complete"] is False
    assert stored["counts"]["archived"] == 1
    assert stored["counts"]["by_status"] == {"archived": 1, "sidecar_invalid": 2}
    reasons = {item["segment_id"]: item["reason"] for item in stored["not_archived"]}
    assert "size" in reasons[segments[0].segment_id]
    assert "lands it again" in reasons[segments[1].segment_id]

    outcomes = make_archiver(locked_bucket).run(refs)
    assert [o.outcome for o in outcomes] == ["archived", "archived", "already_archived"]
    assert reconcile(s3_client, locked_bucket, segments).counts()["archived"] == 3
    for segment in segments[:2]:  # the WAV was proven intact: only the sidecar got a new version
        versions = s3_client.list_object_versions(Bucket=locked_bucket, Prefix=segment.key)["Versions"]
        assert len([v for v in versions if v["Key"] == segment.key]) == 1


@pytest.mark.parametrize(
    ("change", "member"),
    [
        ({"size": "12,345"}, "size"),
        ({"size": None}, "size"),
        ({"size": True}, "size"),
        ({"size": -1}, "size"),
        ({"sha256": "A" * 64}, "sha256"),
        ({"sha256": "a" * 63}, "sha256"),
        ({"dialog_id": ""}, "dialog_id"),
        ({"format": "ringcx-recording-sidecar/2"}, "format"),
        ({"sub_account_id": 99999999}, "sub_account_id"),
    ],
)
def test_sidecar_validation_names_the_member(change: dict[str, Any], member: str) -> None:
    from tests.fixtures.sidecars import sidecar_doc

    doc = sidecar_doc(sub_account_id=SUB, dialog_id="d", segment_id="s", sha256="a" * 64, size=4, bucket="b",
                      key="k.wav")  # fmt: skip
    assert parse_sidecar(json.dumps(doc).encode())["size"] == 4
    with pytest.raises(SidecarInvalid, match=member):
        parse_sidecar(json.dumps({**doc, **change}).encode())


def test_a_multipart_recording_with_an_invalid_sidecar_gets_only_a_new_sidecar(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, locked_bucket: str
) -> None:
    """The streamed path: the completion is refused (412, no second version), the stored bytes are read back
    and proven to be the download's, then only the sidecar is rewritten."""
    from tests.fixtures.landing import BIG, WINDOW, MiB

    simulator.control.add_segments([BIG])
    ref = next(r for r in hook.iter_interaction_metadata(*WINDOW) if r.dialog_id == "d-big").to_ref()
    settings = {"single_part_threshold": 1 * MiB, "multipart_chunksize": 5 * MiB}
    archiver = make_archiver(locked_bucket, **settings)
    assert [o.outcome for o in archiver.run([ref])] == ["archived"]
    key, side = segment_keys(ref, archiver.lander.config)
    _edit(sha256=_DROP)(s3_client, locked_bucket, key, side)
    segment = ExpectedSegment(ref["dialog_id"], ref["segment_id"], key, side, sub_account_id=SUB)
    assert check_segment(s3_client, locked_bucket, segment).status == "sidecar_invalid"
    [landed] = make_archiver(locked_bucket, **settings).run([ref])
    assert landed.outcome == "archived", landed.reason
    assert check_segment(s3_client, locked_bucket, segment, verify_content=True).content_verified
    versions = s3_client.list_object_versions(Bucket=locked_bucket, Prefix=key)["Versions"]
    assert len([v for v in versions if v["Key"] == key]) == 1
    assert s3_client.list_multipart_uploads(Bucket=locked_bucket).get("Uploads") in (None, [])


def test_a_sidecar_that_is_not_strict_json_is_invalid() -> None:
    from tests.fixtures.sidecars import sidecar_doc

    doc = sidecar_doc(sub_account_id=SUB, dialog_id="d", segment_id="s", sha256="a" * 64, size=4, bucket="b",
                      key="k.wav")  # fmt: skip
    body = json.dumps({**doc, "metadata": {"score": float("nan")}}).encode()
    assert b"NaN" in body
    with pytest.raises(SidecarInvalid, match="not JSON"):
        parse_sidecar(body)
