"""Window reconciliation: the manifest of expected segments against what S3 actually holds.

Each segment the window's manifest expects is judged by
:func:`~airflow_provider_ringcx.transfers.verdict.verify_archived`, the same verdict the lander's
idempotency check
uses (object present, valid sidecar of this very segment, sizes and every stored checksum agreeing). With
``verify_content`` the object's bytes are read back and hashed too. Every segment that is not archived gets
a status and a reason: the outcome the download task recorded (403 forbidden, 404 missing, a failure) when
there is no object, else the verdict's state (``sidecar_invalid``, ``collision``, a mismatch...). A bad
sidecar or a 403 on one key marks that segment, never the whole report.

The report is JSON at ``{prefix}/_reports/sub_account={id}/window={START}_{END}.json``; it is rewritten by a
re-run of the same window (it describes the latest reconciliation, the manifest stays write-once). It is
written with the run's compliance options; under Object Lock each re-run adds a retained version, so
earlier reports are kept (see :mod:`airflow_provider_ringcx.s3.options`). Before it trusts the manifest,
the report checks it against the identity the metadata task recorded (``manifest`` in the report).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx import __version__, jsonutil
from airflow_provider_ringcx.models import iso
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.scrub import scrub
from airflow_provider_ringcx.transfers.verdict import (
    OBJECT_MISSING,
    SIDECAR_INVALID,
    SIDECAR_MISSING,
    Identity,
    Verdict,
    verify_archived,
)
from airflow_provider_ringcx.windows import Window

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REPORT_VERSION = 1
#: Statuses of a reconciled segment; only ``archived`` counts as archived.
ARCHIVED = "archived"
NOT_ARCHIVED_STATUSES = (
    "forbidden",
    "missing",
    "failed",
    "object_missing",
    "sidecar_missing",
    "sidecar_invalid",
    "collision",
    "unverifiable",
    "checksum_mismatch",
    "size_mismatch",
    "content_mismatch",
)


@dataclass(frozen=True)
class ExpectedSegment:
    """A segment the manifest lists with a recording, and where it must be in S3."""

    dialog_id: str
    segment_id: str
    key: str
    sidecar_key: str
    sub_account_id: str

    @property
    def ident(self) -> tuple[str, str]:
        return (self.dialog_id, self.segment_id)

    @property
    def identity(self) -> Identity:
        return Identity(self.sub_account_id, self.dialog_id, self.segment_id)


@dataclass
class SegmentCheck:
    """The reconciled state of one expected segment."""

    dialog_id: str
    segment_id: str
    key: str
    status: str
    reason: str = ""
    size: int | None = None
    sha256: str | None = None
    content_verified: bool = False
    #: the verdict it came from (version id, Object Lock state: for the index; not in the report)
    verdict: Verdict | None = field(default=None, repr=False, compare=False)

    @property
    def archived(self) -> bool:
        return self.status == ARCHIVED


@dataclass
class Reconciliation:
    """Every check of a window plus the counts derived from them."""

    checks: list[SegmentCheck] = field(default_factory=list)

    @property
    def archived(self) -> list[SegmentCheck]:
        return [check for check in self.checks if check.archived]

    @property
    def not_archived(self) -> list[SegmentCheck]:
        return [check for check in self.checks if not check.archived]

    def counts(self) -> dict[str, Any]:
        archived = self.archived
        return {
            "expected": len(self.checks),
            "archived": len(archived),
            "not_archived": len(self.checks) - len(archived),
            "sha256_verified": len(archived),
            "content_verified": sum(1 for check in archived if check.content_verified),
            "bytes": sum(check.size or 0 for check in archived),
            "by_status": dict(sorted(Counter(check.status for check in self.checks).items())),
        }


def check_segment(
    s3: S3Client,
    bucket: str,
    segment: ExpectedSegment,
    *,
    verify_content: bool = False,
    outcome: Mapping[str, Any] | None = None,
) -> SegmentCheck:
    """Reconcile one expected segment against S3 (by the one verdict).

    :param outcome: what the download task recorded for it (``{"outcome": ..., "reason": ...}``); used as
        the reason when the segment is not in S3.
    """
    verdict = verify_archived(
        s3, bucket, segment.identity, segment.key, segment.sidecar_key, verify_content=verify_content
    )
    check = SegmentCheck(
        segment.dialog_id,
        segment.segment_id,
        segment.key,
        status=verdict.state,
        reason=verdict.reason,
        size=verdict.size,
        sha256=verdict.sha256,
        content_verified=verdict.content_verified,
        verdict=verdict,
    )
    if verdict.state == OBJECT_MISSING:
        recorded = (outcome or {}).get("outcome")
        if recorded in ("forbidden", "missing", "failed"):
            check.status = str(recorded)
            check.reason = scrub(str((outcome or {}).get("reason") or recorded))  # from an XCom: any task's
        else:
            check.reason = (
                "no object at the key and no download outcome recorded for it (the download task did not "
                "reach it: see the download task's log, then re-run the window)"
            )
    elif verdict.state in (SIDECAR_MISSING, SIDECAR_INVALID):
        check.reason = f"{verdict.reason}; the next run of the window lands it again"
    return check


def reconcile(
    s3: S3Client,
    bucket: str,
    expected: Iterable[ExpectedSegment],
    *,
    outcomes: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    verify_content: bool = False,
    workers: int = 8,
) -> Reconciliation:
    """Check every expected segment (concurrently, ``workers`` S3 requests at a time)."""
    outcomes = outcomes or {}
    segments = list(expected)

    def one(segment: ExpectedSegment) -> SegmentCheck:
        return check_segment(
            s3, bucket, segment, verify_content=verify_content, outcome=outcomes.get(segment.ident)
        )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        checks = list(pool.map(one, segments))
    return Reconciliation(checks)


def outcomes_from_summaries(summaries: Iterable[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Collect per-segment outcomes from download summaries (XCom values; ``None`` for skipped tasks).

    A summary lists non-archived segments under ``not_archived`` (``problems``/``failures`` also read) as
    dicts with ``dialog_id``, ``segment_id``, ``outcome`` and ``reason``; anything else is ignored.
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for summary in summaries:
        if not isinstance(summary, Mapping):
            continue
        for name in ("not_archived", "problems", "failures"):
            items = summary.get(name)
            for item in items if isinstance(items, list) else ():
                if isinstance(item, Mapping) and item.get("dialog_id") and item.get("segment_id"):
                    found[(str(item["dialog_id"]), str(item["segment_id"]))] = dict(item)
    return found


def summary_counts(summaries: Iterable[Any]) -> dict[str, int]:
    """Add up download summaries (mapped XComs; ``None`` skipped): per-outcome counts and byte totals."""
    total: Counter[str] = Counter()
    for summary in summaries:
        if not isinstance(summary, Mapping):
            continue
        counts = summary.get("counts", summary)
        top = {
            name: summary.get(name) for name in ("bytes_archived", "bytes_downloaded", "retryable_failures")
        }
        for name, value in [*(counts.items() if isinstance(counts, Mapping) else ()), *top.items()]:
            if isinstance(value, int) and not isinstance(value, bool):
                total[str(name)] += value
    return dict(sorted(total.items()))


@dataclass
class RescanResult:
    """What the late-arrival rescan of an earlier window found."""

    window: Window
    manifest_key: str | None
    listed: int
    late: list[SegmentCheck]

    def as_dict(self) -> dict[str, Any]:
        archived = [check for check in self.late if check.archived]
        return {
            "window": self.window.as_dict(),
            "manifest_key": self.manifest_key,
            "listed": self.listed,
            "late": len(self.late),
            "late_archived": len(archived),
            "late_bytes": sum(check.size or 0 for check in archived),
            "late_segments": [_check_dict(check) for check in self.late],
        }


def _check_dict(check: SegmentCheck) -> dict[str, Any]:
    data = {item.name: getattr(check, item.name) for item in fields(check) if item.name != "verdict"}
    return {name: value for name, value in data.items() if value not in (None, "")}


def build_report(
    *,
    window: Window,
    sub_account_id: str,
    bucket: str,
    manifest_key: str,
    key: str,
    reconciliation: Reconciliation,
    download_counts: Mapping[str, int] | None = None,
    rescan: RescanResult | None = None,
    run: Mapping[str, Any] | None = None,
    verify_content: bool = False,
    extra_counts: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Assemble the completeness report of a window (a JSON-serialisable dict)."""
    counts = {**reconciliation.counts(), **dict(extra_counts or {})}
    if rescan is not None:
        counts["late_found"] = len(rescan.late)
        counts["late_archived"] = sum(1 for check in rescan.late if check.archived)
    late_missing = [check for check in (rescan.late if rescan else []) if not check.archived]
    return {
        "report_version": REPORT_VERSION,
        "generated_at": iso(datetime.now(timezone.utc)),
        "provider_version": __version__,
        "run": dict(run or {}),
        "sub_account_id": sub_account_id,
        "window": window.as_dict(),
        "bucket": bucket,
        "manifest_key": manifest_key,
        "report_key": key,
        "verification": "content" if verify_content else "sidecar+checksum",
        "complete": not reconciliation.not_archived and not late_missing,
        "counts": counts,
        "download_outcomes": dict(download_counts or {}),
        "not_archived": [_check_dict(check) for check in reconciliation.not_archived],
        "rescan": rescan.as_dict() if rescan is not None else None,
    }


