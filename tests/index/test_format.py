"""The index row format (unit tier): rows from vendor rows, hostile vendor text, the stored day's bytes,
corrupted objects, and DuckDB (in-process, on local files) reading what the writer wrote."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.index import sql
from airflow_provider_ringcx.index.format import (
    COLUMN_NAMES,
    MAX_TEXT,
    IndexCorruptError,
    decode_day,
    encode_day,
    index_row,
    merge,
    row_day,
)
from airflow_provider_ringcx.pauses import compute_pause_evidence

ROW = {
    "subAccountId": "99999999",
    "dialogId": "s-v-1",
    "interactionId": "202603020901250144700000000001",
    "channelId": "9072901055",
    "channelType": "VOICE",
    "channelClass": "VOICE",
    "channelEndpointAddress": "2098886424",
    "contactEndpointAddress": "9072901055",
    "dialogOrigination": "INBOUND",
    "segmentId": "p-v-1",
    "segmentType": "AGENT",
    "segmentParticipantId": "449438",
    "segmentParticipantRcExtensionId": "985901004",
    "segmentAgentGroupId": "76873",
    "systemDisposition": "ANSWER",
    "agentDisposition": "Transferred",
    "hasRecording": True,
    "hasTranscript": False,
    "segmentEvents": [
        {"eventTimeMs": "2026-03-02T14:01:40.000Z", "eventType": "REC_START"},
        {"eventTimeMs": "2026-03-02T14:02:00.000Z", "eventType": "REC_STOP"},
        {"eventTimeMs": "2026-03-02T14:02:30.000Z", "eventType": "REC_START"},
        {"eventTimeMs": "2026-03-02T14:04:02.000Z", "eventType": "REC_STOP"},
    ],
}
REF = {
    "dialog_id": "s-v-1",
    "segment_id": "p-v-1",
    "start": "2026-03-02T14:01:40Z",
    "end": "2026-03-02T14:04:02Z",
    "duration_ms": 142000,
}
ARCHIVED = {
    "outcome": "archived",
    "s3_key": "ringcx/sub_account=99999999/year=2026/month=03/day=02/hour=14/s-v-1/p-v-1.wav",
    "sidecar_key": "ringcx/sub_account=99999999/year=2026/month=03/day=02/hour=14/s-v-1/p-v-1.json",
    "version_id": "v1",
    "sha256": "a" * 64,
    "size_bytes": 1234,
    "object_lock_mode": "COMPLIANCE",
    "retain_until": "2033-03-02T14:04:02Z",
    "legal_hold": False,
}
WHERE = {"archive_window": "20260302T1400Z_20260302T1415Z", "manifest_key": "m", "report_key": "r"}


def make_row(row: dict[str, Any] | None = None, ref: dict[str, Any] | None = None, **archive: Any) -> dict:
    vendor = ROW if row is None else row
    return index_row(
        sub_account_id="99999999",
        ref=REF if ref is None else ref,
        row=vendor,
        has_recording=True,
        archive={**ARCHIVED, **archive},
        pauses=compute_pause_evidence(vendor.get("segmentEvents"), has_recording=True),
        where=WHERE,
    )


def test_a_row_has_every_column_with_the_vendor_fields_the_archive_facts_and_the_pauses() -> None:
    row = make_row()
    assert tuple(row) == COLUMN_NAMES
    assert row["channel_endpoint_address"] == "2098886424"  # ANI
    assert row["contact_endpoint_address"] == "9072901055"  # DNIS
    assert (row["direction"], row["agent_id"], row["agent_group_id"]) == ("INBOUND", "449438", "76873")
    assert (row["system_disposition"], row["agent_disposition"]) == ("ANSWER", "Transferred")
    assert row["has_transcript"] is False
    assert row["transcript_key"] is None
    assert (row["outcome"], row["size_bytes"], row["object_lock_mode"]) == ("archived", 1234, "COMPLIANCE")
    assert row["pause_rule"] == "rec-start-stop/v1"
    assert row["pause_intervals"] == [
        {"start_time": "2026-03-02T14:02:00Z", "end_time": "2026-03-02T14:02:30Z"}
    ]
    assert len(row["recorded_intervals"]) == 2
    assert row["pause_problems"] == []
    assert row_day(row, date(2000, 1, 1)) == date(2026, 3, 2)


def test_legacy_and_v2_field_names_fill_the_same_columns() -> None:
    legacy = {"interactionCallingAddress": "111", "interactionCalledAddress": "222", "segmentAgentId": 7,
              "interactionDirection": "OUTBOUND", "uii": 123}  # fmt: skip
    row = make_row(legacy)
    assert (row["channel_endpoint_address"], row["contact_endpoint_address"]) == ("111", "222")
    assert (row["agent_id"], row["direction"], row["interaction_id"]) == ("7", "OUTBOUND", "123")
    assert row["has_transcript"] is None  # the row does not say
    assert row["pause_problems"] == ["segmentEvents is null: no recorded interval is known"]


def test_hostile_vendor_text_stays_valid_bounded_json() -> None:
    hostile = {
        **ROW,
        "channelEndpointAddress": '+1 "202"\n555\r\n0143\u2028\x00',
        "agentDisposition": "x" * (MAX_TEXT * 50),
        "contactEndpointAddress": "\ud800lone surrogate",
        "segmentParticipantId": {"nested": ["object"]},
        "systemDisposition": "Ünïcødé ☎ \u202e",
        "segmentEvents": "not a list",
    }
    row = make_row(hostile)
    assert row["channel_endpoint_address"] == '+1 "202"\n555\r\n0143\u2028\x00'  # kept, JSON-escaped
    assert len(row["agent_disposition"]) == MAX_TEXT
    assert row["truncated_fields"] == ["agent_disposition"]
    assert row["contact_endpoint_address"] == "\ufffdlone surrogate"
    assert row["agent_id"] == '{"nested":["object"]}'
    assert row["pause_problems"]
    assert not row["pause_intervals"]
    body = encode_day([row])
    lines = gzip.decompress(body).decode("utf-8").splitlines()
    assert len(lines) == 1  # a newline in a value never splits a row
    assert json.loads(lines[0])["system_disposition"] == "Ünïcødé ☎ \u202e"
    assert decode_day(body, "s3://b/k") == [row]


def test_a_day_is_the_same_bytes_whatever_the_order_and_merge_keeps_the_latest_verdict() -> None:
    first = make_row()
    other = make_row(ref={**REF, "segment_id": "p-v-0", "end": "2026-03-02T14:00:01Z"})
    assert encode_day([first, other]) == encode_day([other, first])
    later = make_row(outcome="forbidden", reason="403", sha256=None)
    merged = merge([first, other], [later])
    assert len(merged) == 2
    assert {r["segment_id"]: r["outcome"] for r in merged} == {"p-v-1": "forbidden", "p-v-0": "archived"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not gzip at all", "is not gzip"),
        (gzip.compress(b'{"dialog_id":"d","segment_id":"s"}\n' * 50)[:-12], "truncated"),
        (
            gzip.compress(b'{"dialog_id":"d","segment_id":"s"}\n{"dialog_id": "d", "segm'),
            "line 2 is not JSON",
        ),
        (gzip.compress(b'{"dialog_id":"d"}\n'), "line 1 is not a segment row"),
        (gzip.compress(b"[1, 2]\n"), "line 1 is not a segment row"),
    ],
)
def test_a_corrupted_index_object_names_its_key_and_how_to_rebuild(body: bytes, says: str) -> None:
    where = "s3://bucket/ringcx/_index/sub_account=1/date=2026-03-02/segments.jsonl.gz"
    with pytest.raises(IndexCorruptError) as caught:
        decode_day(body, where)
    message = str(caught.value)
    assert says in message
    assert where in message
    assert "index rebuild" in message
    assert "--day YYYY-MM-DD" in message


def test_index_keys_are_hive_partitions_of_sub_account_and_date() -> None:
    assert keys.index_key("ringcx/", "99999999", date(2026, 3, 2)) == (
        "ringcx/_index/sub_account=99999999/date=2026-03-02/segments.jsonl.gz"
    )
    assert keys.index_key("", "a/b", date(2026, 3, 2)).startswith("_index/sub_account=a%2Fb/date=")
    assert keys.index_prefix("ringcx") == "ringcx/_index/"


def test_the_shipped_athena_script_is_the_generated_one() -> None:
    shipped = Path(__file__).parents[2] / "docs" / "athena" / "ringcx_index.sql"
    assert shipped.read_text("utf-8") == sql.athena_script("YOUR-BUCKET", "ringcx", ["99999999"])
    ddl = sql.athena_ddl("b", "p", ["1", "2"])
    assert "'projection.sub_account.values' = '1,2'" in ddl
    assert "'storage.location.template' = 's3://b/p/_index/sub_account=${sub_account}/date=${date}/'" in ddl
    assert "PARTITIONED BY (sub_account string, `date` string)" in ddl
    for name in COLUMN_NAMES:
        assert f"\n  {name} " in ddl


def _write(root: Path, day: date, rows: list[dict]) -> None:
    target = root / keys.index_key("", "99999999", day)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(encode_day(rows))


def test_duckdb_reads_the_days_with_hive_partitions_and_runs_the_example_queries(tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    ani = '+1 "202"\n555-0143'
    calls = [
        make_row({**ROW, "channelEndpointAddress": ani}),
        make_row({**ROW, "dialogOrigination": "OUTBOUND", "segmentParticipantId": "1"},
                 {**REF, "segment_id": "p-v-2"}, outcome="missing", reason="404 from RingCX"),
        make_row({**ROW, "contactEndpointAddress": ani},
                 {**REF, "dialog_id": "s-v-9", "end": "2026-04-01T00:00:01Z"}),
    ]  # fmt: skip
    _write(tmp_path, date(2026, 3, 2), calls[:2])
    _write(tmp_path, date(2026, 4, 1), calls[2:])
    _write(tmp_path, date(2026, 3, 3), [])  # an empty day changes no column's type
    march = {"month_start": date(2026, 3, 1), "month_end": date(2026, 4, 1)}
    found = sql.duckdb_query(str(tmp_path), sql.DUCKDB_QUERIES["calls_with_number"], {"number": ani, **march})
    assert [(r[0], r[3], r[7]) for r in found] == [(date(2026, 3, 2), ani, "p-v-1")]
    agent = sql.duckdb_query(str(tmp_path), sql.DUCKDB_QUERIES["agent_recordings"], {"agent": "449438"})
    assert [(r[4], r[5], r[8]) for r in agent] == [("s-v-1", "p-v-1", 1), ("s-v-9", "p-v-1", 1)]
    missing = sql.duckdb_query(str(tmp_path), sql.DUCKDB_QUERIES["not_archived"])
    assert [(r[1], r[2], r[4]) for r in missing] == [("missing", "404 from RingCX", "p-v-2")]
    per_direction = sql.duckdb_query(
        str(tmp_path), sql.DUCKDB_QUERIES["calls_per_direction"], {"window": WHERE["archive_window"]}
    )
    assert per_direction == [("99999999", "INBOUND", 2, 2), ("99999999", "OUTBOUND", 1, 0)]
    typed = sql.duckdb_query(
        str(tmp_path), "SELECT pause_intervals[1].start_time, sub_account FROM {table} LIMIT 1"
    )
    assert typed == [("2026-03-02T14:02:00Z", "99999999")]
