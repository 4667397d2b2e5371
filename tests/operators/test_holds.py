"""RingCXLegalHoldOperator against a real S3 server (moto over HTTP): an Object Lock bucket and one without.

The task runs outside a DAG run with a context dict (see ``conftest.py``); the DAG with its approval step
is run for real in ``tests/example_dags/test_legal_hold_dag.py``.
"""

from __future__ import annotations

import gzip
import json
from datetime import date
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXHoldScopeError, RingCXObjectLockError
from airflow_provider_ringcx.keys import index_key
from airflow_provider_ringcx.operators.holds import RingCXLegalHoldOperator
from tests.fixtures.s3 import S3_SECRET, list_keys
from tests.holds.archive import PREFIX, SUB, check_hold_audits, hold_status, seed, wav_key, write_index
from tests.operators.conftest import XComRecorder

NUMBER = "+1 555 010 0100"


class FakeTI(XComRecorder):
    """The task instance's identity and XCom (no TaskInstance outside a DAG run)."""

    dag_id, run_id, task_id, try_number, map_index = "ringcx_legal_hold", "manual__x", "apply", 1, -1

    def xcom_pull(self, task_ids: str) -> Any:
        return {"chosen_options": ["Approve"], "responded_by_user": {"id": "7", "name": "counsel"},
                "responded_at": "2026-03-10T09:00:00+00:00", "params_input": {}}  # fmt: skip


def _hold(bucket: str, **kwargs: Any) -> RingCXLegalHoldOperator:
    args = {"task_id": "apply", "bucket": bucket, "prefix": PREFIX, "sub_account_id": SUB,
            "date_from": "2026-03-01", "date_to": "2026-03-04", "phone_numbers": [NUMBER],
            "requested_by": "legal@example.com", "reason": "Matter 17",
            "approval_task_id": "approve"}  # fmt: skip
    return RingCXLegalHoldOperator(**{**args, **kwargs})


def _run(op: RingCXLegalHoldOperator) -> tuple[dict[str, Any], FakeTI]:
    ti = FakeTI()
    return op.execute({"ti": ti, "dag_run": None}), ti