def write_report(
    s3: S3Client,
    bucket: str,
    key: str,
    report: Mapping[str, Any],
    *,
    options: S3WriteOptions | None = None,
    window_end: datetime | None = None,
) -> None:
    """PUT the report (with a SHA-256 checksum, which Object Lock buckets require).

    :param options: the run's compliance options: the report holds vendor rows (unparseable ones, ids), so
        it gets the recordings' encryption, storage class and tags; with Object Lock it is retained until
        ``window_end`` + the retention days. A re-run PUTs a new version (see
        :mod:`airflow_provider_ringcx.s3.options`).
    """
    body = jsonutil.dumps(report, indent=2, sort_keys=True).encode()  # standard JSON: NaN refused
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
        **(options or S3WriteOptions()).extra_args(segment_end=window_end),
    )


def xcom_counts(report: Mapping[str, Any]) -> dict[str, Any]:
    """The compact XCom value and Asset-event extra of a report: counts, where it lies, completeness."""
    counts = {name: value for name, value in report["counts"].items() if not isinstance(value, Mapping)}
    return {
        **counts,
        "complete": report["complete"],
        "window": report["window"]["key"],
        "sub_account_id": report["sub_account_id"],
        "bucket": report["bucket"],
        "report_key": report["report_key"],
    }


def late_segments(
    original: Sequence[ExpectedSegment], rescanned: Sequence[ExpectedSegment]
) -> list[ExpectedSegment]:
    """Segments the rescan listed that the window's original manifest did not expect."""
    known = {segment.ident for segment in original}
    return [segment for segment in rescanned if segment.ident not in known]
