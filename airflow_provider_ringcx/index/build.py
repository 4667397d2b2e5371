"""A window's index rows: its manifest's segments joined with the report's verdicts, merged into the index.

The window report (:func:`airflow_provider_ringcx.window_report.report_window`) calls :func:`index_window`
after it has written the report, so every path that writes a report updates the index: the live and
history DAGs' report tasks, the late-arrival rescan (the late segments of the earlier window, from the
rescan's manifest) and the audit DAG's repairs. A re-run of a window writes the same rows again.

Every segment line of the manifest becomes a row, recordings or not (``outcome`` ``no_recording`` when
RingCX holds none); rows that could not be parsed have no usable ids and stay in the window report's
``unparseable_rows``. The archive facts come from the report's verdict on the segment
(:class:`~airflow_provider_ringcx.report.SegmentCheck`: status, reason, size, the sidecar's SHA-256, the
version id and Object Lock state from the same HEAD), the pause evidence from
:func:`~airflow_provider_ringcx.pauses.compute_pause_evidence` over the row's ``segmentEvents``, as the
sidecar has it. The manifest is read a second time for this, pinned to the identity the metadata task
recorded (one more GET per window).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.index.format import ARCHIVED, NO_RECORDING, index_row
from airflow_provider_ringcx.index.store import DayWrite, merge_rows
from airflow_provider_ringcx.pauses import compute_pause_evidence
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.transfers.manifest_format import SEGMENT
from airflow_provider_ringcx.transfers.manifest_integrity import iter_lines
from airflow_provider_ringcx.transfers.verdict_reads import head_object
from airflow_provider_ringcx.windows import Window

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from airflow_provider_ringcx.report import SegmentCheck

_NO_RECORDING_REASON = "hasRecording is false: RingCX holds no recording of this segment"
_NOT_CHECKED = "no verdict: the window report did not reconcile this segment (re-run the window's report)"


def archive_facts(
    check: SegmentCheck | None, has_recording: bool, present: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The archive columns of one segment, from the report's verdict on it.

    :param present: the document keys S3 holds (:func:`documents_present`): a document the sidecar names
        gets its column only once it is archived (a pending transcript has none yet).
    """
    if not has_recording:
        return {"outcome": NO_RECORDING, "reason": _NO_RECORDING_REASON}
    if check is None:
        return {"outcome": "unverifiable", "reason": _NOT_CHECKED}
    facts: dict[str, Any] = {
        "outcome": check.status,
        "reason": check.reason or None,
        "s3_key": check.key,
        "sidecar_key": keys.sidecar_key(check.key),
    }
    verdict = check.verdict
    if check.status == ARCHIVED:
        facts.update(sha256=check.sha256, size_bytes=check.size)
        if verdict is not None:
            facts["version_id"] = verdict.version_id
            facts.update(verdict.lock or {})
            documents = {name: key for name, key in (verdict.documents or {}).items() if key in present}
            facts["transcript_key"] = documents.pop("transcript", None)
            facts["summary_keys"] = sorted(documents.values()) or None
    return facts


def documents_present(client: S3Client, bucket: str, checks: Iterable[SegmentCheck]) -> frozenset[str]:
    """The keys, among the documents the archived segments' sidecars name, that S3 holds: one HEAD each,
    only for recordings archived with transcripts or summaries asked (none otherwise)."""
    wanted = [
        key
        for check in checks
        if check.status == ARCHIVED and check.verdict is not None
        for key in (check.verdict.documents or {}).values()
    ]
    return frozenset(key for key in wanted if head_object(client, bucket, key) is not None)


def manifest_rows(
    client: S3Client,
    bucket: str,
    *,
    sub_account_id: str,
    manifest_key: str,
    identity: Mapping[str, Any] | None,
    checks: Mapping[tuple[str, str], SegmentCheck],
    where: Mapping[str, str | None],
    only: set[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """The index rows of a manifest's segment lines (those in ``only``, when given), with one HEAD per
    document the archived recordings' sidecars name (:func:`documents_present`).

    :param identity: the manifest's identity: the read is pinned and verified as the report's was.
    :param checks: the report's verdicts, by ``(dialog_id, segment_id)``.
    :param where: ``archive_window``, ``manifest_key`` and ``report_key`` of the rows.
    """
    lines = iter_lines(client, bucket, manifest_key, identity)
    present = documents_present(client, bucket, checks.values())
    return rows_of_lines(
        lines, sub_account_id=sub_account_id, checks=checks, where=where, only=only, present=present
    )


def rows_of_lines(
    lines: Iterable[Mapping[str, Any]],
    *,
    sub_account_id: str,
    checks: Mapping[tuple[str, str], SegmentCheck],
    where: Mapping[str, str | None],
    only: set[tuple[str, str]] | None = None,
    present: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """The index rows of manifest lines (see :func:`manifest_rows`; ``present`` as in
    :func:`archive_facts`)."""
    rows = []
    for line in lines:
        if line.get("kind") != SEGMENT or not isinstance(line.get("ref"), Mapping):
            continue
        ref = line["ref"]
        ident = (str(ref["dialog_id"]), str(ref["segment_id"]))
        if only is not None and ident not in only:
            continue
        raw = line.get("row")
        vendor: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        has_recording = bool(line.get("has_recording"))
        rows.append(
            index_row(
                sub_account_id=sub_account_id,
                ref=ref,
                row=vendor,
                has_recording=has_recording,
                archive=archive_facts(checks.get(ident), has_recording, present),
                pauses=compute_pause_evidence(vendor.get("segmentEvents"), has_recording=has_recording),
                where=where,
            )
        )
    return rows


def _by_ident(checks: Iterable[SegmentCheck]) -> dict[tuple[str, str], SegmentCheck]:
    return {(check.dialog_id, check.segment_id): check for check in checks}


def index_window(
    client: S3Client,
    run: Mapping[str, Any],
    *,
    window: Window,
    checks: Iterable[SegmentCheck],
    manifest_identity: Mapping[str, Any] | None,
    late: tuple[Window, Iterable[SegmentCheck]] | None = None,
    rescan_identity: Mapping[str, Any] | None = None,
) -> list[DayWrite]:
    """Merge one window's rows (and a rescan's late segments) into the index; what was written.

    :param run: the report's spec (bucket, prefix, sub-account, the manifest and report keys, the
        compliance options).
    :param late: the rescanned earlier window and the verdicts on its late segments.
    """
    bucket, sub = run["bucket"], str(run["sub_account_id"])
    rows = manifest_rows(
        client, bucket, sub_account_id=sub, manifest_key=run["manifest_key"], identity=manifest_identity,
        checks=_by_ident(checks),
        where={"archive_window": window.key, "manifest_key": run["manifest_key"],
               "report_key": run["report_key"]},
    )  # fmt: skip
    if late is not None:
        earlier, late_checks = late
        found = _by_ident(late_checks)
        if found:
            rows += manifest_rows(
                client, bucket, sub_account_id=sub, manifest_key=run["rescan_manifest_key"],
                identity=rescan_identity, checks=found, only=set(found),
                where={"archive_window": earlier.key, "manifest_key": run["rescan_manifest_key"],
                       "report_key": run["report_key"]},
            )  # fmt: skip
    return merge_rows(
        client, bucket, run.get("prefix"), sub, rows,
        fallback_day=window.start.date(), options=S3WriteOptions.from_settings(run),
    )  # fmt: skip
