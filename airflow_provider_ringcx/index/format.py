"""The archive index format, ``ringcx-index/1``: one row per segment, its columns, how a day is stored.

This module is the one place that knows the row schema: the builder
(:mod:`~airflow_provider_ringcx.index.build`) makes rows only through :func:`index_row`, the writer and
the reader (:mod:`~airflow_provider_ringcx.index.store`) encode and decode a day only through
:func:`encode_day` / :func:`decode_day`, and the Athena DDL and DuckDB's column list
(:mod:`~airflow_provider_ringcx.index.sql`) are generated from :data:`COLUMNS`, so a query engine's table
and the rows cannot drift apart.

**Storage.** One object per sub-account and UTC day (:func:`~airflow_provider_ringcx.keys.index_key`):
``{prefix}/_index/sub_account={id}/date=YYYY-MM-DD/segments.jsonl.gz``, gzip-compressed JSON Lines, one
standard-JSON object per line with every column of :data:`COLUMNS` (``null`` when unknown). Hive-style
partitions, so Athena (partition projection), DuckDB (``hive_partitioning``) and Spark read it as a table.
Gzip JSON Lines needs no new dependency to write and every engine reads it; a day of 40,000 segments is
a few MB. The bytes of a day are a function of its rows only (sorted, ``mtime=0`` in the gzip header):
a rebuild from the same manifests writes the same object.

**The day of a row** (:func:`row_day`) is the UTC date of the segment's *end*, else its start: RingCX
lists segments by their end time, so every archive window's rows fall in the day(s) the window covers
and a rebuild of day ``D`` reads only the windows that overlap ``D``. A segment that starts before
midnight and ends after it is in the later day; its ``start_time`` says so.

**Vendor text** is kept readable and bounded: a non-string scalar (a numeric id) becomes its text, an
object or array its compact JSON; a value over :data:`MAX_TEXT` characters is cut (the column is named in
``truncated_fields``; the whole value stays in the manifest and the sidecar); a lone UTF-16 surrogate
becomes U+FFFD, so every line is valid UTF-8 JSON that any reader accepts.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from airflow_provider_ringcx import jsonutil
from airflow_provider_ringcx.exceptions import RingCXError
from airflow_provider_ringcx.models import parse_timestamp, printable

INDEX_FORMAT = "ringcx-index/1"
INDEX_CONTENT_TYPE = "application/x-ndjson"
INDEX_CONTENT_ENCODING = "gzip"
#: Longest vendor text kept in a column (characters); longer values are cut and named in truncated_fields.
MAX_TEXT = 1000
#: The largest day object a reader inflates (bytes, decompressed): far above a busy day (~40 MB).
MAX_DAY_BYTES = 1024 * 1024 * 1024

_INTERVALS = "array<struct<start_time:string,end_time:string>>"

#: Every column: ``(name, Athena/Hive type, meaning)``. The order is the table's column order.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("sub_account_id", "string", "RingCX sub-account, as the vendor sent it"),
    ("dialog_id", "string", "dialogId: the conversation"),
    ("segment_id", "string", "segmentId: one participant's leg; with dialog_id, the segment's identity"),
    ("interaction_id", "string", "interactionId (UII; uii in the v2 draft): links a call's segments"),
    ("channel_id", "string", "channelId (for voice: the dialed number)"),
    ("channel_type", "string", "channelType: VOICE, SMS, EMAIL, ..."),
    ("channel_class", "string", "channelClass: VOICE or DIGITAL"),
    ("segment_type", "string", "segmentType: AGENT, BOT or IVR"),
    ("direction", "string", "dialogOrigination (interactionDirection, legacy): INBOUND or OUTBOUND"),
    ("channel_endpoint_address", "string", "channelEndpointAddress: the ANI, who initiated"),
    ("contact_endpoint_address", "string", "contactEndpointAddress: the DNIS, who received"),
    ("start_time", "string", "segment start, ISO-8601 UTC (2026-03-02T14:01:40Z)"),
    ("end_time", "string", "segment end, ISO-8601 UTC; its date is the row's date partition"),
    ("duration_ms", "bigint", "segmentDurationMs"),
    ("agent_id", "string", "segmentParticipantId (segmentAgentId legacy, agentId v2): RingCX agent id"),
    ("agent_rc_extension_id", "string", "segmentParticipantRcExtensionId: RingCentral extension id"),
    ("agent_group_id", "string", "segmentAgentGroupId"),
    ("queue_id", "string", "queueId or gateId when the deployment sends one (the v1 API has none)"),
    ("system_disposition", "string", "systemDisposition: ANSWER, ABANDON, BUSY, MACHINE, ..."),
    ("agent_disposition", "string", "agentDisposition, as entered by the agent"),
    ("has_recording", "boolean", "hasRecording (null/unknown counts as true, as the archive does)"),
    ("has_transcript", "boolean", "hasTranscript; null when the row does not say"),
    ("outcome", "string", "archived, no_recording, or why not archived (forbidden, missing, ...)"),
    ("reason", "string", "why not archived, in words (null when archived)"),
    ("s3_key", "string", "the recording's key (null without a recording)"),
    ("sidecar_key", "string", "its sidecar's key"),
    ("version_id", "string", "the recording's S3 version id (null in an unversioned bucket)"),
    ("sha256", "string", "hex SHA-256 of the recording, as its sidecar records it"),
    ("size_bytes", "bigint", "the recording's size"),
    ("object_lock_mode", "string", "GOVERNANCE or COMPLIANCE, as S3 answered when indexed"),
    ("retain_until", "string", "Object Lock retain-until, ISO-8601 UTC"),
    ("legal_hold", "boolean", "Object Lock legal hold ON when indexed"),
    ("transcript_key", "string", "the transcript's key beside the audio (null when none is archived)"),
    ("summary_keys", "array<string>", "the AI summaries' keys beside the audio (.summary.agent/auto.json)"),
    ("pause_rule", "string", "the rule the pause intervals were computed by (pauses.RULE)"),
    ("recorded_intervals", _INTERVALS, "REC_START..REC_STOP intervals from segmentEvents"),
    ("pause_intervals", _INTERVALS, "REC_STOP..REC_START gaps: when the recording was paused"),
    ("pause_problems", "array<string>", "departures of segmentEvents from the documented shape"),
    ("truncated_fields", "array<string>", f"columns whose vendor text was cut at {MAX_TEXT} characters"),
    ("archive_window", "string", "the archive window that listed the segment (20260302T1400Z_...)"),
    ("manifest_key", "string", "the manifest that listed it"),
    ("report_key", "string", "the window report that judged it"),
)
COLUMN_NAMES = tuple(name for name, _type, _doc in COLUMNS)

#: Vendor field names read for each text column, first non-null wins (v1 spelling first).
VENDOR_FIELDS: dict[str, tuple[str, ...]] = {
    "interaction_id": ("interactionId", "uii"),
    "channel_id": ("channelId",),
    "channel_type": ("channelType",),
    "channel_class": ("channelClass",),
    "segment_type": ("segmentType",),
    "direction": ("dialogOrigination", "interactionDirection", "callType"),
    "channel_endpoint_address": ("channelEndpointAddress", "interactionCallingAddress", "ani"),
    "contact_endpoint_address": ("contactEndpointAddress", "interactionCalledAddress", "dnis"),
    "agent_id": ("segmentParticipantId", "segmentAgentId", "agentId"),
    "agent_rc_extension_id": ("segmentParticipantRcExtensionId",),
    "agent_group_id": ("segmentAgentGroupId",),
    "queue_id": ("queueId", "gateId"),
    "system_disposition": ("systemDisposition",),
    "agent_disposition": ("agentDisposition",),
}

NO_RECORDING = "no_recording"
ARCHIVED = "archived"


class IndexCorruptError(RingCXError):
    """A stored index object cannot be read as ``ringcx-index/1`` (truncated, not gzip, not JSON Lines).
    Not retryable: the same bytes would be read again; the message says how to rebuild it."""


def rebuild_hint(key: str) -> str:
    """How to regenerate the day of ``key`` (from the manifests, reports and S3; nothing is lost)."""
    return (
        "The index is derived data: rebuild the day from its manifests with `python -m "
        "airflow_provider_ringcx index rebuild --bucket BUCKET --prefix PREFIX --sub-account ID --day "
        f"YYYY-MM-DD` (the day is in the key: {printable(key)})"
    )


def text(value: Any, column: str, truncated: list[str]) -> str | None:
    """A vendor value as a bounded, valid-UTF-8 string for one text column (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, str):
        out = value
    elif isinstance(value, (bool, int, float)):
        out = jsonutil.dumps(value)
    else:
        out = jsonutil.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    if not _utf8(out):
        out = "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in out)
    if len(out) > MAX_TEXT:
        truncated.append(column)
        out = out[:MAX_TEXT]
    return out


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def flag(value: Any) -> bool | None:
    """A vendor boolean: ``true``/``false`` (and their text and 0/1 forms); ``None`` when unknown."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    return None


def index_row(
    *,
    sub_account_id: str,
    ref: Mapping[str, Any],
    row: Mapping[str, Any],
    has_recording: bool,
    archive: Mapping[str, Any],
    pauses: Mapping[str, Any] | None,
    where: Mapping[str, str | None],
) -> dict[str, Any]:
    """One index row: the segment's vendor fields, its archive facts and its pause evidence.

    :param ref: the manifest line's compact ref (``dialog_id``, ``segment_id``, ``start``, ``end``,
        ``duration_ms``: parsed and normalised by :class:`~airflow_provider_ringcx.models.SegmentRecord`).
    :param row: the vendor row as received.
    :param archive: ``outcome``, ``reason``, ``s3_key``, ``sidecar_key``, ``version_id``, ``sha256``,
        ``size_bytes``, ``object_lock_mode``, ``retain_until``, ``legal_hold``, ``transcript_key``,
        ``summary_keys``.
    :param pauses: :func:`~airflow_provider_ringcx.pauses.compute_pause_evidence`'s result, or ``None``.
    :param where: ``archive_window``, ``manifest_key``, ``report_key``.
    """
    truncated: list[str] = []
    out: dict[str, Any] = dict.fromkeys(COLUMN_NAMES)
    out["sub_account_id"] = str(sub_account_id)
    out["dialog_id"], out["segment_id"] = str(ref["dialog_id"]), str(ref["segment_id"])  # whole: identity
    for column, names in VENDOR_FIELDS.items():
        value = next((row.get(name) for name in names if row.get(name) is not None), None)
        out[column] = text(value, column, truncated)
    out["start_time"], out["end_time"] = ref.get("start"), ref.get("end")
    duration = ref.get("duration_ms")
    out["duration_ms"] = duration if isinstance(duration, int) and not isinstance(duration, bool) else None
    out["has_recording"] = bool(has_recording)
    out["has_transcript"] = flag(row.get("hasTranscript"))
    for column in ("outcome", "reason", "s3_key", "sidecar_key", "version_id", "sha256", "object_lock_mode"):
        out[column] = text(archive.get(column), column, truncated) if archive.get(column) else None
    out["size_bytes"] = archive.get("size_bytes")
    out["retain_until"] = archive.get("retain_until")
    out["legal_hold"] = archive.get("legal_hold")
    out["transcript_key"] = archive.get("transcript_key")
    out["summary_keys"] = list(archive["summary_keys"]) if archive.get("summary_keys") else None
    if pauses is not None:
        out["pause_rule"] = pauses.get("rule")
        out["recorded_intervals"] = _intervals(pauses.get("recorded"))
        out["pause_intervals"] = _intervals(pauses.get("paused"))
        out["pause_problems"] = [text(p, "pause_problems", []) for p in pauses.get("problems") or []]
    out["truncated_fields"] = sorted(set(truncated))
    out.update({name: where.get(name) for name in ("archive_window", "manifest_key", "report_key")})
    return out


def _intervals(items: Any) -> list[dict[str, Any]]:
    return [
        {"start_time": item.get("start"), "end_time": item.get("end")}
        for item in items or []
        if isinstance(item, Mapping)
    ]


def row_day(row: Mapping[str, Any], fallback: date) -> date:
    """The UTC day a row is stored under: the date of its end, else of its start, else ``fallback``."""
    for name in ("end_time", "start_time"):
        try:
            moment = parse_timestamp(row.get(name))
        except (ValueError, TypeError, OverflowError, OSError):
            moment = None
        if moment is not None:
            return moment.date()
    return fallback


def identity(row: Mapping[str, Any]) -> tuple[str, str]:
    """A row's identity within its sub-account: ``(dialog_id, segment_id)``."""
    return (str(row.get("dialog_id")), str(row.get("segment_id")))


