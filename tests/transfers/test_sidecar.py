"""The sidecar's pause evidence and transcript reference, against its schema (unit tier, no peers)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_ringcx.pauses import RULE
from airflow_provider_ringcx.transfers.sidecar import (
    DownloadEvidence,
    SidecarInvalid,
    StoredRecording,
    build_sidecar,
    parse_sidecar,
)
from tests.fixtures.sidecars import WAV

REF = {"dialog_id": "d-1", "segment_id": "s-1", "start": "2026-03-02T14:01:00Z", "end": None}


def _doc(row: dict | None, **kwargs: object) -> dict:
    download = DownloadEvidence("a" * 64, 10, WAV, "/rec", 10, "audio/wav")
    return build_sidecar(
        REF,
        sub_account_id="99",
        row=row,
        download=download,
        stored=StoredRecording("b", "k.wav", None, "put", None, {}),
        manifest_key=None,
        **kwargs,  # type: ignore[arg-type]
    )


def _event(minute: int, kind: str) -> dict:
    return {"eventTimeMs": f"2026-03-02T14:0{minute}:00.000Z", "eventType": kind}


def test_pause_evidence_is_in_the_sidecar_and_valid() -> None:
    row = {"segmentEvents": [_event(1, "REC_START"), _event(2, "REC_STOP"), _event(3, "REC_START")]}
    document = parse_sidecar(json.dumps(_doc(row)).encode())
    assert document["pauses"]["rule"] == RULE
    assert document["pauses"]["recorded"] == [
        {"start": "2026-03-02T14:01:00Z", "end": "2026-03-02T14:02:00Z"}
    ]
    assert document["pauses"]["paused"] == [{"start": "2026-03-02T14:02:00Z", "end": "2026-03-02T14:03:00Z"}]
    assert any("never stopped" in problem for problem in document["pauses"]["problems"])


def test_null_events_and_unknown_row_are_problems_not_guesses() -> None:
    assert _doc({"segmentEvents": None})["pauses"]["problems"] == [
        "segmentEvents is null: no recorded interval is known"
    ]
    unknown = _doc(None)["pauses"]
    assert unknown["recorded"] == []
    assert "no vendor row" in unknown["problems"][0]


def test_transcript_reference_only_when_given() -> None:
    assert "transcript" not in _doc({})
    assert _doc({}, transcript_key="k.transcript.json")["transcript"] == {"key": "k.transcript.json"}


def test_sidecar_without_pauses_stays_valid_and_bad_pauses_are_refused() -> None:
    document = _doc({})
    del document["pauses"]
    parse_sidecar(json.dumps(document).encode())  # written before issue 17: still valid
    document["pauses"] = {"rule": RULE, "recorded": [{"start": "x"}], "paused": [], "problems": []}
    with pytest.raises(SidecarInvalid, match="pauses"):
        parse_sidecar(json.dumps(document).encode())


def test_summary_references_only_when_given_and_only_known_kinds() -> None:
    assert "summaries" not in _doc({})
    assert "summaries" not in _doc({}, summary_keys={})
    keys = {"agent": "k.summary.agent.json", "auto": "k.summary.auto.json"}
    document = _doc({}, summary_keys=keys)
    assert document["summaries"] == {kind: {"key": key} for kind, key in keys.items()}
    assert parse_sidecar(json.dumps(document).encode())["summaries"] == document["summaries"]
    with pytest.raises(SidecarInvalid):
        parse_sidecar(json.dumps({**document, "summaries": {"human": {"key": "k"}}}).encode())
