"""Issue #12 item 4: the download task, the report and a reusing metadata task notice an edited manifest.

The attack is the issue's: a same-length rewrite of the manifest that renames a middle row of a batch. The
byte ranges, the count and the first and last ids are unchanged, so the checks that came before (count plus
first and last ids) pass. The real operators run against the simulator and moto over HTTP; the rewrite is a
plain PutObject over the manifest key, as anyone with write access to the bucket could send.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ringcx import window_report
from airflow_provider_ringcx.keys import report_key
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from airflow_provider_ringcx.transfers.manifest_reader import ManifestIntegrityError, iter_manifest
from tests.fixtures.s3 import list_keys
from tests.operators.conftest import context, fast_hook

START = datetime(2026, 3, 2, 14, 15, tzinfo=timezone.utc)
END = START + timedelta(minutes=15)
SUB = "99999999"
#: The window those data intervals archive (shifted back by the default 15-minute lag).
W_START, W_END = START - timedelta(minutes=15), START


def fetch(bucket: str) -> tuple[list, dict]:
    """Run the metadata task; return its descriptors and the manifest identity it pushed."""
    ctx = context(START, END)
    op = fast_hook(RingCXInteractionMetadataOperator(task_id="fetch", bucket=bucket, batch_size=3))
    batches = op.execute(ctx)
    return batches, ctx["ti"].pushed["manifest"]


def download(bucket: str, batch: dict) -> RingCXRecordingsToS3Operator:
    return fast_hook(
        RingCXRecordingsToS3Operator(task_id="download", batch=batch, bucket=bucket, retry_backoff=0)
    )


def downloads(simulator: Any) -> int:
    return sum(simulator.control.stats()["requests"].get("download", {}).values())


def rename_middle_row(s3_client: Any, bucket: str, batch: dict) -> tuple[str, str]:
    """Rewrite the manifest with the second recorded row of ``batch`` renamed (same length, same offsets).

    :return: the original and the forged segment id.
    """
    key = batch["manifest_key"]
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    start, end = batch["range"]
    lines = body[start:end].split(b"\n")
    recorded = [i for i, line in enumerate(lines) if line and json.loads(line).get("has_recording")]
    middle = recorded[1]
    original = json.loads(lines[middle])["segment_id"]
    forged = original[:-1] + ("x" if original[-1] != "x" else "y")
    lines[middle] = lines[middle].replace(original.encode(), forged.encode())
    edited = body[:start] + b"\n".join(lines) + body[end:]
    assert len(edited) == len(body)
    assert edited != body
    s3_client.put_object(Bucket=bucket, Key=key, Body=edited)
    return original, forged


def old_checks_pass(s3_client: Any, bucket: str, batch: dict) -> bool:
    """What load_batch checked before item 4: the count and the first and last ids of the range."""
    rows = [
        line
        for line in iter_manifest(s3_client, bucket, batch["manifest_key"], byte_range=batch["range"])
        if line.get("has_recording")
    ]
    ends = [[rows[0]["dialog_id"], rows[0]["segment_id"]], [rows[-1]["dialog_id"], rows[-1]["segment_id"]]]
    return len(rows) == batch["count"] and ends == [batch["first"], batch["last"]]


def run_dict(bucket: str, manifest_key: str) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "prefix": "ringcx",
        "sub_account_id": SUB,
        "window_start": W_START.isoformat(),
        "window_end": W_END.isoformat(),
        "manifest_key": manifest_key,
        "report_key": report_key("ringcx", SUB, W_START, W_END),
        "rescan": False,
        "verify_content": False,
        "allow_unarchived": [],
    }


def test_a_same_length_rename_fails_the_download_task_without_retry(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    batches, identity = fetch(bucket)
    batch = batches[0]
    assert batch["count"] == 3
    assert len(batch["sha256"]) == 64
    assert batch["manifest_etag"] == identity["etag"]
    rename_middle_row(s3_client, bucket, batch)
    assert old_checks_pass(s3_client, bucket, batch)  # the attack defeats the count and id checks
    before = downloads(simulator)
    where = f"batch 0 of manifest s3://{bucket}/{batch['manifest_key']}"
    # If-Match: S3 refuses the pinned read (412), the task fails without an Airflow retry
    with pytest.raises(AirflowFailException, match="no longer the object the metadata task wrote") as err:
        download(bucket, batch).execute(context())
    assert f"s3://{bucket}/{batch['manifest_key']}" in str(err.value)
    assert "fetch_metadata_window" in str(err.value)
    # a store that ignores If-Match (no ETag to pin): the range's SHA-256 still catches it, naming the batch
    with pytest.raises(AirflowFailException, match=r"hash to .* the manifest was edited") as err:
        download(bucket, {**batch, "manifest_etag": None}).execute(context())
    assert where in str(err.value)
    assert "delete it and clear the window's fetch_metadata_window task" in str(err.value)
    assert downloads(simulator) == before  # nothing was downloaded from the forged batch
    assert list_keys(s3_client, bucket, "ringcx/sub_account=") == []


def test_the_report_verifies_the_manifest_before_trusting_it(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    batches, identity = fetch(bucket)
    run = run_dict(bucket, identity["key"])
    report = window_report.report_window(s3_client, run, summaries=[], manifest_identity=identity)
    assert report["manifest"] == {**identity, "verified": True}
    first = s3_client.get_object(Bucket=bucket, Key=run["report_key"])["Body"].read()
    rename_middle_row(s3_client, bucket, batches[0])
    with pytest.raises(ManifestIntegrityError, match=f"manifest s3://{bucket}/{identity['key']}"):
        window_report.report_window(s3_client, run, summaries=[], manifest_identity=identity)
    # without the ETag to pin (a store that ignores If-Match), the streamed SHA-256 catches it at the end
    with pytest.raises(ManifestIntegrityError, match=r"hashes to .* it was edited after it was written"):
        window_report.report_window(
            s3_client, run, summaries=[], manifest_identity={**identity, "etag": None}
        )
    # the edited manifest never produced a report
    assert s3_client.get_object(Bucket=bucket, Key=run["report_key"])["Body"].read() == first


def test_in_a_versioned_bucket_downloads_read_the_planned_version_and_the_report_fails(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    batches, identity = fetch(bucket)
    assert identity["version_id"]
    assert batches[0]["manifest_version"] == identity["version_id"]
    original, forged = rename_middle_row(s3_client, bucket, batches[0])
    summary = download(bucket, batches[0]).execute(context())  # pinned to the version it was planned from
    assert summary["counts"]["archived"] == summary["segments"] == 3
    archived = " ".join(list_keys(s3_client, bucket, "ringcx/sub_account="))
    assert original in archived
    assert forged not in archived
    with pytest.raises(ManifestIntegrityError, match=r"now has version .* it was written over") as err:
        window_report.report_window(s3_client, run_dict(bucket, identity["key"]), summaries=[summary],
                               manifest_identity=identity)  # fmt: skip
    assert identity["key"] in str(err.value)


def test_a_metadata_task_reusing_an_edited_manifest_fails_without_retry(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    """A retry finds the manifest and reuses it: its bytes no longer match the digests its summary
    recorded when it was written (the attacker left the summary alone), so no batches are planned."""
    batches, _ = fetch(bucket)
    rename_middle_row(s3_client, bucket, batches[0])
    with pytest.raises(AirflowFailException, match=r"batch 0 of manifest .* summary recorded .* was edited"):
        fetch(bucket)


def test_a_reused_manifest_hands_on_the_same_descriptors_and_identity(
    simulator: Any, ringcx_conn: str, aws_conn: str, bucket: str
) -> None:
    first, identity = fetch(bucket)
    again, reused = fetch(bucket)
    assert again == first
    assert reused == identity
