"""Compliance arguments reach S3: Object Lock, KMS, storage class, tags, checksums.

moto 5.2.5 applies Object Lock to single-part PUTs (checked on the stored object below) but not to multipart
uploads, and does not enforce KMS keys; for those the requests themselves are asserted, with a botocore
``before-call`` hook on the client the code under test uses (the request is real and still goes to moto).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_ringcx.models import SegmentRecord, format_timestamp, parse_timestamp
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.transfers.landing import segment_keys
from tests.fixtures.landing import WINDOW, check_archived, refs_of
from tests.transfers.test_landing import BIG, MiB, truth_by_key

LOCK = S3WriteOptions(
    server_side_encryption="aws:kms",
    kms_key_id="arn:aws:kms:us-east-1:123456789012:key/archive",
    storage_class="STANDARD_IA",
    tags={"retention": "sec17a-4"},
    object_lock_mode="COMPLIANCE",
    object_lock_retention_days=2555,
    object_lock_legal_hold=True,
)


def capture(client: Any, *operations: str) -> list[tuple[str, dict[str, str]]]:
    """Record (operation, final wire headers) of every request of ``operations`` the client sends.

    ``before-send`` fires after botocore has added computed checksums, just before the HTTP request goes
    to moto, so the headers are exactly what S3 receives.
    """
    seen: list[tuple[str, dict[str, str]]] = []

    def hook(request: Any, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        if operation in operations:
            seen.append(
                (
                    operation,
                    {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()},
                )
            )

    client.meta.events.register("before-send.s3", hook)
    return seen


def test_single_part_put_carries_lock_kms_class_tags_and_checksum(
    simulator: Any, records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, locked_bucket: str
) -> None:
    ref = records[0].to_ref()
    archiver = make_archiver(locked_bucket, options=LOCK)
    seen = capture(archiver.lander.client, "PutObject")
    [outcome] = archiver.run([ref])
    assert outcome.outcome == "archived", outcome.reason
    truth = truth_by_key(simulator)[records[0].key]
    wav_put, _sidecar_put = seen  # the recording, then its sidecar
    until = parse_timestamp(ref["end"]) + timedelta(days=2555)  # type: ignore[operator]
    for _, headers in seen:
        assert headers["x-amz-object-lock-mode"] == "COMPLIANCE"
        assert headers["x-amz-object-lock-retain-until-date"].startswith(until.strftime("%Y-%m-%dT%H:%M:%S"))
        assert headers["x-amz-object-lock-legal-hold"] == "ON"
        assert headers["x-amz-server-side-encryption"] == "aws:kms"
        assert headers["x-amz-server-side-encryption-aws-kms-key-id"] == LOCK.kms_key_id
        assert headers["x-amz-storage-class"] == "STANDARD_IA"
        assert "x-amz-checksum-sha256" in headers  # S3 requires a checksum header on locked writes
    _, headers = wav_put
    expected = base64.b64encode(bytes.fromhex(truth["sha256"])).decode()
    assert headers["x-amz-checksum-sha256"] == expected  # S3 verifies the whole object against it
    assert headers["If-None-Match"] == "*"
    assert headers["x-amz-meta-sha256"] == truth["sha256"]
    assert headers["x-amz-tagging"] == f"retention=sec17a-4&sha256={truth['sha256']}"
    # moto applies single-part Object Lock: the stored object is retained and on legal hold (read with HEAD:
    # moto 5.2.5's GetObjectRetention answers 500; it also keeps whole seconds only)
    key, _ = segment_keys(ref, archiver.lander.config)
    head = s3_client.head_object(Bucket=locked_bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"].astimezone(timezone.utc) == until.replace(microsecond=0)
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    sidecar = check_archived(s3_client, locked_bucket, ref, truth, archiver.lander.config)
    assert sidecar["s3"]["object_lock_mode"] == "COMPLIANCE"
    assert sidecar["s3"]["object_lock_legal_hold"]
    assert sidecar["s3"]["version_id"]


def test_multipart_upload_carries_lock_kms_and_part_checksums(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, locked_bucket: str
) -> None:
    simulator.control.add_segments([BIG])
    ref = next(r for r in hook.iter_interaction_metadata(*WINDOW) if r.dialog_id == "d-big").to_ref()
    archiver = make_archiver(
        locked_bucket, options=LOCK, single_part_threshold=1 * MiB, multipart_chunksize=5 * MiB
    )
    seen = capture(archiver.lander.client, "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
    [outcome] = archiver.run([ref])
    assert outcome.outcome == "archived", outcome.reason
    names = [name for name, _ in seen]
    assert names == ["CreateMultipartUpload", "UploadPart", "UploadPart", "CompleteMultipartUpload"]
    _, create = seen[0]
    assert create["x-amz-object-lock-mode"] == "COMPLIANCE"
    assert create["x-amz-object-lock-legal-hold"] == "ON"
    assert create["x-amz-server-side-encryption-aws-kms-key-id"] == LOCK.kms_key_id
    assert create["x-amz-checksum-algorithm"] == "SHA256"
    for _, part in seen[1:3]:
        assert "x-amz-checksum-sha256" in part  # every part is verified by S3
    assert seen[3][1]["If-None-Match"] == "*"
    truth = truth_by_key(simulator)[("d-big", "s-big")]
    check_archived(s3_client, locked_bucket, ref, truth, archiver.lander.config)


def test_multipart_loser_of_a_race_verifies_the_winner(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    """Another writer creates the key while our multipart upload runs: our completion gets 412 (no
    overwrite); the different object is not accepted, and it is never overwritten: the segment fails at
    once (no retry) with a reason that says what to do."""
    simulator.control.add_segments([BIG])
    ref = next(r for r in hook.iter_interaction_metadata(*WINDOW) if r.dialog_id == "d-big").to_ref()
    archiver = make_archiver(bucket, single_part_threshold=1 * MiB, multipart_chunksize=5 * MiB)
    key, _ = segment_keys(ref, archiver.lander.config)
    statuses: list[int] = []

    def intruder(params: dict[str, Any], **_: Any) -> None:
        if not statuses:
            s3_client.put_object(Bucket=bucket, Key=key, Body=b"not the recording")

    def after(http_response: Any, **_: Any) -> None:
        statuses.append(http_response.status_code)

    client = archiver.lander.client
    client.meta.events.register("before-call.s3.CompleteMultipartUpload", intruder)
    client.meta.events.register("after-call.s3.CompleteMultipartUpload", after)
    [outcome] = archiver.run([ref])
    assert statuses == [412]
    assert (outcome.outcome, outcome.retryable, outcome.attempts) == ("failed", False, 1)
    assert "nothing overwritten" in outcome.reason
    assert "re-run the window" in outcome.reason
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"not the recording"


def test_sidecar_put_checksum_matches_its_body(
    simulator: Any, records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    archiver = make_archiver(bucket)
    archiver.run(refs_of(records[:1]))
    _, side = segment_keys(records[0].to_ref(), archiver.lander.config)
    head = s3_client.head_object(Bucket=bucket, Key=side, ChecksumMode="ENABLED")
    body = s3_client.get_object(Bucket=bucket, Key=side)["Body"].read()
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert datetime.now(timezone.utc) > parse_timestamp(records[0].to_ref()["end"])  # type: ignore[operator]


def test_old_history_gets_a_future_retain_until_and_the_sidecar_shows_both_dates(
    simulator: Any, records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, locked_bucket: str
) -> None:
    """A backfill older than its retention: S3 refuses a past retain-until date (moto accepts one, so the
    computed date and the sidecar are what is checked). The object is retained until a future midnight, and
    the sidecar records the date the record's own retention gives next to the one asked for."""
    ref = records[0].to_ref()
    end = parse_timestamp(ref["end"])
    assert end is not None
    days = 30  # the simulator's March 2026 segments: retention ran out long before today
    assert end + timedelta(days=days) < datetime.now(timezone.utc)
    options = S3WriteOptions(object_lock_mode="GOVERNANCE", object_lock_retention_days=days)
    archiver = make_archiver(locked_bucket, options=options)
    seen = capture(archiver.lander.client, "PutObject")
    before = datetime.now(timezone.utc)
    [outcome] = archiver.run([ref])
    assert outcome.outcome == "archived", outcome.reason
    floor = datetime.combine((before + timedelta(days=1)).date(), datetime.min.time(), tzinfo=timezone.utc)
    floor += timedelta(days=1)  # the first midnight UTC at least one day ahead (not midnight exactly now)
    for _, headers in seen:  # the recording and its sidecar: one date, in the future
        assert headers["x-amz-object-lock-retain-until-date"].startswith(floor.strftime("%Y-%m-%dT%H:%M:%S"))
    key, _ = segment_keys(ref, archiver.lander.config)
    head = s3_client.head_object(Bucket=locked_bucket, Key=key)
    assert head["ObjectLockRetainUntilDate"].astimezone(timezone.utc) == floor
    sidecar = check_archived(s3_client, locked_bucket, ref, truth_by_key(simulator)[records[0].key],
                             archiver.lander.config)  # fmt: skip
    assert sidecar["s3"]["object_lock_retain_until"] == floor.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sidecar["s3"]["object_lock_retention"] == {
        "counted_from": format_timestamp(end),
        "days": days,
        "retain_until_by_rule": format_timestamp(end + timedelta(days=days)),
        "retain_until": floor.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "floored": True,
    }
