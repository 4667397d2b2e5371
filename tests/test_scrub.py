"""The one reason scrubber: any URL scheme's query and userinfo, bare credentials, bearer tokens, JWTs.

A pure function, so these are table tests; the places that use it (progress lines, manifest rows, coverage
rollups) are checked here too, each with a reason that the http(s)-only scrubbing let through.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_ringcx.coverage.facts import ReportFact, clean_reason
from airflow_provider_ringcx.report import ExpectedSegment, check_segment
from airflow_provider_ringcx.scrub import scrub
from airflow_provider_ringcx.transfers.batch import _reason
from airflow_provider_ringcx.transfers.documents import outcome as _outcome
from airflow_provider_ringcx.transfers.manifest_format import invalid_line
from airflow_provider_ringcx.transfers.progress import BatchProgress
from airflow_provider_ringcx.windows import Window

SECRET = "S3cr3tV4lue"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
CASES = [
    (
        f"GET https://cdn.example/rec/1.wav?X-Amz-Signature={SECRET}&a=1 (403)",
        "https://cdn.example/rec/1.wav?…",
    ),
    (f"s3://archive/key.wav?versionId=1&token={SECRET} failed", "s3://archive/key.wav?… failed"),
    (f"redirected to wss://media.example/x#token={SECRET}", "wss://media.example/x?…"),
    (f"ftp://user:{SECRET}@files.example/a.wav refused", "ftp://***@files.example/a.wav refused"),
    (f"presigned part X-Amz-Signature={SECRET}&X-Amz-Date=20260302", "X-Amz-Signature=***&X-Amz-Date"),
    (f"X-Amz-Credential={SECRET}%2F20260302 and X-Amz-Security-Token={SECRET}", "X-Amz-Credential=***"),
    (f"form body: token={SECRET}&grant_type=x", "token=***&grant_type=x"),
    (f"access_token={SECRET}; refresh_token={SECRET}", "access_token=***; refresh_token=***"),
    (f"header Authorization: Bearer {SECRET} rejected", "Authorization: Bearer *** rejected"),
    (f"authorization: basic {SECRET}", "basic ***"),
    (f'vendor said {{"access_token": "{SECRET} x", "expires_in": 3600}}', '"access_token": "***"'),
    (f"the token {JWT} expired", "the token *** expired"),
    (f"CloudFront Signature={SECRET}&Key-Pair-Id={SECRET}&Policy={SECRET}", "Signature=***&Key-Pair-Id=***"),
]


@pytest.mark.parametrize(("text", "kept"), CASES)
def test_credentials_are_scrubbed_whatever_the_scheme_or_shape(text: str, kept: str) -> None:
    scrubbed = scrub(text)
    assert SECRET not in scrubbed
    assert JWT not in scrubbed
    assert kept in scrubbed


def test_what_names_the_failure_is_kept() -> None:
    for text in (
        "RingCXForbiddenError: 403 Forbidden for dlg-1/seg-2 (https://api.example/v1/recording)",
        "S3 error code: NoSuchKey; invalid client secret: check the connection",
        "ClientError: An error occurred (AccessDenied) when calling the PutObject operation",
    ):
        assert scrub(text) == text


def test_every_place_that_keeps_a_reason_uses_it() -> None:
    reason = f"RingCXError: GET s3://b/k?X-Amz-Signature={SECRET} and token={SECRET}"
    assert SECRET not in clean_reason(reason)  # a coverage rollup
    assert SECRET not in invalid_line("{}", ValueError(reason))["reason"]  # an unparseable manifest row
    assert SECRET not in _outcome("failed", "k", reason).reason  # a transcript's (summary's) outcome
    lines: list[str] = []
    progress = BatchProgress(type("Log", (), {"info": lambda _, *args: lines.append(args[0] % args[1:])})())
    progress.start(1)
    progress.finished("failed", "dlg/seg", 0, reason)
    assert lines
    assert SECRET not in "\n".join(lines)  # the log line
    day = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    fact = ReportFact.unreadable("k", "e", "m", Window(day, day.replace(minute=15)), reason)
    assert SECRET not in fact.reasons[0]


def test_a_download_outcome_reason_reaches_the_report_scrubbed(s3_client: Any, bucket: str) -> None:
    """The reason a download task records (its summary XCom) and the report's ``not_archived`` reason:
    both scrubbed, whatever scheme the failing URL had (moto: the segment's object is absent)."""
    error = RuntimeError(
        f"403 from wss://media.example/rec.wav?token={SECRET}, Authorization: Bearer {SECRET}"
    )
    recorded = _reason(error)
    assert SECRET not in recorded
    assert "wss://media.example/rec.wav?" in recorded
    segment = ExpectedSegment("dlg-1", "seg-1", "a/dlg-1/seg-1.wav", "a/dlg-1/seg-1.json", sub_account_id="1")
    raw = {"outcome": "forbidden", "reason": f"GET s3://b/k?X-Amz-Signature={SECRET}"}  # an older summary
    check = check_segment(s3_client, bucket, segment, outcome=raw)
    assert check.status == "forbidden"
    assert SECRET not in check.reason
