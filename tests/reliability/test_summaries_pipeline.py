"""AI summaries through the real download operator (the reliability harness runs ``execute()`` of each task
against the simulator and moto), judged by the independent invariant checker, which covers summaries.

The simulator's data clock is pinned at 14:35, 20 minutes after the window: a *late* summary (ready 90
minutes after its segment's end) is pending then, and archived by a re-run at 18:00 without a byte of audio
downloaded again. A summary RingCX answers 404 for never makes the window incomplete.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.keys import SUMMARY_KINDS
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from tests.fixtures.simulator import SimulatorHandle
from tests.reliability.conftest import W_END, W_START
from tests.reliability.harness import Pipeline
from tests.reliability.invariants import check_archive, downloaded_bytes, expected_segments, wav_key


def _summary_keys(s3: Any, bucket: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"] for page in pages for o in page.get("Contents", []) if ".summary." in o["Key"]}


def _served(truth: list[dict], prefix: str, states: tuple[str, ...]) -> set[str]:
    """The summary keys of expected, unrestricted segments whose summary is served in ``states``."""
    return {
        wav_key(prefix, s)[: -len(".wav")] + f".summary.{kind}.json"
        for s in expected_segments(truth)
        if not s["restricted"]
        for kind in SUMMARY_KINDS
        if s["summaries"][kind] in states
    }


def test_summaries_through_the_operator_pending_then_archived_and_checked(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any
) -> None:
    rsim.control.patch_config(
        now="2026-03-02T14:35:00Z",
        summary_late_share=0.3,
        summary_missing_share=0.2,
        summary_hostile_share=0.1,
    )
    pipe.download_kwargs["include_summaries"] = "both"
    truth = rsim.control.ground_truth(W_START, W_END)
    chosen = next(s["segmentId"] for s in expected_segments(truth) if s["hasTranscript"])
    rsim.control.patch_config(summary_variants=[f"{chosen}=missing"])  # at least one 404 forever
    truth = rsim.control.ground_truth(W_START, W_END)
    served = {kind for s in expected_segments(truth) for kind in s["summaries"].values()}
    assert {"ok", "late", "missing", "none"} <= served, served
    first = pipe.run_window(s3_client, W_START, W_END)
    assert first.report is not None
    assert first.report["complete"] is True  # a pending or refused summary is not a lost recording
    check = check_archive(s3_client, pipe.bucket, pipe.prefix, truth, report=first.report)
    check.assert_ok()
    stored = _summary_keys(s3_client, pipe.bucket)
    assert stored == _served(truth, pipe.prefix, ("ok",))
    assert check.summaries == len(stored) > 0
    counts = {state: sum(s["summaries"][state] for s in first.summaries) for state in ("archived", "pending")}
    assert counts["archived"] == len(stored)
    pending = [p for s in first.summaries for p in s["summary_pending"]]
    assert {p["kind"] for p in pending} == set(SUMMARY_KINDS)
    assert all("404" in p["reason"] for p in pending)

    # 18:00: the late summaries are ready; a re-run archives them and downloads no audio
    rsim.control.patch_config(now="2026-03-02T18:00:00Z")
    before = downloaded_bytes(rsim.control.stats())
    again = pipe.run_window(s3_client, W_START, W_END)
    assert downloaded_bytes(rsim.control.stats()) == before
    assert _summary_keys(s3_client, pipe.bucket) == _served(truth, pipe.prefix, ("ok", "late"))
    check = check_archive(s3_client, pipe.bucket, pipe.prefix, truth, report=again.report)
    check.assert_ok()  # one version per key: nothing was written twice

    # the checker is independent of the code under test: it flags a summary the simulator does not serve,
    # and one whose bytes do not hash to its sha256 metadata
    (missing,) = sorted(_served(truth, pipe.prefix, ("missing",)))[:1]
    body = b'{"summary": "forged"}'
    s3_client.put_object(
        Bucket=pipe.bucket, Key=missing, Body=body, Metadata={"sha256": hashlib.sha256(body).hexdigest()}
    )
    tampered = sorted(_served(truth, pipe.prefix, ("ok",)))[0]
    s3_client.put_object(Bucket=pipe.bucket, Key=tampered, Body=body, Metadata={"sha256": "0" * 64})
    problems = check_archive(s3_client, pipe.bucket, pipe.prefix, truth, report=again.report).problems
    assert any(p.startswith(missing) and "serves 'missing'" in p for p in problems), problems
    assert any(p.startswith(tampered) and "do not hash" in p for p in problems), problems


@pytest.mark.parametrize("value", ["agnet", ["agent", "manual"], 2])
def test_a_bad_include_summaries_fails_when_the_dag_is_parsed(value: Any) -> None:
    with pytest.raises(RingCXConfigError, match="include_summaries"):
        RingCXRecordingsToS3Operator(task_id="t", batch=[], bucket="b", include_summaries=value)
