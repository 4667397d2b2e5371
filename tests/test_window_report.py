"""The window report's verdict includes the late-arrival rescan the run plan decided.

Real peers: the simulator (the metadata and download operators) and moto. The rescan's metadata task is
simply not run here (as when it failed): the run plan says ``rescan`` but its manifest is absent.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_ringcx import keys, window_report
from airflow_provider_ringcx.coverage.facts import ReportFact
from airflow_provider_ringcx.windows import Window
from tests.operators.conftest import context
from tests.operators.test_manifest_integrity import SUB, W_END, W_START, download, fetch, run_dict

EARLIER = Window(W_START - (W_END - W_START), W_START)


def _archived_window(bucket: str) -> tuple[dict[str, Any], list[dict], dict[str, Any]]:
    batches, identity = fetch(bucket)
    summaries = [download(bucket, batch).execute(context()) for batch in batches]
    return identity, summaries, run_dict(bucket, identity["key"])


def _with_rescan(run: dict[str, Any], bucket: str, **extra: Any) -> dict[str, Any]:
    by = {"by_start": W_START, "by_end": W_END}
    return {
        **run,
        "rescan_start": EARLIER.as_dict()["start"],
        "rescan_end": EARLIER.as_dict()["end"],
        "rescan_original_manifest_key": keys.manifest_key("ringcx", SUB, EARLIER.start, EARLIER.end),
        "rescan_manifest_key": keys.rescan_manifest_key("ringcx", SUB, EARLIER.start, EARLIER.end, **by),
        **extra,
    }


def test_a_due_rescan_without_its_manifest_is_not_complete(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    identity, summaries, run = _archived_window(bucket)
    plain = window_report.report_window(s3_client, run, summaries=summaries, manifest_identity=identity)
    assert plain["complete"]  # every recording of the window archived
    due = _with_rescan(run, bucket, rescan=True, rescan_note=f"rescanning {EARLIER.key} for late arrivals")
    report = window_report.report_window(s3_client, due, summaries=summaries, manifest_identity=identity)
    assert not report["complete"]
    assert report["rescan"] is None
    assert "was due" in report["rescan_problem"]
    assert due["rescan_manifest_key"] in report["rescan_problem"]
    assert "fetch_rescan_window did not complete" in report["rescan_problem"]
    assert report["blocking"] == 1
    assert "fetch_rescan_window did not complete" in window_report.failure_message(report)
    # the stored report says so, and the coverage ledger's fact names why
    body = s3_client.get_object(Bucket=bucket, Key=run["report_key"])["Body"].read()
    fact = ReportFact.from_report(run["report_key"], "e", "m", Window(W_START, W_END), body, SUB)
    assert not fact.complete
    assert any("was due" in reason for reason in fact.reasons)


def test_a_rescan_the_plan_skipped_says_why_and_stays_complete(
    simulator: Any, ringcx_conn: str, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    identity, summaries, run = _archived_window(bucket)
    note = f"skipped: window {EARLIER.key} is final, first listed 1 day, 0:00:00 after its end"
    skipped = _with_rescan(run, bucket, rescan=False, rescan_note=note)
    report = window_report.report_window(s3_client, skipped, summaries=summaries, manifest_identity=identity)
    assert report["complete"]
    assert report["rescan_problem"] is None
    assert report["rescan_note"] == note
