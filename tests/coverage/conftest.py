"""Reports for synthetic windows, written by the real report code, and an S3 client that counts requests.

The counting client is the test's own boto3 client with a botocore ``before-call`` hook: every S3 operation
the ledger makes through it is recorded by name, independently of the ledger's own counters.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.report import Reconciliation, SegmentCheck, build_report, write_report
from airflow_provider_ringcx.windows import Window
from tests.fixtures.s3 import REGION, S3_KEY, S3_SECRET

SUB = "12345"
PREFIX = "ringcx"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


class Counting:
    """A boto3 S3 client whose operations are counted (``counts["GetObject"]`` ...)."""

    def __init__(self, endpoint: str) -> None:
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name=REGION,
        )
        self.counts: Counter[str] = Counter()
        self.client.meta.events.register("before-call.s3", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1

    def reset(self) -> None:
        self.counts.clear()


@pytest.fixture
def counting(s3_endpoint: str) -> Counting:
    return Counting(s3_endpoint)


def put_report(
    s3: Any,
    bucket: str,
    start: datetime,
    end: datetime,
    *,
    archived: int = 2,
    size: int = 1000,
    not_archived: Sequence[tuple[str, str]] = (),
    sub: str = SUB,
    prefix: str = PREFIX,
    manifest: dict[str, Any] | None = None,
    allow_unarchived: Sequence[str] = (),
) -> str:
    """Reconcile a synthetic window (``archived`` segments, plus ``not_archived`` (status, reason) ones) and
    write its report with :func:`build_report` / :func:`write_report`; return the report key."""
    window = Window(start, end)
    checks = [
        SegmentCheck(f"d-{i}", f"s-{i}", f"k/{i}.wav", status="archived", size=size, sha256="0" * 64)
        for i in range(archived)
    ]
    checks += [
        SegmentCheck(f"dx-{i}", f"sx-{i}", f"k/x{i}.wav", status=status, reason=reason)
        for i, (status, reason) in enumerate(not_archived)
    ]
    key = keys.report_key(prefix, sub, start, end)
    report = build_report(
        window=window,
        sub_account_id=sub,
        bucket=bucket,
        manifest_key=keys.manifest_key(prefix, sub, start, end),
        key=key,
        reconciliation=Reconciliation(checks),
        run={"run_id": f"test-{uuid.uuid4().hex[:6]}"},
    )
    if manifest is not None:  # as window_report records the manifest's check
        report["manifest"] = manifest
    if allow_unarchived:  # as window_report decides completeness with the run's allow_unarchived
        blocking = [item for item in report["not_archived"] if item["status"] not in allow_unarchived]
        report["complete"], report["blocking"] = not blocking, len(blocking)
    write_report(s3, bucket, key, report)
    return key


def put_manifest(s3: Any, bucket: str, start: datetime, end: datetime, *, sub: str = SUB) -> str:
    key = keys.manifest_key(PREFIX, sub, start, end)
    s3.put_object(Bucket=bucket, Key=key, Body=b'{"kind": "header"}\n')
    return key
