"""The simulator's transcript route over HTTP: deterministic kinds, late ones, hostile variants, auth, 403."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import requests

from tests.simulator.helpers import bearer

START, END = "2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z"


def _path(sim: Any, dialog_id: str, segment_id: str) -> str:
    config = sim.config
    return (
        f"/voice/api/cx/integration/v1/accounts/{config.rc_account_id}/sub-accounts/{sim.sub_account_id}"
        f"/transcripts/dialogs/{quote(dialog_id, safe='')}/segments/{quote(segment_id, safe='')}"
    )


def _get(sim: Any, token: str, truth: dict[str, Any]) -> requests.Response:
    return requests.get(
        sim.url + _path(sim, truth["dialogId"], truth["segmentId"]), headers=bearer(token), timeout=30
    )


def test_kinds_are_deterministic_and_served_as_listed(make_simulator: Any) -> None:
    sim = make_simulator(transcript_hostile_share=0.3, now="2026-03-02T15:00:00Z")
    from tests.simulator.helpers import login

    token = str(login(sim.url)["accessToken"])
    truth = sim.control.ground_truth(START, END, sha256=False)
    again = sim.control.ground_truth(START, END, sha256=False)
    assert [t["transcript"] for t in truth] == [t["transcript"] for t in again]
    kinds = {t["transcript"] for t in truth}
    assert {"none", "ok", "missing", "late"} <= kinds
    assert kinds & {"malformed", "huge", "wrong_ids", "array"}
    seen: set[str] = set()
    for entry in truth:
        kind = entry["transcript"]
        if kind in seen and kind != "ok":
            continue
        seen.add(kind)
        response = _get(sim, token, entry)
        if kind in ("none", "missing", "late"):  # late: ready 60 min after its end, after 15:00
            assert response.status_code == 404, kind
            assert "generalMessage" in response.json()
            continue
        assert response.status_code == 200, kind
        if kind == "malformed":
            try:
                json.loads(response.content)
            except ValueError:
                continue
            raise AssertionError("a malformed transcript parsed")
        body = response.json()
        if kind == "array":
            assert isinstance(body, list)
            continue
        if kind == "huge":
            assert len(response.content) > 9 * 1024 * 1024
        assert set(body) >= {"channelClass", "errorCode", "errorMessage", "transcript"}
        first = body["transcript"][0]
        assert set(first) == {
            "participantId",
            "participantType",
            "rcUserId",
            "participantName",
            "timestamp",
            "message",
        }
        assert first["timestamp"].isdigit()
        ids = (body["dialogId"], body["segmentId"])
        if kind == "wrong_ids":
            assert ids != (entry["dialogId"], entry["segmentId"])
        else:
            assert ids == (entry["dialogId"], entry["segmentId"])
            assert response.content == _get(sim, token, entry).content  # deterministic bytes


def test_late_transcript_is_ready_once_the_clock_passes_its_time(make_simulator: Any) -> None:
    sim = make_simulator(transcript_late_share=1.0, transcript_missing_share=0.0, now="2026-03-02T15:00:00Z")
    from tests.simulator.helpers import login

    token = str(login(sim.url)["accessToken"])
    late = next(t for t in sim.control.ground_truth(START, END, sha256=False) if t["transcript"] == "late")
    assert _get(sim, token, late).status_code == 404
    ready = datetime.fromisoformat(late["transcriptReadyTimeMs"].replace("Z", "+00:00"))
    sim.control.patch_config(now=(ready + timedelta(seconds=1)).astimezone(timezone.utc).isoformat())
    assert _get(sim, token, late).status_code == 200


def test_forced_variants_auth_and_restricted(make_simulator: Any) -> None:
    sim = make_simulator(now="2026-03-02T18:00:00Z", transcript_missing_share=0.0, transcript_late_share=0.0)
    from tests.simulator.helpers import login

    token = str(login(sim.url)["accessToken"])
    with_transcript = [t for t in sim.control.ground_truth(START, END, sha256=False) if t["hasTranscript"]]
    first, second = with_transcript[:2]
    sim.control.patch_config(
        transcript_variants=[f"{first['segmentId']}=malformed"], restricted_ids=[second["segmentId"]]
    )
    assert sim.control.ground_truth(START, END, sha256=False)[0] is not None
    assert _get(sim, token, first).status_code == 200
    denied = _get(sim, token, second)
    assert denied.status_code == 403
    assert denied.json()["errorCode"] == "access.denied.exception"
    anonymous = requests.get(sim.url + _path(sim, first["dialogId"], first["segmentId"]), timeout=30)
    assert anonymous.status_code == 401
    assert sim.control.stats()["requests"]["transcripts"]


def test_malformed_segment_events_are_deterministic_and_break_one_rule_each(make_simulator: Any) -> None:
    from airflow_provider_ringcx.pauses import compute_pause_evidence
    from tests.simulator.helpers import login, post_metadata

    sim = make_simulator(malformed_events_share=0.5)
    token = str(login(sim.url)["accessToken"])
    rows = post_metadata(sim, token).json()
    assert rows == post_metadata(sim, token).json()  # deterministic
    evidence = [compute_pause_evidence(r["segmentEvents"], has_recording=r["hasRecording"]) for r in rows]
    problems = " | ".join(p for e in evidence for p in e["problems"])
    for fragment in (
        "never stopped",
        "not in time order",
        "duplicates",
        "without a REC_START",
        "unknown eventType",
    ):
        assert fragment in problems, fragment
    assert any(e["paused"] and not e["problems"] for e in evidence)  # the well-formed pauses are still there
