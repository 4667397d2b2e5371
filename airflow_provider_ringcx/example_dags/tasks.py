"""The bodies of the archive DAGs' small tasks, as plain functions (testable without Airflow).

:mod:`~airflow_provider_ringcx.example_dags.factory` wires them with the provider's operators:

    resolve_run -> fetch_metadata_window -> plan_downloads -> download_segments[batch i/N]
    resolve_run -> rescan_enabled -> fetch_rescan_window -> plan_late_downloads -> download_late_segments
    all of them -> report_window (RingCXWindowReportOperator, trigger rule all_done)

``resolve_run`` returns the run's :class:`~airflow_provider_ringcx.example_dags.runplan.RunPlan`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.example_dags.runplan import RunPlan
from airflow_provider_ringcx.hooks.summaries import parse_summary_kinds
from airflow_provider_ringcx.models import SegmentRef
from airflow_provider_ringcx.rungrid import check_data_interval
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.s3.writeonce import http_status
from airflow_provider_ringcx.transfers.landing import LandingConfig, segment_keys
from airflow_provider_ringcx.transfers.manifest import MAX_BATCHES
from airflow_provider_ringcx.transfers.manifest_format import as_ref, is_recorded
from airflow_provider_ringcx.transfers.manifest_integrity import ALLOW_UNVERIFIED, check_identity, iter_lines
from airflow_provider_ringcx.transfers.manifest_reader import is_manifest_batch, iter_refs
from airflow_provider_ringcx.transfers.transcripts import has_transcript
from airflow_provider_ringcx.transfers.verdict_reads import head_object
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
    "include_transcripts": "include_transcripts",
    "include_summaries": "include_summaries",
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
    dag_id: str | None = None,
) -> RunPlan:
    """Add the run's window, keys and rescan decision to resolved settings (one small XCom per key).

    The rescan runs only when the earlier window was archived (its manifest exists): a window before the
    DAG's start, or never run, is the job of a backfill, not of the late-arrival rescan.

    :param timetable: the DAG's timetable: a data interval off its grid is refused (see
        :mod:`airflow_provider_ringcx.rungrid`).
    :param run_after: the run's ``run_after``, for the suggestion given to a run without a data interval.
    :param dag_id: the DAG's id, for the backfill command an off-grid run is told to use.
    :raises RingCXConfigError: no data interval, an off-grid one, or a bad setting (not retried).
    """
    check_data_interval(
        timetable,
        data_interval_start,
        data_interval_end,
        lag=parse_lag(settings.get("lag_minutes", 15)),  # for the message; validated again below
        dag_id=dag_id or "<dag_id>",
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
    run: dict[str, Any] = dict(settings)
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
    lookback = timedelta(minutes=int(settings["rescan_lookback_minutes"]))
    earlier = rescan_window(window, lookback)
    if earlier is not None:
        original = keys.manifest_key(prefix, sub_account_id, earlier.start, earlier.end)
        run.update(
            rescan_start=earlier.as_dict()["start"],
            rescan_end=earlier.as_dict()["end"],
            rescan_original_manifest_key=original,
            rescan_manifest_key=keys.rescan_manifest_key(
                prefix, sub_account_id, earlier.start, earlier.end, by_start=window.start, by_end=window.end
            ),
        )
        run["rescan"], run["rescan_note"] = _rescan_decision(
            s3, bucket, original, earlier, lookback + lag, force=bool(settings.get("rescan_final_windows"))
        )
    return cast(RunPlan, run)


def _rescan_decision(
    s3: Any, bucket: str, original_key: str, earlier: Window, settle: timedelta, *, force: bool = False
) -> tuple[bool, str]:
    """Whether re-listing ``earlier`` can find anything: ``(rescan, the run's rescan_note)``.

    The rescan exists for recordings that appear in the metadata after a window was first listed, within
    the look-back. It cannot find anything when the window was never archived (a backfill's job), nor when
    its first listing was already ``look-back + lag`` or more after its end, as late as this rescan would
    be on schedule: the window was final when it was listed (a backfill of old history, whose every
    earlier window the same backfill listed late). Its manifest's ``LastModified`` is that listing's time.
    A window listed on time keeps its rescan however late this run is (a catch-up after an outage, a
    backfill over windows the live DAG archived): nothing else would find its late arrivals.
    """
    listed = first_listed(s3, bucket, original_key)
    if listed is None:
        return False, f"skipped: window {earlier.key} was never archived (no manifest)"
    if listed >= earlier.end + settle:
        if force:
            return True, f"rescanning {earlier.key}, final but rescan_final_windows is set"
        return False, (
            f"skipped: window {earlier.key} is final, first listed {listed - earlier.end} after its end "
            f"(look-back + lag = {settle}), so a rescan cannot find what that listing missed; set "
            "rescan_final_windows to rescan it anyway"
        )
    return True, f"rescanning {earlier.key} for late arrivals"


def first_listed(s3: Any, bucket: str, key: str) -> datetime | None:
    """When the manifest at ``key`` was written (its ``LastModified``, one HEAD), or ``None`` if absent."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as err:
        if http_status(err) == 404:
            return None
        raise
    return cast(datetime, head["LastModified"])


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


def plan_late_downloads(
    s3: Any, run: Mapping[str, Any], *, rescan_identity: Mapping[str, Any] | None = None
) -> list[dict]:
    """Batches of the segments the rescan's manifest lists and the earlier window's original one does not,
    and, with ``include_transcripts`` or ``include_summaries``, of the listed segments whose transcript or an
    asked AI summary is not archived yet (a HEAD of each of their keys, for those with ``hasTranscript``: a
    transcript or summary RingCX answered 404 for is retried here, once per window; their recordings are
    ``already_archived``, nothing is downloaded again).

    Both manifests are streamed: the ids of the original and the late refs are kept. The batch size grows
    so that there are never more than ``MAX_BATCHES`` batches (Airflow's map-length cap).

    :param rescan_identity: the rescan manifest as ``fetch_rescan_window`` wrote it (its XCom
        ``manifest``): the manifest is read pinned and hashed, and refused if it is not those bytes; without
        it the planning fails unless ``allow_unverified_manifest`` is set.
    :raises ManifestIntegrityError: the rescan manifest is not the one written, or cannot be verified.
    """
    bucket = run["bucket"]
    check_identity(
        s3, bucket, run["rescan_manifest_key"], rescan_identity,
        what=f"the rescan of window {run['rescan_start']} - {run['rescan_end']}",
        task_id="fetch_rescan_window", allow_unverified=bool(run.get(ALLOW_UNVERIFIED)),
    )  # fmt: skip
    known = {
        (ref["dialog_id"], ref["segment_id"])
        for ref in iter_refs(s3, bucket, run["rescan_original_manifest_key"])
    }
    late = []
    for line in iter_lines(s3, bucket, run["rescan_manifest_key"], rescan_identity):
        ref = as_ref(line["ref"]) if is_recorded(line) else None
        if ref is not None and (
            (ref["dialog_id"], ref["segment_id"]) not in known
            or documents_missing(s3, run, ref, line.get("row"))
        ):
            late.append(ref)
    size = max(int(run["batch_size"]), math.ceil(len(late) / MAX_BATCHES))
    regrouped = [late[i : i + size] for i in range(0, len(late), size)]
    return download_kwargs(run, regrouped, run["rescan_manifest_key"])


def documents_missing(
    s3: Any, run: Mapping[str, Any], ref: SegmentRef, row: Mapping[str, Any] | None
) -> bool:
    """Whether a segment with ``hasTranscript`` lacks its transcript (``include_transcripts``) or one of the
    asked AI summaries (``include_summaries``): a HEAD of each key, up to the first one missing."""
    kinds = parse_summary_kinds(run.get("include_summaries"))
    if not has_transcript(row) or not (run.get("include_transcripts") or kinds):
        return False
    config = LandingConfig(
        bucket=run["bucket"],
        sub_account_id=str(run["sub_account_id"]),
        prefix=run["prefix"],
        key_template=run.get("key_template") or keys.DEFAULT_KEY_TEMPLATE,
    )
    wav = segment_keys(ref, config)[0]
    wanted = [keys.transcript_key(wav)] if run.get("include_transcripts") else []
    wanted += [keys.summary_key(wav, kind) for kind in kinds]
    return any(head_object(s3, run["bucket"], key) is None for key in wanted)


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


def lookup(getter: Callable[[str], Any]) -> Callable[[str], str | None]:
    """Wrap ``Variable.get``-like getters so that a missing Variable reads as ``None``."""

    def get(name: str) -> str | None:
        try:
            value = getter(name)
        except KeyError:
            return None
        return None if value is None else str(value)

    return get
