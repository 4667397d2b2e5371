"""The archive index through the real pipeline: simulator over HTTP, moto S3 over HTTP, the real operators and
report step (``tests/reliability/harness.py``), then DuckDB (a real engine) over a synced copy of the index.

The answers of the three example queries are checked against what the simulator served (its ground truth
and the rows it rendered), never against anything the pipeline wrote about itself. Hostile vendor text
(newlines, quotes, unicode, huge values) travels through the whole path; a corrupted day object fails the
next report with its key and the rebuild command, and ``index rebuild`` writes the very same bytes the
incremental path had written.
"""

from __future__ import annotations

import gzip
import io
import uuid
from collections import Counter
from contextlib import redirect_stderr
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.index import cli, sql
from airflow_provider_ringcx.index.format import IndexCorruptError
from airflow_provider_ringcx.index.store import read_day, sync_index
from airflow_provider_ringcx.window_report import report_window
from ringcx_simulator.metadata import render_row
from tests.fixtures.simulator import SimulatorHandle
from tests.reliability.conftest import W_END, W_START
from tests.reliability.harness import SUB, Pipeline
from tests.reliability.invariants import check_archive

DAY = W_START.date()
W2_START, W2_END = W_END, W_END + timedelta(minutes=15)
NUMBER = '+1 (202) 555-0143 "x"\n\u2028ext'
AGENT = "agent-\u00fcn\u00efc\u00f8d\u00e9-7"


