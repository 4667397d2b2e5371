"""Issue #12 item 2 (manifest check skippable): no path trusts a manifest it has not verified.

Three ways the check could be skipped, each tried as an attacker with write access to the bucket would:

- the report ran with the metadata task's XCom ``manifest`` absent and read the manifest unverified, yet
  could say the window is complete: it now fails, naming the window and the fix, unless the run opts out
  with ``allow_unverified_manifest``;
- the late-arrival rescan's manifest was read without its identity (planning and report): it is now pinned
  and hashed like the window's;
- a task reusing a manifest skipped the summary's batch records that carried no ``sha256`` (and merged
  batches never carried one): every record now vouches for its bytes, merged ones by their parts, and a
  record without a digest is refused.

Manifests are written by the real writer into moto over HTTP; edits are plain PutObjects.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.example_dags import tasks
from airflow_provider_ringcx.models import SegmentRecord
from airflow_provider_ringcx.s3.writeonce import WriteOnceObject
from airflow_provider_ringcx.transfers.manifest import ManifestWriter, fetch_window_manifest
from airflow_provider_ringcx.transfers.manifest_format import ManifestIdentity, ManifestIntegrityError
from airflow_provider_ringcx.transfers.manifest_integrity import ManifestUnverifiedError, describe
from airflow_provider_ringcx.transfers.manifest_reader import load_batch
from airflow_provider_ringcx.window_report import report_window

SUB = "99999999"
START = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
END = START + timedelta(minutes=15)
EARLIER = (START - timedelta(days=1), END - timedelta(days=1))


def row(i: int, *, recording: bool = True) -> dict[str, Any]:
    return {
        "dialogId": f"d-{i // 3}",
        "segmentId": f"s-{i:03d}",
        "subAccountId": SUB,
        "segmentStartTimeMs": "2026-03-02T14:00:00.000Z",
        "segmentEndTimeMs": "2026-03-02T14:05:00.000Z",
        "segmentDurationMs": 300000,
        "hasRecording": recording,
    }


def write(
    client: Any, bucket: str, key: str, rows: list[dict], *, batch_size: int = 3, max_batches: int = 1000
) -> tuple[list, ManifestIdentity]:
    target = WriteOnceObject(client, bucket, key, content_type="application/x-ndjson")
    writer = ManifestWriter(target, header={}, batch_size=batch_size, max_batches=max_batches)
    for item in rows:
        writer.add(SegmentRecord.parse(item))
    written, batches = writer.finish()
    assert written
    assert writer.identity is not None
    return batches, writer.identity


def rename(client: Any, bucket: str, key: str, segment_id: str) -> None:
    """Rewrite the manifest with one segment id changed, same length (every offset stays valid)."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    edited = body.replace(segment_id.encode(), segment_id[:-1].encode() + b"x")
    assert len(edited) == len(body)
    assert edited != body
    client.put_object(Bucket=bucket, Key=key, Body=edited)


