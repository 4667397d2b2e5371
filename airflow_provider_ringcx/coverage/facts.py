"""What the ledger keeps of one window report: its listing identity, window, completeness and counts.

A report (:func:`airflow_provider_ringcx.report.build_report`) can hold thousands of not-archived
segments; the ledger keeps a :class:`ReportFact` of it: the key, the listing's ETag and LastModified (how
a rewritten report is noticed without reading it again), the window, ``complete``, the counts and a few
reasons. A day's rollup stores the facts of the reports listed that day, so a refresh GETs only the reports
whose ETag or LastModified changed.

A report that cannot be read (not strict JSON, too large, another sub-account's, a window that does not
match its key) becomes an *incomplete* fact whose reason says so: it is never trusted as complete. Nor is a
report that says complete only because the report task's ``allow_unarchived`` waived segments (or
unparseable rows, or late arrivals) that are not archived: its counts show them, so the fact is incomplete
and its first reason is :data:`WAIVED_REASON` (``waived: ...``). The waiver keeps the live DAG green; the
ledger, the audit and the archive view still show the window as not archived. The same holds for a report
read from an unverified manifest (``allow_unverified_manifest``).

Reasons are cut to :data:`MAX_REASON` characters, at most :data:`MAX_REASONS` per report, and scrubbed of
credentials (any URL's query, ``token=``-like values): a rollup holds no credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_ringcx import jsonutil, keys
from airflow_provider_ringcx.coverage.grid import iso, span_label
from airflow_provider_ringcx.scrub import scrub
from airflow_provider_ringcx.windows import Window

MAX_REASONS = 5
MAX_REASON = 240
#: A report larger than this is not read (the report task writes well under it even for 10,000 segments).
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: The first reason of a report that is complete only by ``allow_unarchived`` (it starts with ``waived``).
WAIVED_REASON = "waived: the report says complete only because allow_unarchived allowed what is not archived"


class FactError(ValueError):
    """A stored fact (in a rollup) is not what the ledger writes."""


def clean_reason(text: Any) -> str:
    """A reason safe to store: text scrubbed of credentials (:func:`~airflow_provider_ringcx.scrub.scrub`:
    any URL's query and userinfo, ``token=``-like values, bearer tokens), at most :data:`MAX_REASON`
    characters."""
    value = scrub(str(text))
    return value if len(value) <= MAX_REASON else value[: MAX_REASON - 1] + "…"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


@dataclass(frozen=True)
class ReportFact:
    """One report as the ledger sees it.

    :param key: the report's S3 key.
    :param etag: the ETag the listing (or the GET) gave; with ``last_modified``, what tells a rewrite.
    :param last_modified: ISO-8601 UTC.
    :param start: the window start (from the key, checked against the body).
    :param end: the window end.
    :param complete: the report's ``complete`` (``False`` for an unreadable report).
    """

    key: str
    etag: str
    last_modified: str
    start: datetime
    end: datetime
    complete: bool
    expected: int = 0
    archived: int = 0
    not_archived: int = 0
    archived_bytes: int = 0
    by_status: Mapping[str, int] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()

    def window_label(self) -> str:
        return span_label(self.start, self.end)

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.key, self.etag, self.last_modified)

    @classmethod
    def unreadable(cls, key: str, etag: str, last_modified: str, window: Window, why: str) -> ReportFact:
        return cls(key, etag, last_modified, window.start, window.end, False, reasons=(clean_reason(why),))

    @classmethod
    def from_report(
        cls, key: str, etag: str, last_modified: str, window: Window, body: bytes, sub_account_id: str
    ) -> ReportFact:
        """The fact of a report body read from S3; an unreadable or mismatched body gives an incomplete
        fact naming the problem (the window is then repaired, which rewrites the report)."""
        try:
            report = jsonutil.strict_loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            return cls.unreadable(key, etag, last_modified, window, f"report is not valid JSON ({err})")
        problem = _check_report(report, window, sub_account_id)
        if problem:
            return cls.unreadable(key, etag, last_modified, window, problem)
        counts: Mapping[str, Any] = report["counts"] if isinstance(report.get("counts"), Mapping) else {}
        by_status: Mapping[str, Any] = (
            counts["by_status"] if isinstance(counts.get("by_status"), Mapping) else {}
        )
        statuses = {str(k)[:64]: _int(v) for k, v in by_status.items() if _int(v)}
        # A report read from a manifest nothing vouched for (allow_unverified_manifest) proves nothing about
        # what the window held: the window stays incomplete, so the audit re-archives it with a verified one.
        manifest = report.get("manifest")
        unverified = isinstance(manifest, Mapping) and manifest.get("verified") is False
        # A report that says complete although segments are not archived (the report task's
        # allow_unarchived waived them) proves the operator's waiver, not the archive: incomplete, "waived".
        waived = report["complete"] and _unarchived(counts)
        complete = report["complete"] and not unverified and not waived
        reasons = () if complete else _reasons(report, counts, statuses)
        if waived:
            reasons = (WAIVED_REASON, *reasons)
        if unverified:
            reasons = ("the report read an unverified manifest (allow_unverified_manifest)", *reasons)
        reasons = reasons[: MAX_REASONS + 1]
        return cls(
            key, etag, last_modified, window.start, window.end, complete,
            expected=_int(counts.get("expected")), archived=_int(counts.get("archived")),
            not_archived=_int(counts.get("not_archived")), archived_bytes=_int(counts.get("bytes")),
            by_status=dict(sorted(statuses.items())), reasons=reasons,
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "start": iso(self.start),
            "end": iso(self.end),
            "complete": self.complete,
            "expected": self.expected,
            "archived": self.archived,
            "not_archived": self.not_archived,
            "bytes": self.archived_bytes,
            "by_status": dict(self.by_status),
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ReportFact:
        """A fact stored in a rollup, checked field by field.

        :raises FactError: a field is missing, of the wrong type, or the window does not match the key.
        """
        if not isinstance(data, Mapping):
            raise FactError("a report fact is not an object")
        for name in ("key", "etag", "last_modified", "start", "end"):
            if not isinstance(data.get(name), str) or not data[name] or len(data[name]) > 1024:
                raise FactError(f"report fact field {name!r} is not a non-empty string")
        if not isinstance(data.get("complete"), bool):
            raise FactError("report fact field 'complete' is not a boolean")
        numbers = {}
        for name in ("expected", "archived", "not_archived", "bytes"):
            value = data.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise FactError(f"report fact field {name!r} is not a count")
            numbers["archived_bytes" if name == "bytes" else name] = value
        by_status, reasons = data.get("by_status"), data.get("reasons")
        if not isinstance(by_status, Mapping) or not all(
            isinstance(k, str) and _int(v) == v and not isinstance(v, bool) for k, v in by_status.items()
        ):
            raise FactError("report fact field 'by_status' is not a mapping of counts")
        if not isinstance(reasons, list) or len(reasons) > MAX_REASONS + 1:
            raise FactError("report fact field 'reasons' is not a short list")
        if not all(isinstance(r, str) and len(r) <= MAX_REASON for r in reasons):
            raise FactError("report fact field 'reasons' holds something other than short texts")
        window = window_of_key(data["key"])
        if window is None or (data["start"], data["end"]) != (iso(window.start), iso(window.end)):
            raise FactError(f"report fact {data['key']!r} does not name the window of its key")
        return cls(
            data["key"], data["etag"], data["last_modified"], window.start, window.end, data["complete"],
            by_status=dict(by_status), reasons=tuple(reasons), **numbers,
        )  # fmt: skip


def window_of_key(key: str, suffix: str = ".json") -> Window | None:
    """The window a report (``.json``) or own manifest (``.jsonl``) key names, from its last segment."""
    name = key.rsplit("/", 1)[-1]
    if not name.startswith("window=") or not name.endswith(suffix):
        return None
    bounds = keys.parse_window_part(name[len("window=") : -len(suffix)])
    return Window(*bounds) if bounds else None


def _check_report(report: Any, window: Window, sub_account_id: str) -> str:
    if not isinstance(report, Mapping):
        return "report is not a JSON object"
    if not isinstance(report.get("complete"), bool):
        return "report has no boolean 'complete'"
    if report.get("sub_account_id") != sub_account_id:
        return f"report is for sub-account {str(report.get('sub_account_id'))[:40]!r}, not {sub_account_id!r}"
    stated = report.get("window")
    if not isinstance(stated, Mapping) or stated.get("key") != window.key:
        return f"report's window does not match its key (expected {window.key})"
    return ""


def _unarchived(counts: Mapping[str, Any]) -> bool:
    """Whether the counts show anything not archived: segments, unparseable rows or late arrivals."""
    late = _int(counts.get("late_found")) - _int(counts.get("late_archived"))
    return bool(_int(counts.get("not_archived")) or _int(counts.get("unparseable")) or late > 0)


def _reasons(report: Mapping[str, Any], counts: Mapping[str, Any], statuses: Mapping[str, int]) -> tuple:
    reasons = [f"{count} {status}" for status, count in statuses.items() if status != "archived" and count]
    if _int(counts.get("unparseable")):
        reasons.append(f"{_int(counts.get('unparseable'))} unparseable metadata rows")
    late = _int(counts.get("late_found")) - _int(counts.get("late_archived"))
    if late > 0:
        reasons.append(f"{late} late arrivals not archived")
    if isinstance(report.get("rescan_problem"), str):
        reasons.append(report["rescan_problem"])
    summary = ", ".join(reasons)
    items: list[Any] = report["not_archived"] if isinstance(report.get("not_archived"), list) else []
    samples = [
        f"{item.get('dialog_id')}/{item.get('segment_id')}: {item.get('status')} ({item.get('reason', '')})"
        for item in items[: MAX_REASONS - 1]
        if isinstance(item, Mapping)
    ]
    out = ([summary] if summary else []) + samples
    return tuple(clean_reason(text) for text in out[:MAX_REASONS]) or ("report says not complete",)
