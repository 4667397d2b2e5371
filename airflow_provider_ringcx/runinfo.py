"""Readable run information: the outcome tables that end task logs, and the report task's XCom summary.

A download task's log ends with::

    ringcx outcomes: batch of 12 segments
    outcome           segments  bytes
    ----------------  --------  -------
    archived                10  1.2 MB
    already_archived         1  -
    forbidden                1  -
    missing                  0  -
    failed                   0  -
    not archived (1):
    dialog/segment     outcome    reason
    -----------------  ---------  ------------------------------------
    D1/S7              forbidden  RingCXForbiddenError: 403 ...

and the report task's log with the same kind of table for the window. Identifiers and reasons are cut to a
readable width (the full ones are in the XCom summary and the report object); none of them hold secrets
(reasons are the exception messages the hook already keeps free of tokens).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_ringcx.models import printable

#: Not-archived segments listed in a log table / in the report task's XCom summary.
MAX_LOG_ROWS = 25
MAX_XCOM_ROWS = 10
_CELL = 60
_REASON = 160
_XCOM_REASON = 200
_DOWNLOAD_OUTCOMES = ("archived", "already_archived", "forbidden", "missing", "failed")


def human_bytes(size: int | None) -> str:
    """``1.2 MB`` style (decimal units); ``-`` for nothing."""
    if not size:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


def _cut(value: Any, width: int) -> str:
    text = printable(" ".join(str("" if value is None else value).split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[int] = ()
) -> str:
    """A plain fixed-width text table (columns in ``numeric`` right-aligned)."""
    cells = [[_cut(cell, _REASON) for cell in row] for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(widths[i]) if i in numeric else value.ljust(widths[i])
            for i, value in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * width for width in widths]), *(line(row) for row in cells)])


def _not_archived_table(items: Sequence[Mapping[str, Any]], status_key: str, truncated: int = 0) -> str:
    listed = items[:MAX_LOG_ROWS]
    rows = [
        (
            _cut(f"{item.get('dialog_id')}/{item.get('segment_id')}", _CELL),
            item.get(status_key, ""),
            item.get("reason", ""),
        )
        for item in listed
    ]
    more = len(items) - len(listed) + truncated
    title = f"not archived ({len(items) + truncated}):"
    table = format_table(("dialog/segment", "outcome", "reason"), rows)
    return f"{title}\n{table}" + (f"\n… and {more} more (see the XCom summary / report)" if more else "")


def batch_table(summary: Mapping[str, Any]) -> str:
    """The outcome table of one download batch (the operator's XCom summary)."""
    counts = summary.get("counts") or {}
    rows = [
        (name, counts.get(name, 0), human_bytes(summary.get("bytes_archived")) if name == "archived" else "-")
        for name in _DOWNLOAD_OUTCOMES
    ]
    text = f"ringcx outcomes: batch of {summary.get('segments', 0)} segments\n"
    text += format_table(("outcome", "segments", "bytes"), rows, numeric=(1,))
    problems = list(summary.get("not_archived") or [])
    if problems or summary.get("not_archived_truncated"):
        text += "\n" + _not_archived_table(
            problems, "outcome", int(summary.get("not_archived_truncated") or 0)
        )
    for name in ("transcripts", "summaries"):  # only with include_transcripts / include_summaries
        if summary.get(name):
            text += f"\n{name}: " + ", ".join(f"{state} {count}" for state, count in summary[name].items())
    return text


def report_table(report: Mapping[str, Any]) -> str:
    """The outcome table of a window report (see :mod:`airflow_provider_ringcx.report`)."""
    counts = report.get("counts") or {}
    window = (report.get("window") or {}).get("key", "?")
    state = "COMPLETE" if report.get("complete") else "INCOMPLETE"
    rows: list[tuple[Any, ...]] = [
        ("expected recordings", counts.get("expected", 0)),
        ("archived + verified", counts.get("archived", 0)),
        ("not archived", counts.get("not_archived", 0)),
        ("metadata rows", counts.get("rows", 0)),
        ("rows without recording", counts.get("no_recording", 0)),
        ("unparseable rows", counts.get("unparseable", 0)),
    ]
    if "late_found" in counts:
        rows += [
            ("late arrivals found", counts["late_found"]),
            ("late arrivals archived", counts["late_archived"]),
        ]
    rows.append(("bytes archived", human_bytes(counts.get("bytes"))))
    text = f"ringcx window {window}: {state}\n" + format_table(("", "count"), rows, numeric=(1,))
    problems = [*report.get("not_archived", []), *_late_problems(report)]
    if problems:
        text += "\n" + _not_archived_table(problems, "status")
    unparseable = report.get("unparseable_rows") or []
    if unparseable:
        table = format_table(
            ("reason", "raw row (excerpt)"), [(r.get("reason"), r.get("raw")) for r in unparseable]
        )
        text += f"\nunparseable rows ({counts.get('unparseable', len(unparseable))}):\n{table}"
    text += f"\nreport: s3://{report.get('bucket')}/{report.get('report_key')}"
    return text


def _late_problems(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rescan = report.get("rescan") or {}
    return [item for item in rescan.get("late_segments", []) if item.get("status") != "archived"]


def readable_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report task's XCom value: one sentence, the counts, where the report is, the first problems.

    A few hundred bytes to a few KB: at most :data:`MAX_XCOM_ROWS` not-archived segments are listed (the
    report object has all of them).
    """
    counts = report.get("counts") or {}
    window = report.get("window") or {}
    problems = [*report.get("not_archived", []), *_late_problems(report)]
    sentence = (
        f"window {window.get('start')} - {window.get('end')}: {counts.get('archived', 0)} of "
        f"{counts.get('expected', 0)} recordings archived and verified ({human_bytes(counts.get('bytes'))}), "
        f"{len(problems)} not archived, {counts.get('unparseable', 0)} unparseable rows"
        f" - {'complete' if report.get('complete') else 'INCOMPLETE'}"
    )
    return {
        "summary": sentence,
        "complete": bool(report.get("complete")),
        "window": window.get("key"),
        "sub_account_id": report.get("sub_account_id"),
        "expected": counts.get("expected", 0),
        "archived": counts.get("archived", 0),
        "not_archived": len(problems),
        "unparseable": counts.get("unparseable", 0),
        "bytes": counts.get("bytes", 0),
        "report": f"s3://{report.get('bucket')}/{report.get('report_key')}",
        "problems": [
            {
                "segment": f"{item.get('dialog_id')}/{item.get('segment_id')}",
                "status": item.get("status"),
                "reason": _cut(item.get("reason", ""), _XCOM_REASON),
            }
            for item in problems[:MAX_XCOM_ROWS]
        ],
        "problems_truncated": max(0, len(problems) - MAX_XCOM_ROWS),
    }
