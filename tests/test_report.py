"""Window reconciliation against a real S3-compatible server (moto over HTTP)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_ringcx.keys import report_key
from airflow_provider_ringcx.report import (
    ExpectedSegment,
    RescanResult,
    build_report,
    late_segments,
    outcomes_from_summaries,
    reconcile,
    summary_counts,
    write_report,
    xcom_counts,
)
from airflow_provider_ringcx.windows import Window
from tests.fixtures.sidecars import sidecar_doc

WINDOW = Window(
    datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc), datetime(2026, 3, 2, 14, 15, tzinfo=timezone.utc)
)


def _segment(n: int) -> ExpectedSegment:
    base = f"rec/sub_account=99999999/year=2026/month=03/day=02/hour=14/d{n}/s{n}"
    return ExpectedSegment(f"d{n}", f"s{n}", f"{base}.wav", f"{base}.json", sub_account_id="99999999")


def _land(
    s3: Any,
    bucket: str,
    segment: ExpectedSegment,
    body: bytes,
    *,
    sidecar_sha: str | None = None,
    sidecar_size: int | None = None,
    metadata_sha: str | None = None,
    tag: bool = False,
    sidecar: bool = True,
) -> None:
    sha = hashlib.sha256(body).hexdigest()
    extra: dict[str, Any] = {}
    if not tag:
        extra["Metadata"] = {"sha256": metadata_sha or sha}
    else:
        extra["Tagging"] = f"sha256={metadata_sha or sha}"
    s3.put_object(Bucket=bucket, Key=segment.key, Body=body, **extra)
    if sidecar:
        doc = sidecar_doc(
            sub_account_id=segment.sub_account_id,
            dialog_id=segment.dialog_id,
            segment_id=segment.segment_id,
            sha256=sidecar_sha or sha,
            size=len(body) if sidecar_size is None else sidecar_size,
            bucket=bucket,
            key=segment.key,
        )
        s3.put_object(Bucket=bucket, Key=segment.sidecar_key, Body=json.dumps(doc).encode())


def test_report_key_layout() -> None:
    assert report_key("recordings", "99999999", WINDOW.start, WINDOW.end) == (
        "recordings/_reports/sub_account=99999999/window=20260302T1400Z_20260302T1415Z.json"
    )
    assert report_key("", "1", WINDOW.start, WINDOW.end).startswith("_reports/sub_account=1/")


def test_all_archived_is_complete(s3_client: Any, bucket: str) -> None:
    segments = [_segment(n) for n in range(5)]
    for n, segment in enumerate(segments):
        _land(s3_client, bucket, segment, b"RIFF" + bytes([n]) * (100 + n))
    result = reconcile(s3_client, bucket, segments, verify_content=True)
    counts = result.counts()
    assert counts["expected"] == counts["archived"] == counts["sha256_verified"] == 5
    assert counts["content_verified"] == 5
    assert counts["bytes"] == sum(104 + n for n in range(5))
    assert result.not_archived == []


def test_every_failure_mode_gets_a_status_and_reason(s3_client: Any, bucket: str) -> None:
    ok, forbidden, lost, no_sidecar, bad_meta, bad_size, tampered, tagged = (_segment(n) for n in range(8))
    _land(s3_client, bucket, ok, b"fine")
    _land(s3_client, bucket, no_sidecar, b"x", sidecar=False)
    _land(s3_client, bucket, bad_meta, b"y", metadata_sha="0" * 64)
    _land(s3_client, bucket, bad_size, b"zz", sidecar_size=3)
    # metadata and sidecar agree with each other, but the bytes were replaced: only a content check sees it
    _land(
        s3_client,
        bucket,
        tampered,
        b"other",
        sidecar_sha=hashlib.sha256(b"orig!").hexdigest(),
        metadata_sha=hashlib.sha256(b"orig!").hexdigest(),
    )
    _land(s3_client, bucket, tagged, b"multipart-like", tag=True)
    outcomes = outcomes_from_summaries(
        [
            None,
            {
                "counts": {"forbidden": 1},
                "not_archived": [
                    {
                        "dialog_id": "d1",
                        "segment_id": "s1",
                        "outcome": "forbidden",
                        "reason": "403 from RingCX",
                    }
                ],
            },
        ]
    )
    segments = [ok, forbidden, lost, no_sidecar, bad_meta, bad_size, tampered, tagged]
    shallow = {c.segment_id: c for c in reconcile(s3_client, bucket, segments, outcomes=outcomes).checks}
    assert shallow["s0"].status == "archived"
    assert (shallow["s1"].status, shallow["s1"].reason) == ("forbidden", "403 from RingCX")
    assert shallow["s2"].status == "object_missing"
    assert "re-run" in shallow["s2"].reason
    assert shallow["s3"].status == "sidecar_missing"
    assert shallow["s4"].status == "checksum_mismatch"
    assert shallow["s5"].status == "size_mismatch"
    assert shallow["s6"].status == "archived"  # shallow check trusts agreeing checksums
    assert shallow["s7"].status == "archived"  # sha256 found in the object tag
    deep = {c.segment_id: c for c in reconcile(s3_client, bucket, segments, verify_content=True).checks}
    assert deep["s6"].status == "content_mismatch"
    assert deep["s7"].content_verified


def test_report_document_counts_and_rescan(s3_client: Any, locked_bucket: str) -> None:
    bucket = locked_bucket  # the report PUT carries a checksum, as Object Lock requires
    present, absent, late = _segment(1), _segment(2), _segment(3)
    _land(s3_client, bucket, present, b"abc")
    _land(s3_client, bucket, late, b"late!")
    main = reconcile(s3_client, bucket, [present, absent])
    assert late_segments([present, absent], [present, late]) == [late]
    rescan_checks = reconcile(s3_client, bucket, [late]).checks
    rescan = RescanResult(WINDOW.shift(-WINDOW.duration * 96), "m-key", listed=2, late=rescan_checks)
    key = report_key("rec", "99999999", WINDOW.start, WINDOW.end)
    report = build_report(
        window=WINDOW,
        sub_account_id="99999999",
        bucket=bucket,
        manifest_key="rec/_manifests/x.json",
        key=key,
        reconciliation=main,
        download_counts=summary_counts([{"counts": {"archived": 1}, "bytes_downloaded": 3}, None]),
        rescan=rescan,
        run={"dag_id": "d", "run_id": "r"},
    )
    write_report(s3_client, bucket, key, report)
    stored = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert stored["complete"] is False
    assert stored["counts"]["expected"] == 2
    assert stored["counts"]["archived"] == 1
    assert stored["counts"]["late_found"] == stored["counts"]["late_archived"] == 1
    assert stored["not_archived"][0]["segment_id"] == "s2"
    assert stored["rescan"]["window"]["key"] == "20260301T1400Z_20260301T1415Z"
    assert stored["rescan"]["late_segments"][0]["segment_id"] == "s3"
    assert stored["download_outcomes"] == {"archived": 1, "bytes_downloaded": 3}
    compact = xcom_counts(stored)
    assert compact["report_key"] == key
    assert compact["expected"] == 2
    assert len(json.dumps(compact)) < 1000


@pytest.mark.parametrize("workers", [1, 8])
def test_reconcile_many_segments_concurrently(s3_client: Any, bucket: str, workers: int) -> None:
    segments = [_segment(n) for n in range(40)]
    for segment in segments:
        _land(s3_client, bucket, segment, segment.segment_id.encode())
    result = reconcile(s3_client, bucket, segments, workers=workers)
    assert [c.segment_id for c in result.checks] == [s.segment_id for s in segments]
    assert result.counts()["archived"] == 40