def _audit(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _objects(row: dict[str, Any]) -> list[str]:
    return [k for k in (row["s3_key"], row["sidecar_key"], row["transcript_key"]) if k]


def test_apply_holds_the_selected_calls_objects_and_audits_it(
    aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    rows = seed(s3_client, locked_bucket)
    summary, ti = _run(_hold(locked_bucket))
    selected = [rows["s-1"], rows["s-2"], rows["s-3"]]  # ANI of d-1, DNIS of d-2; s-5 is after the range
    assert summary["segments"] == 3
    assert summary["counts"] == {"objects": 7, "changed": 7, "unchanged": 0, "missing": 0, "failed": 0}
    for row in selected:
        for key in _objects(row):
            assert hold_status(s3_client, locked_bucket, key) == "ON", key
    for row in (rows["s-4"], rows["s-5"]):
        for key in _objects(row):
            assert hold_status(s3_client, locked_bucket, key) == "OFF", key

    record = _audit(s3_client, locked_bucket, ti.pushed["audit_key"])
    assert ti.pushed["audit_key"].startswith(f"{PREFIX}/_audit/legal_holds/sub_account={SUB}/")
    assert record["record_type"] == "ringcx-legal-hold-audit/1"
    assert (record["action"], record["legal_hold_status"]) == ("apply", "ON")
    assert record["requested_by"] == "legal@example.com"
    assert record["reason"] == "Matter 17"
    assert record["approval"]["responded_by"] == {"id": "7", "name": "counsel"}
    assert record["approval"]["chosen_options"] == ["Approve"]
    assert record["query"]["phone_numbers"] == [NUMBER]
    assert record["days_without_index"] == ["2026-03-01", "2026-03-04"]
    recording = next(o for o in record["objects"] if o["key"] == rows["s-1"]["s3_key"])
    assert recording["version_id"] == rows["s-1"]["version_id"]
    assert (recording["before"], recording["after"], recording["result"]) == ("OFF", "ON", "changed")
    assert {o["kind"] for o in record["objects"]} == {"recording", "sidecar", "transcript"}
    assert S3_SECRET not in json.dumps(record)
    head = s3_client.head_object(Bucket=locked_bucket, Key=ti.pushed["audit_key"])
    assert head["ContentType"] == "application/json"
    assert record["index_days_updated"] == ["2026-03-02", "2026-03-03"]
    from airflow_provider_ringcx.index.store import read_day
    from airflow_provider_ringcx.keys import index_key

    (day2, _), (day3, _) = (
        read_day(s3_client, locked_bucket, index_key(PREFIX, SUB, date(2026, 3, d))) for d in (2, 3)
    )
    assert {r["segment_id"]: r["legal_hold"] for r in day2 + day3} == {
        "s-1": True,
        "s-2": True,
        "s-3": True,
        "s-4": False,
    }


def test_a_second_run_changes_nothing_and_says_so(aws_conn: str, locked_bucket: str, s3_client: Any) -> None:
    seed(s3_client, locked_bucket)
    _run(_hold(locked_bucket))
    summary, ti = _run(_hold(locked_bucket))
    assert summary["counts"]["changed"] == 0
    assert summary["counts"]["unchanged"] == summary["counts"]["objects"] == 7
    assert summary["message"] == "nothing to change: all 7 object version(s) already have legal hold ON"
    record = _audit(s3_client, locked_bucket, ti.pushed["audit_key"])
    assert {o["result"] for o in record["objects"]} == {"unchanged"}
    audits = list_keys(s3_client, locked_bucket, f"{PREFIX}/_audit/legal_holds/")
    assert len(audits) == 2  # each request is audited, the unchanged one too
    assert check_hold_audits(s3_client, locked_bucket) == []


def test_release_lifts_the_holds_it_selects(aws_conn: str, locked_bucket: str, s3_client: Any) -> None:
    rows = seed(s3_client, locked_bucket)
    _run(_hold(locked_bucket))
    summary, ti = _run(_hold(locked_bucket, action="release", phone_numbers=None, dialog_ids="d-2"))
    assert summary["counts"]["changed"] == 2  # d-2's recording and sidecar
    assert all(hold_status(s3_client, locked_bucket, k) == "OFF" for k in _objects(rows["s-3"]))
    assert all(hold_status(s3_client, locked_bucket, k) == "ON" for k in _objects(rows["s-1"]))
    assert _audit(s3_client, locked_bucket, ti.pushed["audit_key"])["legal_hold_status"] == "OFF"
    assert check_hold_audits(s3_client, locked_bucket) == []


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("s3_key", "other/sub_account=42/d-1/s-1.wav", "is not under the archive prefix"),
        ("s3_key", "rec/_audit/legal_holds/s-1.wav", "_audit/ folder"),
        ("s3_key", "rec/sub_account=42/../../etc/s-1.wav", "'..' segment"),
        ("s3_key", "rec/sub_account=42/d-9/s-99.wav", "does not name the row's segment"),
        ("s3_key", "rec/sub_account=43/d-1/s-1.wav", "is not in a folder of the row's sub-account '42'"),
        ("s3_key", "rec/sub_account=42/d-1/s-1.mp3", "is not a .wav recording"),
        ("s3_key", "/rec/sub_account=42/d-1/s-1.wav", "is not under the archive prefix"),
        ("s3_key", "rec//sub_account=42/s-1.wav", "empty, '.' or '..' segment"),
        ("s3_key", "rec/_index/sub_account=42/s-1.wav", "_index/ folder"),
        ("transcript_key", "rec/sub_account=42/elsewhere/s-1.transcript.json", "is not beside the recording"),
        ("sidecar_key", "rec/sub_account=42/year=2026/month=03/day=02/hour=14/d-1/s-1.x.json", "sidecar"),
    ],
)
def test_a_crafted_index_row_is_refused_and_nothing_changes(
    aws_conn: str, locked_bucket: str, s3_client: Any, field: str, value: str, problem: str
) -> None:
    rows = seed(s3_client, locked_bucket)
    crafted = {**rows["s-1"], field: value}
    write_index(s3_client, locked_bucket, "2026-03-02", [crafted, rows["s-2"]])
    with pytest.raises(RingCXHoldScopeError, match="refusing the legal hold request") as caught:
        _run(_hold(locked_bucket))
    assert problem in str(caught.value)
    assert repr(value) in str(caught.value)  # names the key
    assert "nothing was changed" in str(caught.value)
    for row in rows.values():
        for key in _objects(row):
            assert hold_status(s3_client, locked_bucket, key) == "OFF"
    assert not list_keys(s3_client, locked_bucket, f"{PREFIX}/_audit/")


def test_a_bucket_without_object_lock_fails_clearly(aws_conn: str, bucket: str, s3_client: Any) -> None:
    seed(s3_client, bucket)
    with pytest.raises(RingCXConfigError, match=f"bucket '{bucket}' has no Object Lock") as caught:
        _run(_hold(bucket))  # a configuration error: failed without retries (failfast)
    assert isinstance(caught.value.__cause__ or caught.value.__context__, RingCXObjectLockError)
    assert "object-lock-enabled-for-bucket" in str(caught.value)
    assert not list_keys(s3_client, bucket, f"{PREFIX}/_audit/")


