"""Issue #12 item 9: every object a run writes gets the run's encryption, storage class, tags and lock.

The window manifest and the report hold vendor rows (phone numbers, agent ids), so they must be written
like the recordings. The real operators and the report run against the simulator and moto over HTTP; the
wire headers of every write are captured with a botocore ``before-send`` hook on the client the code under
test uses (moto does not enforce KMS keys, so the request is what proves the encryption was asked for).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_ringcx import window_report
from airflow_provider_ringcx.example_dags import tasks as pipeline
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.models import parse_timestamp
from airflow_provider_ringcx.operators.base import s3_hook
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from airflow_provider_ringcx.s3.options import OPTION_NAMES, S3WriteOptions
from tests.operators.conftest import context, fast_hook
from tests.operators.test_manifest_integrity import END, START, W_END, run_dict
from tests.s3.test_compliance import capture

KMS = "arn:aws:kms:us-east-1:123456789012:key/archive"
DAYS = 2555
#: The run's compliance settings, as resolve_run hands them to every task.
OPTIONS = {
    "server_side_encryption": "aws:kms",
    "kms_key_id": KMS,
    "storage_class": "STANDARD_IA",
    "tags": {"retention": "sec17a-4"},
    "object_lock_mode": "COMPLIANCE",
    "object_lock_retention_days": DAYS,
    "object_lock_legal_hold": True,
}
WRITES = ("PutObject", "CreateMultipartUpload")


def _until(headers: dict[str, str]) -> datetime:
    return datetime.strptime(
        headers["x-amz-object-lock-retain-until-date"][:19], "%Y-%m-%dT%H:%M:%S"
    ).replace(tzinfo=timezone.utc)


def assert_compliant(headers: dict[str, str]) -> datetime:
    """Check one write's headers; return the instant its retention counts from (retain-until - days)."""
    assert headers["x-amz-server-side-encryption"] == "aws:kms"
    assert headers["x-amz-server-side-encryption-aws-kms-key-id"] == KMS
    assert headers["x-amz-storage-class"] == "STANDARD_IA"
    assert "retention=sec17a-4" in headers["x-amz-tagging"]
    assert headers["x-amz-object-lock-mode"] == "COMPLIANCE"
    assert headers["x-amz-object-lock-legal-hold"] == "ON"
    assert "x-amz-checksum-sha256" in headers  # S3 requires a checksum header on locked writes
    return _until(headers) - timedelta(days=DAYS)


@pytest.fixture
def window_run(simulator: Any, ringcx_conn: str, aws_conn: str, locked_bucket: str) -> dict[str, Any]:
    """One window through the metadata task and the first batch's download task, with the run's options;
    returns every write each sent, the descriptors and the manifest identity."""
    fetch = fast_hook(
        RingCXInteractionMetadataOperator(task_id="fetch", bucket=locked_bucket, batch_size=3, **OPTIONS)
    )
    manifest_writes = capture(fetch.s3_hook.get_conn(), *WRITES)
    ctx = context(START, END)
    batches = fetch.execute(ctx)
    download = fast_hook(
        RingCXRecordingsToS3Operator(
            task_id="download", batch=batches[0], bucket=locked_bucket, retry_backoff=0, **OPTIONS
        )
    )
    download_writes = capture(download.s3_hook.get_conn(), *WRITES)
    summary = download.execute(context())
    return {
        "bucket": locked_bucket,
        "batches": batches,
        "summary": summary,
        "identity": ctx["ti"].pushed["manifest"],
        "manifest_writes": manifest_writes,
        "download_writes": download_writes,
        "s3": s3_hook(aws_conn).get_conn(),
    }


def test_manifest_recording_sidecar_and_report_carry_the_run_options(
    window_run: dict[str, Any], s3_client: Any
) -> None:
    bucket, identity = window_run["bucket"], window_run["identity"]
    # the manifest: one PUT, retained from the window's end (W_END)
    [(_, manifest)] = window_run["manifest_writes"]
    assert assert_compliant(manifest) == W_END
    # each recording, then its sidecar: retained from the segment's end
    writes = window_run["download_writes"]
    assert len(writes) == 2 * window_run["summary"]["segments"] == 6
    first, last = (parse_timestamp(end) for end in window_run["batches"][0]["ends"])
    for _, headers in writes:
        assert first is not None
        assert last is not None
        assert first.replace(microsecond=0) <= assert_compliant(headers) <= last
    # the report: the same options, resolved from the run's settings, retained from the window's end
    s3 = window_run["s3"]
    report_writes = capture(s3, *WRITES)
    run = {**run_dict(bucket, identity["key"]), **OPTIONS}
    window_report.report_window(s3, run, summaries=[window_run["summary"]], manifest_identity=identity)
    # two writes: the report (locked like the recordings) and the day's archive index, a mutable object
    # merged with If-Match, so it keeps the encryption and tags but carries no Object Lock of its own
    [report] = [headers for _, headers in report_writes if "x-amz-object-lock-mode" in headers]
    [index] = [headers for _, headers in report_writes if "x-amz-object-lock-mode" not in headers]
    assert assert_compliant(report) == W_END
    assert index["x-amz-server-side-encryption-aws-kms-key-id"] == KMS
    assert "retention=sec17a-4" in index["x-amz-tagging"]
    assert "x-amz-object-lock-retain-until-date" not in index
    # what S3 stored (moto applies single-part Object Lock and records SSE and the class)
    for key in (identity["key"], run["report_key"]):
        head = s3_client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockLegalHoldStatus"] == "ON"
        assert head["ObjectLockRetainUntilDate"] == W_END + timedelta(days=DAYS)


def test_a_rerun_report_is_a_new_locked_version_not_an_overwrite(
    window_run: dict[str, Any], s3_client: Any
) -> None:
    """A re-run rewrites the window's report: under Object Lock that adds a version; the first report is
    kept, still retained, and the re-run does not fail on the locked object."""
    bucket, identity, s3 = window_run["bucket"], window_run["identity"], window_run["s3"]
    run = {**run_dict(bucket, identity["key"]), **OPTIONS}
    for _ in range(2):
        window_report.report_window(s3, run, summaries=[window_run["summary"]], manifest_identity=identity)
    versions = s3_client.list_object_versions(Bucket=bucket, Prefix=run["report_key"])["Versions"]
    assert len(versions) == 2
    for version in versions:
        head = s3_client.head_object(Bucket=bucket, Key=run["report_key"], VersionId=version["VersionId"])
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ServerSideEncryption"] == "aws:kms"


def test_the_options_are_resolved_once_per_run_and_a_bad_one_fails_resolve_run() -> None:
    moment = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)
    with pytest.raises(RingCXConfigError, match="server_side_encryption='rot13'"):
        pipeline.resolve_run(
            {"server_side_encryption": "rot13"},
            data_interval_start=moment - timedelta(minutes=15),
            data_interval_end=moment,
            sub_account_id="1",
            s3=None,  # refused before any S3 call
        )
    with pytest.raises(RingCXConfigError, match="object_lock_retention_days='seven years'"):
        S3WriteOptions.from_settings(
            {"object_lock_mode": "COMPLIANCE", "object_lock_retention_days": "seven years"}
        )
    assert S3WriteOptions.from_settings({name: None for name in OPTION_NAMES}) == S3WriteOptions()
    assert S3WriteOptions.from_settings(OPTIONS) == S3WriteOptions(**OPTIONS)  # type: ignore[arg-type]
