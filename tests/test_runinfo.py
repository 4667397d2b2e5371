"""Readable run information: the outcome tables that end task logs and the report task's XCom summary."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_ringcx.runinfo import (
    MAX_LOG_ROWS,
    MAX_XCOM_ROWS,
    batch_table,
    format_table,
    human_bytes,
    readable_summary,
    report_table,
)
from airflow_provider_ringcx.transfers.batch import SegmentOutcome, summarize


def _report(not_archived: list[dict[str, Any]], **counts: Any) -> dict[str, Any]:
    base = {"expected": 40, "archived": 40 - len(not_archived), "not_archived": len(not_archived)}
    return {
        "window": {
            "start": "2026-03-02T14:00:00Z",
            "end": "2026-03-02T14:15:00Z",
            "key": "20260302T1400Z_20260302T1415Z",
        },
        "sub_account_id": "99999999",
        "bucket": "archive",
        "report_key": "ringcx/_reports/sub_account=99999999/window=20260302T1400Z_20260302T1415Z.json",
        "complete": not not_archived,
        "counts": {**base, "rows": 44, "no_recording": 4, "unparseable": 0, "bytes": 12_345_678, **counts},
        "not_archived": not_archived,
        "rescan": None,
    }  # fmt: skip


def test_format_table_aligns_columns_and_cuts_long_cells() -> None:
    table = format_table(("name", "n"), [("a", 1), ("long" * 50, 22)], numeric=(1,))
    lines = table.splitlines()
    assert lines[0].split() == ["name", "n"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].endswith(" 1")
    assert lines[3].endswith("22")
    assert "…" in lines[3]
    assert len(lines[3]) < 180


def test_human_bytes() -> None:
    assert [human_bytes(v) for v in (0, None, 999, 1000, 1_234_567, 5 * 10**12)] == [
        "-", "-", "999 B", "1.0 KB", "1.2 MB", "5.0 TB"
    ]  # fmt: skip


def test_batch_table_counts_every_outcome_and_lists_failures_with_reasons() -> None:
    outcomes = [
        SegmentOutcome("D1", "S1", "archived", size=2_000_000),
        SegmentOutcome("D1", "S2", "already_archived"),
        SegmentOutcome("D2", "S3", "forbidden", "RingCXForbiddenError: HTTP 403 restricted recording"),
        SegmentOutcome("D3", "S4", "failed", "RingCXServerError: HTTP 503", retryable=True),
    ]
    table = batch_table(summarize(outcomes))
    lines = table.splitlines()
    assert lines[0] == "ringcx outcomes: batch of 4 segments"
    counts = {line.split()[0]: line.split()[1] for line in lines[3:8]}
    assert counts == {
        "archived": "1",
        "already_archived": "1",
        "forbidden": "1",
        "missing": "0",
        "failed": "1",
    }
    assert "2.0 MB" in lines[3]
    assert lines[8] == "not archived (2):"
    rows = {line.split()[0]: line for line in lines[11:]}
    assert "forbidden" in rows["D2/S3"]
    assert "HTTP 403 restricted" in rows["D2/S3"]
    assert "failed" in rows["D3/S4"]
    assert "HTTP 503" in rows["D3/S4"]


def test_batch_table_without_problems_has_no_failure_list_and_long_lists_are_capped() -> None:
    clean = batch_table(summarize([SegmentOutcome("D", "S", "archived", size=10)]))
    assert "not archived" not in clean
    many = [SegmentOutcome(f"D{i}", "S", "missing", "404") for i in range(80)]
    table = batch_table(summarize(many))
    assert "not archived (80):" in table
    assert sum(line.startswith("D") for line in table.splitlines()) == MAX_LOG_ROWS
    assert f"and {80 - MAX_LOG_ROWS} more" in table


def test_report_table_states_completeness_and_lists_problems() -> None:
    complete = report_table(_report([]))
    assert complete.splitlines()[0] == "ringcx window 20260302T1400Z_20260302T1415Z: COMPLETE"
    assert "12.3 MB" in complete
    assert complete.splitlines()[-1].startswith("report: s3://archive/ringcx/_reports/")
    problem = {"dialog_id": "D9", "segment_id": "S9", "status": "checksum_mismatch", "reason": "sha differs"}
    incomplete = report_table(_report([problem]))
    assert "INCOMPLETE" in incomplete.splitlines()[0]
    row = next(line for line in incomplete.splitlines() if line.startswith("D9/S9"))
    assert "checksum_mismatch" in row
    assert "sha differs" in row


def test_report_table_lists_late_arrivals_and_unparseable_rows() -> None:
    report = _report([], late_found=2, late_archived=1, unparseable=1)
    report["rescan"] = {
        "late_segments": [
            {"dialog_id": "L1", "segment_id": "S", "status": "archived"},
            {"dialog_id": "L2", "segment_id": "S", "status": "missing", "reason": "404 not processed"},
        ]
    }
    report["unparseable_rows"] = [
        {"status": "unparseable", "reason": "no segmentId", "raw": '{"dialogId":"x"}'}
    ]
    table = report_table(report)
    assert "late arrivals found" in table
    assert any(line.startswith("L2/S") and "404 not processed" in line for line in table.splitlines())
    assert not any(line.startswith("L1/S") for line in table.splitlines())
    assert "unparseable rows (1):" in table
    assert "no segmentId" in table


def test_readable_summary_is_compact_and_says_what_happened() -> None:
    problems = [
        {"dialog_id": f"D{i}", "segment_id": "S", "status": "forbidden", "reason": "HTTP 403 " + "x" * 500}
        for i in range(30)
    ]
    summary = readable_summary(_report(problems))
    assert summary["summary"] == (
        "window 2026-03-02T14:00:00Z - 2026-03-02T14:15:00Z: 10 of 40 recordings archived and verified "
        "(12.3 MB), 30 not archived, 0 unparseable rows - INCOMPLETE"
    )
    assert summary["complete"] is False
    assert summary["report"].startswith("s3://archive/ringcx/_reports/sub_account=99999999/")
    assert len(summary["problems"]) == MAX_XCOM_ROWS
    assert summary["problems_truncated"] == 30 - MAX_XCOM_ROWS
    assert summary["problems"][0]["segment"] == "D0/S"
    assert summary["problems"][0]["status"] == "forbidden"
    assert len(json.dumps(summary)) < 4096  # kilobytes at most, whatever the window held
    ok = readable_summary(_report([]))
    assert ok["summary"].endswith("- complete")
    assert ok["problems"] == []


def test_batch_progress_lines_cannot_be_forged_by_an_id(caplog: Any) -> None:
    """A hostile id (newline, ESC) is logged escaped, on one line."""
    import logging

    from airflow_provider_ringcx.transfers.progress import BatchProgress

    progress = BatchProgress(logging.getLogger("t"))
    progress.start(1)
    with caplog.at_level(logging.INFO, logger="t"):
        progress.finished("failed", "d\nFAKE archived/s\x1b[2K", 0, "bad\nreason")
    (record,) = caplog.records
    assert "\n" not in record.getMessage()
    assert "d\\nFAKE archived/s\\x1b[2K (bad\\nreason)" in record.getMessage()


def test_batch_table_counts_transcripts_only_when_they_are_archived() -> None:
    summary = {"segments": 1, "counts": {"archived": 1}, "bytes_archived": 10}
    assert "transcripts" not in batch_table(summary)
    summary["transcripts"] = {"archived": 0, "already_archived": 0, "pending": 1, "not_archived": 0}
    line = "transcripts: archived 0, already_archived 0, pending 1, not_archived 0"
    assert batch_table(summary).endswith(line)
