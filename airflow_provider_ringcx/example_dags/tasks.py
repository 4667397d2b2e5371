"""The bodies of the example DAG's small tasks, as plain functions (testable without Airflow).

``dags/ringcx_recordings_to_s3.py`` wires them with the two operators:

    resolve_run -> fetch_metadata_window -> plan_downloads -> download_segments[batch i/N]
    resolve_run -> rescan_enabled -> fetch_rescan_window -> plan_late_downloads -> download_late_segments
    all of them -> report_window (trigger rule all_done)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.example_dags.settings import DAG_ID
from airflow_provider_ringcx.exceptions import RingCXError
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
from airflow_provider_ringcx.rungrid import check_data_interval
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.transfers.landing import LandingConfig, segment_keys
from airflow_provider_ringcx.transfers.manifest import MAX_BATCHES
from airflow_provider_ringcx.transfers.manifest_integrity import iter_verified
from airflow_provider_ringcx.transfers.manifest_reader import (
    ManifestIntegrityError,
    is_manifest_batch,
    iter_manifest,
    iter_refs,
    manifest_exists,
)
from airflow_provider_ringcx.windows import Window, archive_window, batch_label, parse_lag, rescan_window

#: Settings passed to every mapped download task (operator argument -> setting name).
_DOWNLOAD_ARGS = {
    "bucket": "bucket",
    "prefix": "prefix",
    "ringcx_conn_id": "ringcx_conn_id",
    "aws_conn_id": "aws_conn_id",
    "server_side_encryption": "server_side_encryption",
    "kms_key_id": "kms_key_id",
    "storage_class": "storage_class",
    "tags": "tags",
    "object_lock_mode": "object_lock_mode",
    "object_lock_retention_days": "object_lock_retention_days",
    "object_lock_legal_hold": "object_lock_legal_hold",
    "fail_on_forbidden": "fail_on_forbidden",
    "fail_on_missing": "fail_on_missing",
}


def resolve_run(
    settings: dict[str, Any],
    *,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    sub_account_id: str,
    s3: Any,
    timetable: Any = None,
    run_after: datetime | None = None,
    dag_id: str = DAG_ID,
) -> dict[str, Any]:
    """Add the run's window, keys and rescan decision to resolved settings (one small XCom per key).

    The rescan runs only when the earlier window was archived (its manifest exists): a window before the
    DAG's start, or never run, is the job of a backfill, not of the late-arrival rescan.

    :param timetable: the DAG's timetable: a data interval off its grid is refused (see
        :mod:`airflow_provider_ringcx.rungrid`).
    :param run_after: the run's ``run_after``, for the suggestion given to a run without a data interval.
    :raises RingCXConfigError: no data interval, an off-grid one, or a bad setting (not retried).
    """
    check_data_interval(
        timetable,
        data_interval_start,
        data_interval_end,
        lag=parse_lag(settings.get("lag_minutes", 15)),  # for the message; validated again below
        dag_id=dag_id,
        now=run_after,
    )
    assert data_interval_start is not None  # checked above
    assert data_interval_end is not None
    S3WriteOptions.from_settings(settings)  # the run's compliance options, once: every writer uses them
    if settings.get("key_template"):  # a template that can map two segments to one key fails here, once
        keys.validate_key_template(settings["key_template"])
    lag = parse_lag(settings["lag_minutes"])
    window = archive_window(data_interval_start, data_interval_end, lag)
    prefix, bucket = settings["prefix"], settings["bucket"]
    run = dict(settings)
    run.update(
        sub_account_id=sub_account_id,
        window_start=window.as_dict()["start"],
        window_end=window.as_dict()["end"],
        window_key=window.key,
        manifest_key=keys.manifest_key(prefix, sub_account_id, window.start, window.end),
        report_key=keys.report_key(prefix, sub_account_id, window.start, window.end),
        rescan=False,
        rescan_start=None,
        rescan_end=None,
        rescan_manifest_key=None,
        rescan_original_manifest_key=None,
        rescan_note="disabled (rescan_lookback_minutes=0)",
    )
    earlier = rescan_window(window, timedelta(minutes=int(settings["rescan_lookback_minutes"])))
    if earlier is not None:
        original = keys.manifest_key(prefix, sub_account_id, earlier.start, earlier.end)
        run.update(
            rescan_start=earlier.as_dict()["start"],
            rescan_end=earlier.as_dict()["end"],
            rescan_original_manifest_key=original,
            rescan_manifest_key=original[: -len(".jsonl")] + f".rescan-by-{window.key}.jsonl",
        )
        if manifest_exists(s3, bucket, original):
            run.update(rescan=True, rescan_note=f"rescanning {earlier.key} for late arrivals")
        else:
            run["rescan_note"] = f"skipped: window {earlier.key} was never archived (no manifest)"
    return run


def download_kwargs(
    run: Mapping[str, Any],
    batches: Sequence[Mapping[str, Any] | Sequence[Mapping[str, Any]]],
    manifest_key: str,
) -> list[dict]:
    """One ``expand_kwargs`` entry per batch (a descriptor from the metadata task, or a list of refs) plus
    the run's S3 and compliance settings."""
    common = {arg: run[name] for arg, name in _DOWNLOAD_ARGS.items() if run.get(name) is not None}
    if run.get("key_template"):
        common["key_template"] = run["key_template"]
    if not common.get("tags"):
        common.pop("tags", None)
    return [
        {
            "batch": dict(batch) if is_manifest_batch(batch) else list(batch),
            "manifest_key": manifest_key,
            **common,
        }
        for batch in batches or []
    ]


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
        the last
        line if it is not those bytes (so nothing is returned from an edited manifest).
    """
    config = _landing(run)
    expected: list[ExpectedSegment] = []
    stats: dict[str, Any] = {"rows": 0, "no_recording": 0, "unparseable": 0, "unparseable_rows": []}
    lines = iter_verified(s3, run["bucket"], identity) if identity else iter_manifest(s3, run["bucket"], key)
    for line in lines:
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


def plan_late_downloads(s3: Any, run: Mapping[str, Any]) -> list[dict]:
    """Batches of the segments the rescan's manifest lists and the earlier window's original one does not.

    Both manifests are streamed: the ids of the original and the late refs are kept. The batch size grows
    so that there are never more than ``MAX_BATCHES`` batches (Airflow's map-length cap).
    """
    bucket = run["bucket"]
    known = {
        (ref["dialog_id"], ref["segment_id"])
        for ref in iter_refs(s3, bucket, run["rescan_original_manifest_key"])
    }
    late = [
        ref
        for ref in iter_refs(s3, bucket, run["rescan_manifest_key"])
        if (ref["dialog_id"], ref["segment_id"]) not in known
    ]
    size = max(int(run["batch_size"]), math.ceil(len(late) / MAX_BATCHES))
    regrouped = [late[i : i + size] for i in range(0, len(late), size)]
    return download_kwargs(run, regrouped, run["rescan_manifest_key"])


def label_for(ti: Any, task: Any, plan_task_id: str) -> str:
    """``map_index_template`` helper: ``batch 3/12 · 14:15-14:20`` from the batch and the planned count."""
    count = None
    try:
        count = ti.xcom_pull(task_ids=plan_task_id, key="batch_count")
    except Exception:  # the label is cosmetic; never fail a task over it
        count = None
    return batch_label(
        int(ti.map_index), count if isinstance(count, int) else None, getattr(task, "batch", None)
    )


def report_window(
    s3: Any,
    run: Mapping[str, Any],
    *,
    summaries: Iterable[Any],
    late_summaries: Iterable[Any] = (),
    run_info: Mapping[str, Any] | None = None,
    manifest_identity: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Reconcile the window (and the rescan's late segments) against S3, write the report, return it.

    The report is written with the run's compliance options (``S3WriteOptions.from_settings(run)``, the
    same values every other writer of the run uses), retained from the window's end under Object Lock.

    :param manifest_identity: what the metadata task recorded for the window manifest (its XCom
        ``manifest``). The manifest is then verified before it is trusted; without it (that XCom is absent)
        the report says ``"verified": false`` under ``manifest``.
    :raises RingCXError: the window has no manifest (the metadata task failed: see its log).
    :raises ManifestIntegrityError: the manifest is not the one the metadata task wrote (not retryable).
    """
    bucket = run["bucket"]
    window = Window(_when(run["window_start"]), _when(run["window_end"]))
    if not manifest_exists(s3, bucket, run["manifest_key"]):
        raise RingCXError(
            f"window {window.key} has no manifest at s3://{bucket}/{run['manifest_key']}: the metadata task "
            "did not complete - see fetch_metadata_window's log, fix the cause and clear the run"
        )
    summaries, late_summaries = list(summaries), list(late_summaries)
    manifest = check_manifest_identity(s3, bucket, run["manifest_key"], manifest_identity)
    expected, stats = read_manifest(s3, run, run["manifest_key"], identity=manifest_identity)
    outcomes = outcomes_from_summaries([*summaries, *late_summaries])
    verify = bool(run.get("verify_content"))
    result = reconcile(s3, bucket, expected, outcomes=outcomes, verify_content=verify)
    rescan = None
    if run.get("rescan") and manifest_exists(s3, bucket, run["rescan_manifest_key"]):
        original, _ = read_manifest(s3, run, run["rescan_original_manifest_key"])
        listed, _ = read_manifest(s3, run, run["rescan_manifest_key"])
        late = late_segments(original, listed)
        checks = reconcile(s3, bucket, late, outcomes=outcomes, verify_content=verify).checks
        earlier = Window(_when(run["rescan_start"]), _when(run["rescan_end"]))
        rescan = RescanResult(earlier, run["rescan_manifest_key"], listed=len(listed), late=checks)
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
    report["complete"] = not blocking
    report["blocking"] = len(blocking)
    report["manifest"] = manifest
    options = S3WriteOptions.from_settings(run)
    write_report(s3, bucket, run["report_key"], report, options=options, window_end=window.end)
    return report


def check_manifest_identity(
    s3: Any, bucket: str, key: str, identity: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What the report says about the window manifest's integrity (its ``manifest`` section).

    With an identity, it must name ``key``, and in a versioned bucket the current version must still be
    the recorded one: a write-once manifest with a newer version was written over (the pinned read would
    still see the original, but the tampering must not pass silently).

    :raises ManifestIntegrityError: the identity is of another key, or the manifest has a newer version.
    """
    if not identity:
        return {
            "key": key,
            "verified": False,
            "note": "the metadata task's XCom 'manifest' is absent in this run: read without verification",
        }
    if identity.get("key") != key:
        raise ManifestIntegrityError(
            f"the metadata task recorded manifest {identity.get('key')!r}, the report reads {key!r}: clear "
            "the whole run so that both use the same window"
        )
    current = s3.head_object(Bucket=bucket, Key=key).get("VersionId")
    if identity.get("version_id") and current != identity["version_id"]:
        raise ManifestIntegrityError(
            f"manifest s3://{bucket}/{key} now has version {current}, but the metadata task wrote version "
            f"{identity['version_id']} and manifests are write-once: it was written over. Find who wrote it; "
            "restore the original (delete the newer version), or delete the manifest and re-run the window"
        )
    return {**dict(identity), "verified": True}


def _when(value: Any) -> datetime:
    moment = parse_timestamp(value)
    if moment is None:
        raise RingCXError(f"missing window bound {value!r}")
    return moment


def failure_message(report: Mapping[str, Any]) -> str:
    """Why a window is incomplete, naming the first few segments and where the full report lies."""
    items = report["not_archived"][:5]
    sample = "; ".join(
        f"{i['dialog_id']}/{i['segment_id']}: {i['status']} ({i.get('reason', '')})" for i in items
    )
    counts = report["counts"]
    return (
        f"window {report['window']['key']} is incomplete: {counts['archived']} of {counts['expected']} "
        f"expected recordings archived and verified, {counts.get('unparseable', 0)} unparseable rows; "
        f"{sample or 'see the rescan section'}. Full report: s3://{report['bucket']}/{report['report_key']}. "
        "Fix the cause (see README troubleshooting) and clear the failed tasks of this run."
    )


def lookup(getter: Callable[[str], Any]) -> Callable[[str], str | None]:
    """Wrap ``Variable.get``-like getters so that a missing Variable reads as ``None``."""

    def get(name: str) -> str | None:
        try:
            value = getter(name)
        except KeyError:
            return None
        return None if value is None else str(value)

    return get