def _served(sim: SimulatorHandle, start: Any, end: Any) -> list[dict[str, Any]]:
    """The rows the simulator serves for the window (its own rendering; no HTTP, no budget)."""
    state = sim.server.state
    segments = state.iter_segments_ending(SUB, int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    return [render_row(segment, state.config, sim.url) for segment in segments]


def _inject(sim: SimulatorHandle) -> None:
    base = W_START + timedelta(minutes=3)
    at = [(base + timedelta(seconds=7 * i)).isoformat() for i in range(6)]
    sim.control.add_segments([
        {"dialogId": "dlg-number-ani", "segmentId": "seg-1", "segmentEndTimeMs": at[0],
         "fields": {"channelEndpointAddress": NUMBER, "segmentParticipantId": AGENT}},
        {"dialogId": "dlg-number-dnis", "segmentId": "seg-2", "segmentEndTimeMs": at[1],
         "fields": {"contactEndpointAddress": NUMBER, "dialogOrigination": "OUTBOUND"}},
        {"dialogId": "dlg-agent", "segmentId": "seg-3", "segmentEndTimeMs": at[2],
         "fields": {"segmentParticipantId": AGENT, "agentDisposition": "z" * 100_000}},
        {"dialogId": "dlg-forbidden", "segmentId": "seg-4", "segmentEndTimeMs": at[3], "restricted": True,
         "fields": {"segmentParticipantId": AGENT}},
        {"dialogId": "dlg-no-audio", "segmentId": "seg-5", "segmentEndTimeMs": at[4], "hasRecording": False,
         "fields": {"segmentParticipantId": AGENT}},
        {"dialogId": "dlg-paused", "segmentId": "seg-6", "segmentEndTimeMs": at[5],
         "segmentDurationMs": 60_000,
         "fields": {"segmentEvents": [
             {"eventTimeMs": (base - timedelta(seconds=25)).isoformat(), "eventType": "REC_START"},
             {"eventTimeMs": (base - timedelta(seconds=20)).isoformat(), "eventType": "REC_STOP"},
             {"eventTimeMs": (base - timedelta(seconds=10)).isoformat(), "eventType": "REC_START"},
             None,
         ]}},
    ])  # fmt: skip


@pytest.fixture
def archived(rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any) -> dict[str, Any]:
    """Two windows of one day archived through the pipeline, with the injected segments in the first."""
    _inject(rsim)
    results = [pipe.run_window(s3_client, W_START, W_END), pipe.run_window(s3_client, W2_START, W2_END)]
    for result in results:
        assert result.report is not None, result.errors
    served = _served(rsim, W_START, W_END) + _served(rsim, W2_START, W2_END)
    first = _served(rsim, W_START, W_END)
    truth = rsim.control.ground_truth(W_START, W2_END)
    return {"results": results, "served": served, "first": first, "truth": truth}


def _query(s3: Any, bucket: str, tmp: Path, name: str, **params: Any) -> list[tuple]:
    sync_index(s3, bucket, "rel", tmp)
    return sql.duckdb_query(str(tmp), sql.DUCKDB_QUERIES[name], params)


def test_the_day_index_answers_the_example_queries_as_the_simulator_served(
    archived: dict[str, Any], pipe: Pipeline, s3_client: Any, tmp_path: Path
) -> None:
    pytest.importorskip("duckdb")
    served, truth = archived["served"], archived["truth"]
    listed = [key for key in _keys(s3_client, pipe.bucket) if "/_index/" in key]
    assert listed == [keys.index_key("rel", SUB, DAY)]  # one object for the sub-account and day
    rows, _ = read_day(s3_client, pipe.bucket, listed[0])
    assert len(rows) == len(served) == len(truth)

    # 1. every call with the number, as caller or callee, in the month
    month = {"month_start": date(2026, 3, 1), "month_end": date(2026, 4, 1)}
    found = _query(s3_client, pipe.bucket, tmp_path, "calls_with_number", number=NUMBER, **month)
    with_number = {
        (r["dialogId"], r["segmentId"])
        for r in served
        if NUMBER in (r["channelEndpointAddress"], r["contactEndpointAddress"])
    }
    assert (
        {(r[6], r[7]) for r in found}
        == with_number
        == {("dlg-number-ani", "seg-1"), ("dlg-number-dnis", "seg-2")}
    )
    assert {r[3] for r in found} | {r[4] for r in found} >= {NUMBER}  # the hostile text comes back whole

    # 2. every recording of the agent
    agent = _query(s3_client, pipe.bucket, tmp_path, "agent_recordings", agent=AGENT)
    recorded = {
        (r["dialogId"], r["segmentId"])
        for r in served
        if r["segmentParticipantId"] == AGENT and r["hasRecording"]
    }
    assert {(r[4], r[5]) for r in agent} == recorded
    assert len(recorded) == 3  # seg-1, seg-3 and the forbidden seg-4; not the one without audio

    # 3. everything not archived, with its reason: exactly the restricted recordings (403)
    missing = _query(s3_client, pipe.bucket, tmp_path, "not_archived")
    restricted = {(s["dialogId"], s["segmentId"]) for s in truth if s["restricted"] and s["hasRecording"]}
    assert {(r[3], r[4]) for r in missing} == restricted
    assert ("dlg-forbidden", "seg-4") in restricted
    assert all(r[1] == "forbidden" and "403" in r[2] for r in missing), missing

    # the demo's query: calls per direction in a window
    directions = _query(
        s3_client, pipe.bucket, tmp_path, "calls_per_direction", window=keys.window_part(W_START, W_END)
    )
    expected = Counter(r["dialogOrigination"] for r in archived["first"])
    assert {r[1]: r[2] for r in directions} == dict(expected)
    assert {r[0] for r in directions} == {SUB}

    # archive facts agree with the simulator's bytes; pause evidence and bounded text are in the rows
    by_id = {(row["dialog_id"], row["segment_id"]): row for row in rows}
    for segment in truth:
        row = by_id[(segment["dialogId"], segment["segmentId"])]
        if segment["hasRecording"] and not segment["restricted"]:
            assert (row["outcome"], row["sha256"], row["size_bytes"]) == (
                "archived",
                segment["sha256"],
                segment["size"],
            )
            assert row["version_id"]  # a versioned bucket
        elif not segment["hasRecording"]:
            assert (row["outcome"], row["s3_key"]) == ("no_recording", None)
    paused = by_id[("dlg-paused", "seg-6")]
    assert len(paused["pause_intervals"]) == 1
    assert any("is null" in problem for problem in paused["pause_problems"])
    assert any("never stopped" in problem for problem in paused["pause_problems"])
    assert by_id[("dlg-agent", "seg-3")]["truncated_fields"] == ["agent_disposition"]


def _keys(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def test_a_rerun_rewrites_the_same_bytes_and_a_rebuild_restores_a_corrupted_day(
    archived: dict[str, Any], pipe: Pipeline, s3_client: Any
) -> None:
    key = keys.index_key("rel", SUB, DAY)
    original = s3_client.get_object(Bucket=pipe.bucket, Key=key)["Body"].read()
    first = archived["results"][0]
    identity = next(x["manifest"] for x in first.xcoms if isinstance(x, dict) and "manifest" in x)
    run = pipe.run_dict(W_START, W_END)
    report_window(s3_client, run, summaries=first.summaries, manifest_identity=identity)
    assert s3_client.get_object(Bucket=pipe.bucket, Key=key)["Body"].read() == original  # deterministic

    s3_client.put_object(Bucket=pipe.bucket, Key=key, Body=original[: len(original) // 2])  # truncated
    with pytest.raises(IndexCorruptError) as caught:
        report_window(s3_client, run, summaries=first.summaries, manifest_identity=identity)
    assert f"s3://{pipe.bucket}/{key} is truncated" in str(caught.value)
    assert "index rebuild" in str(caught.value)

    out = io.StringIO()
    code = cli.main(["rebuild", "--bucket", pipe.bucket, "--prefix", "rel", "--sub-account", SUB,
                     "--day", DAY.isoformat()], out=out, client=s3_client)  # fmt: skip
    assert code == 0, out.getvalue()
    assert "from 2 manifests and 2 reports" in out.getvalue()
    rebuilt = s3_client.get_object(Bucket=pipe.bucket, Key=key)["Body"].read()
    assert gzip.decompress(rebuilt) == gzip.decompress(original)  # the same rows as the incremental path
    assert rebuilt == original
    check = check_archive(s3_client, pipe.bucket, "rel", archived["truth"], summaries=first.summaries)
    check.assert_ok()  # invariant 5 included: the rebuilt index claims nothing S3 does not prove
    assert check.indexed == len(archived["truth"])


def test_index_cli_usage_and_an_s3_refusal_exit_codes(s3_client: Any, tmp_path: Path) -> None:
    err = io.StringIO()
    with redirect_stderr(err):
        code = cli.main(
            ["sync", "--bucket", "no-such-bucket-here", "--dest", str(tmp_path)], client=s3_client
        )
    assert code == cli.EXIT_S3
    assert "S3 refused" in err.getvalue()
    out = io.StringIO()
    assert cli.main(["ddl", "--bucket", "b", "--sub-accounts", "1,2"], out=out) == 0
    assert "'projection.sub_account.values' = '1,2'" in out.getvalue()


class LockedPipeline(Pipeline):
    """The pipeline with the Object Lock options given to the report too (the DAG resolves them once)."""

    def run_dict(self, start: Any, end: Any) -> dict[str, Any]:
        return {**super().run_dict(start, end), **self.download_kwargs}


def test_each_rows_object_lock_state_is_what_s3_holds_for_its_recording(
    rsim: SimulatorHandle, aws_conn: str, s3_client: Any
) -> None:
    bucket = f"lock-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    lock = {"object_lock_mode": "GOVERNANCE", "object_lock_retention_days": 3}
    result = LockedPipeline(bucket=bucket, download_kwargs=lock).run_window(s3_client, W_START, W_END)
    assert result.report is not None, result.errors
    rows, _ = read_day(s3_client, bucket, keys.index_key("rel", SUB, DAY))
    archived = [row for row in rows if row["outcome"] == "archived"]
    assert archived
    assert len(archived) == result.report["counts"]["archived"]
    for row in archived:
        head = s3_client.head_object(Bucket=bucket, Key=row["s3_key"])
        assert (row["object_lock_mode"], row["version_id"]) == ("GOVERNANCE", head["VersionId"])
        assert row["retain_until"][:19] == head["ObjectLockRetainUntilDate"].strftime("%Y-%m-%dT%H:%M:%S")
        assert row["legal_hold"] is False
    # a legal hold by one archived call's number, over what the pipeline wrote: every row it selects is
    # confirmed by the real sidecar (segment, day, the number in the vendor row), and holds
    from airflow_provider_ringcx.holds.query import digits
    from airflow_provider_ringcx.operators.holds import RingCXLegalHoldOperator
    from tests.operators.conftest import XComRecorder

    number = archived[0]["channel_endpoint_address"]
    same = [row for row in archived if digits(row["channel_endpoint_address"]) == digits(number)]
    same += [r for r in archived if r not in same and digits(r["contact_endpoint_address"]) == digits(number)]
    hold = RingCXLegalHoldOperator(
        task_id="hold", bucket=bucket, prefix="rel", sub_account_id=SUB, date_from=DAY.isoformat(),
        phone_numbers=[number], requested_by="test",
    )  # fmt: skip
    summary = hold.execute({"ti": XComRecorder(), "dag_run": None})
    assert summary["segments"] == len(same)
    assert summary["counts"]["changed"] == summary["counts"]["objects"] >= 2 * len(same)
    for row in same:
        assert (
            s3_client.get_object_legal_hold(Bucket=bucket, Key=row["s3_key"])["LegalHold"]["Status"] == "ON"
        )
