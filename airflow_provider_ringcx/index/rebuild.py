"""Regenerate one day of the index from what the archive holds: its manifests, its reports and S3 itself.

The index is derived data. When a day object is lost, corrupted, or was written by an older version, or
when legal holds changed under it, :func:`rebuild_day` writes it again, whole:

1. list the manifests of the windows that start on the day before or on the day (two LISTs) and keep those
   that overlap the day (RingCX lists segments by their end, and a row's day is its end's date, so no
   other window can hold one of the day's rows);
2. for every window manifest, judge each recording by the one verdict, now (a HEAD and a sidecar GET per
   recording, as a report does); a recording that is not in S3 takes the reason its window report gave
   (``forbidden``, ``missing``, ``failed``), read from that report;
3. a rescan manifest (``...rescan-by-...``) adds the late segments its window's own manifest lacks;
4. keep the rows whose day is the day, and write the object in one PUT.

Manifests are read as stored (their writers' identity XComs are not at hand here); they are write-once, and
under Object Lock retained. A rebuild while a window of the same day is being reported may lose that
window's merge: run it again, or re-run that window's report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_provider_ringcx import jsonutil, keys
from airflow_provider_ringcx.index.build import documents_present, rows_of_lines
from airflow_provider_ringcx.index.format import merge, row_day
from airflow_provider_ringcx.index.store import DayWrite, replace_day
from airflow_provider_ringcx.report import ExpectedSegment, reconcile
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.s3.writeonce import http_status
from airflow_provider_ringcx.transfers.landing import LandingConfig, segment_keys
from airflow_provider_ringcx.transfers.manifest_format import is_recorded
from airflow_provider_ringcx.transfers.manifest_integrity import iter_lines

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_RESCAN = ".rescan-by-"


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild read and wrote."""

    write: DayWrite
    manifests: int
    reports: int


@dataclass(frozen=True)
class _Listed:
    key: str
    start: datetime
    end: datetime
    report_key: str
    rescan: bool
    original_key: str | None = None


def _listed(prefix: str | None, sub: str, key: str) -> _Listed | None:
    name = key.rsplit("/window=", 1)[-1]
    if not name.endswith(".jsonl"):
        return None
    name = name[: -len(".jsonl")]
    own, sep, by = name.partition(_RESCAN)
    window = keys.parse_window_part(own)
    if window is None:
        return None
    if not sep:
        return _Listed(key, *window, keys.report_key(prefix, sub, *window), rescan=False)
    rescanner = keys.parse_window_part(by)
    if rescanner is None:
        return None
    original = keys.manifest_key(prefix, sub, *window)
    return _Listed(key, *window, keys.report_key(prefix, sub, *rescanner), rescan=True, original_key=original)


def day_manifests(client: S3Client, bucket: str, prefix: str | None, sub: str, day: date) -> list[_Listed]:
    """The manifests of the windows that overlap ``day`` (UTC), window manifests before their rescans."""
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    found: list[_Listed] = []
    for listed_day in (day - timedelta(days=1), day):
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=keys.manifest_day_prefix(prefix, sub, listed_day)
        )
        for page in pages:
            for item in page.get("Contents", []):
                listed = _listed(prefix, sub, item["Key"])
                if listed is not None and listed.start < end and listed.end > start:
                    found.append(listed)
    return sorted(found, key=lambda item: (item.start, item.end, item.rescan, item.key))


def _report(client: S3Client, bucket: str, key: str) -> Mapping[str, Any] | None:
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if http_status(err) == 404 or err.response.get("Error", {}).get("Code") == "NoSuchKey":
            return None
        raise
    try:
        value = jsonutil.strict_loads(body)
    except ValueError:
        return None  # an unreadable report gives no reasons; the verdicts still stand
    return value if isinstance(value, Mapping) else None


def _outcomes(report: Mapping[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    """The download outcomes a report recorded for segments not in S3, in the verdict's input shape."""
    items = list((report or {}).get("not_archived") or [])
    items += list(((report or {}).get("rescan") or {}).get("late_segments") or [])
    return {
        (str(item.get("dialog_id")), str(item.get("segment_id"))): {
            "outcome": item.get("status"),
            "reason": item.get("reason"),
        }
        for item in items
        if isinstance(item, Mapping)
    }


def rebuild_day(
    client: S3Client,
    bucket: str,
    *,
    prefix: str | None,
    sub_account_id: str,
    day: date,
    key_template: str | None = None,
    options: S3WriteOptions | None = None,
    verify_content: bool = False,
) -> RebuildResult:
    """Write the index object of ``day`` again from the archive (see the module docstring).

    :param key_template: the DAGs' WAV key template (default: the provider's).
    :param options: the archive's write options (encryption, tags) for the index object.
    :param verify_content: re-read and re-hash every recording (slower).
    """
    sub = str(sub_account_id)
    config = LandingConfig(bucket=bucket, sub_account_id=sub, prefix=prefix or "")
    if key_template:
        config = dataclasses.replace(config, key_template=key_template)
    rows: list[dict[str, Any]] = []
    reports: dict[str, Mapping[str, Any] | None] = {}
    listed = day_manifests(client, bucket, prefix, sub, day)
    for item in listed:
        lines = list(iter_lines(client, bucket, item.key, None))
        recorded = [
            line["ref"] for line in lines if is_recorded(line) and isinstance(line.get("ref"), Mapping)
        ]
        only = None
        if item.rescan and item.original_key:
            known = {
                (str(line["ref"]["dialog_id"]), str(line["ref"]["segment_id"]))
                for line in iter_lines(client, bucket, item.original_key, None)
                if line.get("kind") == "segment" and isinstance(line.get("ref"), Mapping)
            }
            recorded = [
                ref for ref in recorded if (str(ref["dialog_id"]), str(ref["segment_id"])) not in known
            ]
            only = {(str(ref["dialog_id"]), str(ref["segment_id"])) for ref in recorded}
        if item.report_key not in reports:
            reports[item.report_key] = _report(client, bucket, item.report_key)
        expected = [
            ExpectedSegment(str(r["dialog_id"]), str(r["segment_id"]), *segment_keys(r, config), sub)
            for r in recorded
        ]
        checks = reconcile(
            client,
            bucket,
            expected,
            outcomes=_outcomes(reports[item.report_key]),
            verify_content=verify_content,
        ).checks
        where = {"archive_window": keys.window_part(item.start, item.end), "manifest_key": item.key,
                 "report_key": item.report_key}  # fmt: skip
        by_ident = {(check.dialog_id, check.segment_id): check for check in checks}
        present = documents_present(client, bucket, checks)
        found = rows_of_lines(
            lines, sub_account_id=sub, checks=by_ident, where=where, only=only, present=present
        )
        rows = merge(rows, [row for row in found if row_day(row, item.start.date()) == day])
    write = replace_day(client, bucket, prefix, sub, day, rows, options=options)
    return RebuildResult(write=write, manifests=len(listed), reports=sum(1 for r in reports.values() if r))