def test_a_missing_object_is_audited_and_fails_the_task(
    aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    rows = seed(s3_client, locked_bucket)
    gone = {**rows["s-2"], "transcript_key": wav_key("d-1", "s-2", "2026-03-02")[:-4] + ".transcript.json"}
    write_index(s3_client, locked_bucket, "2026-03-02", [rows["s-1"], gone])
    with pytest.raises(AirflowFailException, match=r"1 object\(s\) the index names could not") as caught:
        _run(_hold(locked_bucket))
    assert "s-2.transcript.json (missing)" in str(caught.value)
    (audit_key,) = list_keys(s3_client, locked_bucket, f"{PREFIX}/_audit/")
    record = _audit(s3_client, locked_bucket, audit_key)
    assert record["counts"]["missing"] == 1
    assert record["counts"]["changed"] == 7
    assert check_hold_audits(s3_client, locked_bucket) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"phone_numbers": None}, "selects nothing by number or dialog"),
        ({"date_to": "2026-02-01"}, "is before date_from"),
        ({"phone_numbers": "n/a"}, "have no digits"),
        ({"max_segments": 1}, "over max_segments=1"),
    ],
)
def test_a_request_that_is_too_broad_or_malformed_is_refused(
    aws_conn: str, locked_bucket: str, s3_client: Any, kwargs: dict, match: str
) -> None:
    seed(s3_client, locked_bucket)
    with pytest.raises(RingCXConfigError, match=match):
        _run(_hold(locked_bucket, **kwargs))


def test_a_typo_in_the_action_fails_at_parse_time() -> None:
    with pytest.raises(RingCXConfigError, match="use 'apply'"):
        RingCXLegalHoldOperator(
            task_id="x", bucket="b", sub_account_id="1", date_from="2026-01-01", action="hold"
        )


@pytest.mark.parametrize("other", ["4", "2", "2026"])
def test_a_crafted_index_of_another_sub_account_cannot_reach_sub_account_42s_calls(
    aws_conn: str, locked_bucket: str, s3_client: Any, other: str
) -> None:
    """An attacker who can write ``_index/`` (not locked) puts rows in sub-account ``other``'s index that name
    sub-account 42's recordings. ``other`` is a substring of a folder of those keys (``sub_account=42``,
    ``year=2026``): the key is not what the key template gives ``other``'s segments, so it is refused."""
    rows = seed(s3_client, locked_bucket)
    crafted = [{**rows[s], "sub_account_id": other} for s in ("s-1", "s-2")]
    key = index_key(PREFIX, other, date(2026, 3, 2))
    body = gzip.compress("".join(json.dumps(row) + "\n" for row in crafted).encode(), mtime=0)
    s3_client.put_object(Bucket=locked_bucket, Key=key, Body=body)
    with pytest.raises(RingCXHoldScopeError, match="refusing the legal hold request") as caught:
        _run(_hold(locked_bucket, sub_account_id=other, action="release"))
    assert "the key template" in str(caught.value)
    with pytest.raises(RingCXHoldScopeError):
        _run(_hold(locked_bucket, sub_account_id=other))
    for row in rows.values():
        for obj in _objects(row):
            assert hold_status(s3_client, locked_bucket, obj) == "OFF"
    assert not list_keys(s3_client, locked_bucket, f"{PREFIX}/_audit/")