def edit_summary(client: Any, bucket: str, key: str, change: Any) -> None:
    """Rewrite the manifest's summary line through ``change(summary)``."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    head, summary_line = body.rstrip(b"\n").rsplit(b"\n", 1)
    summary = json.loads(summary_line)
    change(summary)
    client.put_object(Bucket=bucket, Key=key, Body=head + b"\n" + json.dumps(summary).encode() + b"\n")


def window_manifest_key() -> str:
    return keys.manifest_key("ringcx", SUB, START, END)


# --- reuse: a batch record without its digest ------------------------------------------------------------
def test_a_reused_manifest_whose_batch_lost_its_sha256_is_refused(s3_client: Any, bucket: str) -> None:
    """The attacker renames a row and drops the digest that would catch it: before the fix the record
    without ``sha256`` was skipped and the edited bytes were planned (with digests of the edited bytes)."""
    key = window_manifest_key()
    write(s3_client, bucket, key, [row(i) for i in range(9)])
    rename(s3_client, bucket, key, "s-004")
    edit_summary(s3_client, bucket, key, lambda summary: summary["batches"][1].pop("sha256"))
    with pytest.raises(ManifestIntegrityError, match=r"batch 1 of manifest .* has no sha256 .*Delete the"):
        describe(s3_client, bucket, key)
    with pytest.raises(ManifestIntegrityError, match="has no sha256"):  # the metadata task's reuse path
        fetch_window_manifest(
            hook=None, client=s3_client, bucket=bucket, key=key, start=START, end=END,  # type: ignore[arg-type]
            sub_account_id=SUB, batch_size=3,
        )  # fmt: skip


def test_merged_batches_are_verified_by_their_parts_on_reuse(s3_client: Any, bucket: str) -> None:
    """Batches merged under the map-length cap had no digest at all, so an edit inside one passed reuse."""
    key = window_manifest_key()
    rows = [row(i, recording=i % 5 != 2) for i in range(40)]  # rows without a recording between batches
    written, _ = write(s3_client, bucket, key, rows, batch_size=2, max_batches=5)
    assert len(written) == 4  # 16 batches of 2, merged 4 by 4
    summary, identity, _ = describe(s3_client, bucket, key)  # intact: accepted, same descriptors
    assert all(len(batch["parts"]) == 4 and "sha256" not in batch for batch in summary["batches"])
    assert identity["sha256"]
    assert [load_batch(s3_client, bucket, batch)[0] for batch in written]
    rename(s3_client, bucket, key, "s-013")  # inside merged batch 1, left alone by the summary
    with pytest.raises(ManifestIntegrityError, match=r"batch 1 of manifest .* summary recorded .* edited"):
        describe(s3_client, bucket, key)


def test_a_merged_batch_without_its_parts_is_refused(s3_client: Any, bucket: str) -> None:
    key = window_manifest_key()
    write(s3_client, bucket, key, [row(i) for i in range(20)], batch_size=1, max_batches=5)
    edit_summary(s3_client, bucket, key, lambda summary: summary["batches"][2].pop("parts"))
    with pytest.raises(ManifestIntegrityError, match=r"batch 2 of manifest .* has no sha256"):
        describe(s3_client, bucket, key)
    key2 = key + ".gap"
    write(s3_client, bucket, key2, [row(i) for i in range(20)], batch_size=1, max_batches=5)

    def leave_a_gap(summary: dict) -> None:  # parts that no longer tile the range: a piece left unchecked
        summary["batches"][0]["parts"][0][0] += 1

    edit_summary(s3_client, bucket, key2, leave_a_gap)
    with pytest.raises(ManifestIntegrityError, match="do not cover them"):
        describe(s3_client, bucket, key2)


# --- the report without the identity ---------------------------------------------------------------------
def run_plan(bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "prefix": "ringcx",
        "sub_account_id": SUB,
        "window_start": START.isoformat(),
        "window_end": END.isoformat(),
        "manifest_key": window_manifest_key(),
        "report_key": keys.report_key("ringcx", SUB, START, END),
        "rescan": False,
        "verify_content": False,
        "allow_unarchived": [],
        "batch_size": 100,
        **extra,
    }


def test_the_report_without_the_manifest_identity_fails_unless_the_run_opts_out(
    s3_client: Any, bucket: str
) -> None:
    """Before the fix the report read the manifest unverified and said ``"verified": false``, and a window
    whose every segment was archived was reported complete from bytes nothing vouched for."""
    _, identity = write(s3_client, bucket, window_manifest_key(), [row(i, recording=False) for i in range(3)])
    run = run_plan(bucket)
    window = keys.window_part(START, END)
    expected = f"window {window}: the fetch_metadata_window task"
    with pytest.raises(ManifestUnverifiedError, match=expected) as err:
        report_window(s3_client, run, summaries=[], manifest_identity=None)
    assert "Clear fetch_metadata_window" in str(err.value)
    assert "allow_unverified_manifest=true" in str(err.value)
    with pytest.raises(s3_client.exceptions.NoSuchKey):  # nothing was reported from the unverified bytes
        s3_client.get_object(Bucket=bucket, Key=run["report_key"])
    report = report_window(s3_client, {**run, "allow_unverified_manifest": True}, summaries=[])
    assert report["complete"]
    assert report["manifest"]["verified"] is False
    assert "allow_unverified_manifest=true" in report["manifest"]["note"]
    verified = report_window(s3_client, run, summaries=[], manifest_identity=identity)
    assert verified["manifest"]["verified"] is True


# --- the late-arrival rescan ----------------------------------------------------------------------------
def rescan_plan(s3_client: Any, bucket: str) -> tuple[dict[str, Any], ManifestIdentity, ManifestIdentity]:
    """A run whose rescan found one late segment: the earlier window's manifest, its rescan's, and the
    window's own."""
    original = keys.manifest_key("ringcx", SUB, *EARLIER)
    rescanned = keys.rescan_manifest_key("ringcx", SUB, *EARLIER, by_start=START, by_end=END)
    write(s3_client, bucket, original, [row(i) for i in range(3)])
    _, rescan_identity = write(s3_client, bucket, rescanned, [row(i) for i in range(4)])
    _, identity = write(s3_client, bucket, window_manifest_key(), [row(i, recording=False) for i in range(2)])
    run = run_plan(
        bucket,
        rescan=True,
        rescan_start=EARLIER[0].isoformat(),
        rescan_end=EARLIER[1].isoformat(),
        rescan_manifest_key=rescanned,
        rescan_original_manifest_key=original,
    )
    return run, rescan_identity, identity