def _order(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(row.get("end_time") or ""), str(row.get("dialog_id")), str(row.get("segment_id")))


def encode_day(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """A day's rows as the stored bytes: sorted by (end, dialog, segment), one JSON object per line, gzip
    with ``mtime=0``: the same rows always give the same bytes. Lines are pure ASCII (``\\uXXXX`` escapes):
    no reader can split a row at a U+2028 or another line separator inside a vendor value."""
    lines = [
        jsonutil.dumps(
            {name: row.get(name) for name in COLUMN_NAMES}, separators=(",", ":"), ensure_ascii=True
        )
        for row in sorted(rows, key=_order)
    ]
    body = "".join(line + "\n" for line in lines).encode("utf-8")
    return gzip.compress(body, compresslevel=6, mtime=0)


def decode_day(body: bytes, where: str) -> list[dict[str, Any]]:
    """A stored day object's rows.

    :param where: ``s3://bucket/key``, for the message.
    :raises IndexCorruptError: not gzip, truncated, over :data:`MAX_DAY_BYTES`, or a line that is not a
        JSON object with ``dialog_id`` and ``segment_id``; the message names the key and how to rebuild.
    """
    try:
        inflater = zlib.decompressobj(wbits=31)  # gzip only
        text_bytes = inflater.decompress(body, MAX_DAY_BYTES)
        if inflater.unconsumed_tail:
            raise IndexCorruptError(
                f"index object {where} inflates to over {MAX_DAY_BYTES} bytes. " + rebuild_hint(where)
            )
        if not inflater.eof:
            raise IndexCorruptError(
                f"index object {where} is truncated (gzip stream ends early). " + rebuild_hint(where)
            )
    except zlib.error as err:
        raise IndexCorruptError(f"index object {where} is not gzip ({err}). " + rebuild_hint(where)) from None
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text_bytes.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = jsonutil.strict_loads(line)
        except ValueError as err:
            raise IndexCorruptError(
                f"index object {where} line {number} is not JSON ({type(err).__name__}). "
                + rebuild_hint(where)
            ) from None
        if not isinstance(value, dict) or not value.get("dialog_id") or not value.get("segment_id"):
            raise IndexCorruptError(
                f"index object {where} line {number} is not a segment row (no dialog_id/segment_id). "
                + rebuild_hint(where)
            )
        rows.append(value)
    return rows


def merge(existing: Sequence[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``existing`` with every row of ``new`` put in place of the row of the same segment (or added): the
    latest judgement of a segment wins, whichever window listed it."""
    merged = {identity(row): dict(row) for row in existing}
    merged.update({identity(row): dict(row) for row in new})
    return list(merged.values())
