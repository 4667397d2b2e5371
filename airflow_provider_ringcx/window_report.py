"""The window report: a window's manifest reconciled against S3, written as the report object.

This is the data path of :class:`~airflow_provider_ringcx.operators.report.RingCXWindowReportOperator`,
as plain functions (testable without Airflow): read the window manifest (pinned to the identity the
metadata task recorded, when it is known), judge every expected segment by the one verdict
(:func:`airflow_provider_ringcx.report.reconcile`), add the late arrivals a rescan found, decide
completeness (``allow_unarchived`` statuses aside), write the report with the run's compliance options,
then merge the window's rows into the archive index (:mod:`airflow_provider_ringcx.index`).

A rescan the run plan decided (``rescan``: the earlier window was listed on time) is part of the window's
verdict: when its manifest is absent (the rescan's metadata task failed), the report says why under
``rescan_problem`` and is not complete. A rescan the plan skipped (the earlier window never archived, or
final under the "final window" rule) says why in ``rescan_note``.

What the report needs is :class:`WindowReportSpec`: a plain mapping (the example DAGs' run plan is one),
so that it travels in XCom and a test can write it down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta, timezone
from typing import Any, TypedDict

from airflow_provider_ringcx.exceptions import RingCXError
from airflow_provider_ringcx.index.build import index_window
from airflow_provider_ringcx.models import parse_timestamp
from airflow_provider_ringcx.report import (
    ExpectedSegment,
    RescanResult,
    build_report,
    late_segments,
    outcomes_from_summaries,
    reconcile,
    summary_counts,
    write_report,
)
from airflow_provider_ringcx.runinfo import human_bytes
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.transfers.batch import DOCUMENTS_RELANDED
from airflow_provider_ringcx.transfers.landing import LandingConfig, segment_keys
from airflow_provider_ringcx.transfers.manifest_integrity import ALLOW_UNVERIFIED, check_identity, iter_lines
from airflow_provider_ringcx.transfers.manifest_reader import manifest_exists
from airflow_provider_ringcx.windows import Window

#: XCom key of the report task's one-line summary (:func:`run_note`), which the listener of
#: :mod:`airflow_provider_ringcx.run_notes` copies into the DAG run's note.
RUN_NOTE_XCOM_KEY = "ringcx_run_note"


class WindowReportSpec(TypedDict, total=False):
    """What :func:`report_window` reads: the window, where its manifest and report are, the checks.

    Times are ISO-8601 strings (or aware datetimes). The compliance options
    (:data:`~airflow_provider_ringcx.s3.options.OPTION_NAMES`) are read too, for the report object.
    """

    bucket: str
    prefix: str | None
    key_template: str | None
    sub_account_id: str
    window_start: str
    window_end: str
    manifest_key: str
    report_key: str
    verify_content: bool
    allow_unarchived: list[str]
    allow_unverified_manifest: bool
    rescan: bool
    rescan_start: str | None
    rescan_end: str | None
    rescan_manifest_key: str | None
    rescan_original_manifest_key: str | None
    rescan_note: str | None
    server_side_encryption: str | None
    kms_key_id: str | None
    storage_class: str | None
    tags: dict[str, str]
    object_lock_mode: str | None
    object_lock_retention_days: int | None
    object_lock_legal_hold: bool


def _landing(run: Mapping[str, Any]) -> LandingConfig:
    extra = {"key_template": run["key_template"]} if run.get("key_template") else {}
    return LandingConfig(
        bucket=run["bucket"], sub_account_id=run["sub_account_id"], prefix=run["prefix"], **extra
    )


def read_manifest(
    s3: Any, run: Mapping[str, Any], key: str, *, identity: Mapping[str, Any] | None = None
) -> tuple[list[ExpectedSegment], dict[str, Any]]:
    """Expected segments (rows with a recording) and row statistics of a window manifest.

    :param identity: the manifest as the metadata task wrote it: then it is read pinned and hashed, and
        :class:`~airflow_provider_ringcx.transfers.manifest_reader.ManifestIntegrityError` is raised after
        the last line if it is not those bytes (so nothing is returned from an edited manifest).
    """
    config = _landing(run)
    expected: list[ExpectedSegment] = []
    stats: dict[str, Any] = {"rows": 0, "no_recording": 0, "unparseable": 0, "unparseable_rows": []}
    for line in iter_lines(s3, run["bucket"], key, identity):
        kind = line.get("kind")
        if kind == "segment":
            stats["rows"] += 1
            if not line.get("has_recording"):
                stats["no_recording"] += 1
                continue
            ref = line["ref"]
            wav, sidecar = segment_keys(ref, config)
            ids = (str(ref["dialog_id"]), str(ref["segment_id"]))
            expected.append(ExpectedSegment(*ids, wav, sidecar, sub_account_id=config.sub_account_id))
        elif kind == "invalid":
            stats["rows"] += 1
            stats["unparseable"] += 1
            if len(stats["unparseable_rows"]) < 50:
                stats["unparseable_rows"].append(
                    {
                        "status": "unparseable",
                        "reason": str(line.get("reason"))[:300],
                        "raw": str(line.get("raw"))[:300],
                    }
                )
    return expected, stats


def report_window(
    s3: Any,
    run: Mapping[str, Any],
    *,
    summaries: Iterable[Any],
    late_summaries: Iterable[Any] = (),
    run_info: Mapping[str, Any] | None = None,
    manifest_identity: Mapping[str, Any] | None = None,
    rescan_identity: Mapping[str, Any] | None = None,
    metadata_task_id: str = "fetch_metadata_window",
    rescan_task_id: str = "fetch_rescan_window",
) -> dict[str, Any]:
    """Reconcile the window (and the rescan's late segments) against S3, write the report, return it.

    The report is written with the run's compliance options (``S3WriteOptions.from_settings(run)``, the
    same values every other writer of the run uses), retained from the window's end under Object Lock.

    :param manifest_identity: what the metadata task recorded for the window manifest (its XCom
        ``manifest``). The manifest is verified before it is trusted; without it (that XCom is absent) the
        report fails, unless ``allow_unverified_manifest`` is set: then it says ``"verified": false`` under
        ``manifest``.
    :param rescan_identity: the same for the rescan's manifest (the rescan task's XCom ``manifest``).
    :param metadata_task_id: the task that wrote the window manifest, for the messages.
    :param rescan_task_id: the task that wrote the rescan manifest, for the messages.
    :raises RingCXError: the window has no manifest (the metadata task failed: see its log).
    :raises ManifestIntegrityError: the manifest is not the one the metadata task wrote, or (without
        ``allow_unverified_manifest``) its identity is absent (not retryable).
    """
    bucket = run["bucket"]
    window = Window(_when(run["window_start"]), _when(run["window_end"]))
    if not manifest_exists(s3, bucket, run["manifest_key"]):
        raise RingCXError(
            f"window {window.key} has no manifest at s3://{bucket}/{run['manifest_key']}: the metadata task "
            "did not complete - see fetch_metadata_window's log, fix the cause and clear the run"
        )
    summaries, late_summaries = list(summaries), list(late_summaries)
    unverified_ok = bool(run.get(ALLOW_UNVERIFIED))
    manifest = check_identity(
        s3, bucket, run["manifest_key"], manifest_identity, what=f"window {window.key}",
        task_id=metadata_task_id, allow_unverified=unverified_ok,
    )  # fmt: skip
    expected, stats = read_manifest(s3, run, run["manifest_key"], identity=manifest_identity)
    outcomes = outcomes_from_summaries([*summaries, *late_summaries])
    verify = bool(run.get("verify_content"))
    result = reconcile(s3, bucket, expected, outcomes=outcomes, verify_content=verify)
    rescan, rescan_manifest, rescan_problem = None, None, None
    if run.get("rescan") and not manifest_exists(s3, bucket, run["rescan_manifest_key"]):
        # the run plan said a rescan was due: without its manifest the late arrivals are unknown
        rescan_problem = _no_rescan_manifest(run, bucket, rescan_task_id)
    elif run.get("rescan"):
        earlier = Window(_when(run["rescan_start"]), _when(run["rescan_end"]))
        rescan_manifest = check_identity(
            s3, bucket, run["rescan_manifest_key"], rescan_identity,
            what=f"the rescan of window {earlier.key}",
            task_id=rescan_task_id, allow_unverified=unverified_ok,
        )  # fmt: skip
        original, _ = read_manifest(s3, run, run["rescan_original_manifest_key"])
        listed, _ = read_manifest(s3, run, run["rescan_manifest_key"], identity=rescan_identity)
        late = late_segments(original, listed)
        checks = reconcile(s3, bucket, late, outcomes=outcomes, verify_content=verify).checks
        rescan = RescanResult(earlier, run["rescan_manifest_key"], listed=len(listed), late=checks)
        relanded = relanded_segments(listed, [*summaries, *late_summaries], exclude=late)
        reindexed = reconcile(s3, bucket, relanded, outcomes=outcomes, verify_content=verify).checks
    report = build_report(
        window=window,
        sub_account_id=run["sub_account_id"],
        bucket=bucket,
        manifest_key=run["manifest_key"],
        key=run["report_key"],
        reconciliation=result,
        download_counts=summary_counts([*summaries, *late_summaries]),
        rescan=rescan,
        run=dict(run_info or {}),
        verify_content=verify,
        extra_counts={k: stats[k] for k in ("rows", "no_recording", "unparseable")},
    )
    report["unparseable_rows"] = stats["unparseable_rows"]
    report["rescan_note"] = run.get("rescan_note")
    allowed = set(run.get("allow_unarchived") or [])
    blocking = [item for item in report["not_archived"] if item["status"] not in allowed]
    if rescan is not None:
        blocking += [
            item for item in report["rescan"]["late_segments"] if item["status"] not in ("archived", *allowed)
        ]
    if stats["unparseable"] and "unparseable" not in allowed:
        blocking += stats["unparseable_rows"]
    report["rescan_problem"] = rescan_problem
    report["complete"] = not blocking and rescan_problem is None
    report["blocking"] = len(blocking) + (rescan_problem is not None)
    report["manifest"] = manifest
    if rescan_manifest is not None:
        report["rescan"]["manifest"] = rescan_manifest
    options = S3WriteOptions.from_settings(run)
    write_report(s3, bucket, run["report_key"], report, options=options, window_end=window.end)
    index_window(
        s3, run, window=window, checks=result.checks, manifest_identity=manifest_identity,
        late=(rescan.window, [*rescan.late, *reindexed]) if rescan is not None else None,
        rescan_identity=rescan_identity,
    )  # fmt: skip
    return report


def relanded_segments(
    listed: Iterable[ExpectedSegment], summaries: Iterable[Any], *, exclude: Iterable[ExpectedSegment]
) -> list[ExpectedSegment]:
    """The rescanned window's segments whose transcript or summary the run's downloads landed now (their
    batch summaries' ``documents_relanded``), not already among the late arrivals: not late (the report
    does not list them), but their index rows must now name the documents."""
    wanted = {
        (str(pair[0]), str(pair[1]))
        for summary in summaries
        if isinstance(summary, Mapping)
        for pair in summary.get(DOCUMENTS_RELANDED) or ()
        if isinstance(pair, (list, tuple)) and len(pair) == 2
    }
    skip = {segment.ident for segment in exclude}
    return [segment for segment in listed if segment.ident in wanted and segment.ident not in skip]


def _no_rescan_manifest(run: Mapping[str, Any], bucket: str, task_id: str) -> str:
    earlier = f"{run.get('rescan_start')} - {run.get('rescan_end')}"
    return (
        f"the late-arrival rescan of window {earlier} was due ({run.get('rescan_note')}) but its manifest "
        f"s3://{bucket}/{run.get('rescan_manifest_key')} is absent: {task_id} did not complete; see its log, "
        "fix the cause and clear the run"
    )


def _when(value: Any) -> datetime:
    moment = parse_timestamp(value)
    if moment is None:
        raise RingCXError(f"missing window bound {value!r}")
    return moment


def run_note(report: Mapping[str, Any]) -> str:
    """The report in one line, for the DAG run's note (see :mod:`airflow_provider_ringcx.run_notes`).

    ``14:00-14:15 · 53/53 archived · 16.3 MB``, or with what is not archived, by status:
    ``14:00-14:15 · 51/53 archived · 16.0 MB · 2 not archived (forbidden 1, missing 1)``; late arrivals
    of a rescan and unparseable rows are added when there are any. Times are UTC; a window that does not
    sit within one day shows its dates too. The times are joined by an en dash (U+2013), the parts by `` · ``.
    """
    counts = report.get("counts") or {}
    window = report.get("window") or {}
    parts = [
        _window_label(window.get("start"), window.get("end")),
        f"{counts.get('archived', 0)}/{counts.get('expected', 0)} archived",
    ]
    if counts.get("bytes"):
        parts.append(human_bytes(counts["bytes"]))
    statuses = {k: v for k, v in (counts.get("by_status") or {}).items() if k != "archived" and v}
    missing = counts.get("not_archived", 0)
    if missing:
        detail = ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
        parts.append(f"{missing} not archived" + (f" ({detail})" if detail else ""))
    if counts.get("late_found"):
        parts.append(f"late {counts.get('late_archived', 0)}/{counts['late_found']} archived")
    if counts.get("unparseable"):
        parts.append(f"{counts['unparseable']} unparseable rows")
    return " \u00b7 ".join(parts)


def _window_label(start_text: Any, end_text: Any) -> str:
    start, end = parse_timestamp(start_text), parse_timestamp(end_text)
    if start is None or end is None:
        return f"{start_text}\u2013{end_text}"
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    clock = "%H:%M:%S" if start.second or end.second else "%H:%M"
    same_day = end.date() == start.date() or (end - start <= timedelta(days=1) and end.time() == time(0))
    if same_day and end - start < timedelta(days=1):
        return f"{start.strftime(clock)}\u2013{end.strftime(clock)}"
    return f"{start.strftime('%Y-%m-%d ' + clock)}\u2013{end.strftime('%Y-%m-%d ' + clock)}"


def failure_message(report: Mapping[str, Any]) -> str:
    """Why a window is incomplete, naming the first few segments and where the full report lies."""
    items = report["not_archived"][:5]
    sample = "; ".join(
        f"{i['dialog_id']}/{i['segment_id']}: {i['status']} ({i.get('reason', '')})" for i in items
    )
    counts = report["counts"]
    sample = sample or report.get("rescan_problem") or "see the rescan section"
    return (
        f"window {report['window']['key']} is incomplete: {counts['archived']} of {counts['expected']} "
        f"expected recordings archived and verified, {counts.get('unparseable', 0)} unparseable rows; "
        f"{sample}. Full report: s3://{report['bucket']}/{report['report_key']}. "
        "Fix the cause (see docs/operations.md, Troubleshooting) and clear the failed tasks of this run."
    )