def test_a_transcript_key_naming_another_object_of_the_dialog_is_refused(
    aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    """The row's transcript_key is beside the recording and contains the segment id (``s-1`` is in
    ``s-1x.wav``), but it is not the segment's transcript: refused."""
    rows = seed(s3_client, locked_bucket)
    other = wav_key("d-1", "s-1x", "2026-03-02")
    s3_client.put_object(Bucket=locked_bucket, Key=other, Body=b"RIFF")
    write_index(s3_client, locked_bucket, "2026-03-02", [{**rows["s-1"], "transcript_key": other}])
    with pytest.raises(RingCXHoldScopeError, match="is not the recording's transcript"):
        _run(_hold(locked_bucket))
    assert hold_status(s3_client, locked_bucket, other) == "OFF"


def test_a_custom_key_template_is_checked_against_that_template(
    aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    """The DAGs' key_template decides what a row's key must be: the seeded default layout is refused under
    another template, with a message naming key_template."""
    seed(s3_client, locked_bucket)
    template = "{prefix}/calls/{sub_account_id}/{date}/{dialog_id}/{segment_id}.wav"
    with pytest.raises(RingCXHoldScopeError, match="key_template"):
        _run(_hold(locked_bucket, key_template=template))


def test_an_index_row_the_recordings_sidecar_contradicts_is_refused(
    aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    """Whoever can write ``_index/`` gives d-3's row the held number: a release by that number would lift
    d-3's hold, which another matter asked for. The sidecar (written with the recording, locked with it)
    says d-3's number is another one: the request is refused before anything changes."""
    rows = seed(s3_client, locked_bucket)
    _run(_hold(locked_bucket, phone_numbers=None, dialog_ids="d-3"))  # another matter holds d-3
    forged = {**rows["s-4"], "channel_endpoint_address": NUMBER}
    write_index(s3_client, locked_bucket, "2026-03-03", [rows["s-3"], forged])
    with pytest.raises(RingCXHoldScopeError, match="sidecar") as caught:
        _run(_hold(locked_bucket, action="release"))
    assert "'s-4'" in str(caught.value)
    assert "nothing was changed" in str(caught.value)
    assert all(hold_status(s3_client, locked_bucket, k) == "ON" for k in _objects(rows["s-4"]))


def test_an_index_row_moved_into_the_range_is_refused(
    aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    """s-5 ended on 2026-03-05, after the request's range; a forged 2026-03-03 index object lists it: its
    sidecar's end is outside the range, so the request is refused."""
    rows = seed(s3_client, locked_bucket)
    write_index(s3_client, locked_bucket, "2026-03-03", [rows["s-3"], rows["s-5"]])
    with pytest.raises(RingCXHoldScopeError, match="outside the request's days"):
        _run(_hold(locked_bucket))
    assert all(hold_status(s3_client, locked_bucket, k) == "OFF" for k in _objects(rows["s-5"]))


def test_a_failure_after_some_changes_is_still_audited(
    aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    """S3 refuses a request midway (here: s-2's row names a delete marker's version, whose HEAD is a 405)
    after s-1's three objects got their hold: the task fails, and the audit record of what did change is
    written first, with the error."""
    rows = seed(s3_client, locked_bucket)
    marker = s3_client.delete_object(Bucket=locked_bucket, Key=rows["s-2"]["s3_key"])["VersionId"]
    write_index(s3_client, locked_bucket, "2026-03-02", [rows["s-1"], {**rows["s-2"], "version_id": marker}])
    with pytest.raises(Exception, match=r"405|Method Not Allowed"):
        _run(_hold(locked_bucket, phone_numbers=None, dialog_ids="d-1"))
    assert all(hold_status(s3_client, locked_bucket, k) == "ON" for k in _objects(rows["s-1"]))
    (audit_key,) = list_keys(s3_client, locked_bucket, f"{PREFIX}/_audit/")
    record = _audit(s3_client, locked_bucket, audit_key)
    assert record["counts"]["changed"] == 3
    assert {o["key"] for o in record["objects"]} == set(_objects(rows["s-1"]))
    assert "405" in record["error"]
    assert record["index_days_updated"] is None
    assert check_hold_audits(s3_client, locked_bucket) == []


def test_the_calls_ai_summaries_are_held_with_it(aws_conn: str, locked_bucket: str, s3_client: Any) -> None:
    """A segment's archived AI summaries (index column summary_keys) are its objects too: held with the
    recording, released with it; a summary key that is not the recording's own is refused."""
    rows = seed(s3_client, locked_bucket)
    wav = rows["s-1"]["s3_key"]
    summaries = [wav[:-4] + ".summary.agent.json", wav[:-4] + ".summary.auto.json"]
    for key in summaries:
        s3_client.put_object(Bucket=locked_bucket, Key=key, Body=b"{}")
    write_index(
        s3_client, locked_bucket, "2026-03-02", [{**rows["s-1"], "summary_keys": summaries}, rows["s-2"]]
    )
    _, ti = _run(_hold(locked_bucket, phone_numbers=None, dialog_ids="d-1"))
    assert all(hold_status(s3_client, locked_bucket, key) == "ON" for key in summaries)
    record = _audit(s3_client, locked_bucket, ti.pushed["audit_key"])
    assert {o["kind"] for o in record["objects"]} == {"recording", "sidecar", "transcript", "summary"}
    _run(_hold(locked_bucket, phone_numbers=None, dialog_ids="d-1", action="release"))
    assert all(hold_status(s3_client, locked_bucket, key) == "OFF" for key in summaries)
    other = wav[:-4] + "x.summary.agent.json"  # names s-1, beside it, but s-1x's summary
    write_index(s3_client, locked_bucket, "2026-03-02", [{**rows["s-1"], "summary_keys": [other]}])
    with pytest.raises(RingCXHoldScopeError, match="is not one of the recording's summaries"):
        _run(_hold(locked_bucket, phone_numbers=None, dialog_ids="d-1"))
    assert check_hold_audits(s3_client, locked_bucket) == []