def test_late_downloads_are_planned_only_from_a_verified_rescan_manifest(s3_client: Any, bucket: str) -> None:
    run, rescan_identity, _ = rescan_plan(s3_client, bucket)
    planned = tasks.plan_late_downloads(s3_client, run, rescan_identity=rescan_identity)
    assert [[ref["segment_id"] for ref in kwargs["batch"]] for kwargs in planned] == [["s-003"]]
    with pytest.raises(ManifestUnverifiedError, match="fetch_rescan_window task's XCom 'manifest'"):
        tasks.plan_late_downloads(s3_client, run)
    assert tasks.plan_late_downloads(s3_client, {**run, "allow_unverified_manifest": True}) == planned
    rename(s3_client, bucket, run["rescan_manifest_key"], "s-003")  # a forged late segment
    with pytest.raises(ManifestIntegrityError, match=r"no longer the object|hashes to"):
        tasks.plan_late_downloads(s3_client, run, rescan_identity=rescan_identity)
    with pytest.raises(ManifestIntegrityError, match=r"hashes to .* it was edited"):  # no ETag to pin
        tasks.plan_late_downloads(s3_client, run, rescan_identity={**rescan_identity, "etag": None})


def test_the_report_verifies_the_rescan_manifest(s3_client: Any, bucket: str) -> None:
    run, rescan_identity, identity = rescan_plan(s3_client, bucket)
    report = report_window(
        s3_client, run, summaries=[], manifest_identity=identity, rescan_identity=rescan_identity
    )
    assert report["rescan"]["manifest"] == {**rescan_identity, "verified": True}
    with pytest.raises(ManifestUnverifiedError, match=r"the rescan of window .* fetch_rescan_window"):
        report_window(s3_client, run, summaries=[], manifest_identity=identity)
    rename(s3_client, bucket, run["rescan_manifest_key"], "s-003")
    with pytest.raises(ManifestIntegrityError, match=r"hashes to .* it was edited"):
        report_window(
            s3_client, run, summaries=[], manifest_identity=identity,
            rescan_identity={**rescan_identity, "etag": None},
        )  # fmt: skip
