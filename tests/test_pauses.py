"""The pause-evidence rule, as a table: segmentEvents in, evidence out (unit tier, no peers)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_ringcx.models import SegmentRecord
from airflow_provider_ringcx.pauses import MAX_PROBLEMS, RULE, compute_pause_evidence


def ev(minute: int | None, kind: Any = "REC_START", second: int = 0) -> dict[str, Any]:
    when = None if minute is None else f"2026-03-02T14:{minute:02d}:{second:02d}.000Z"
    return {"eventTimeMs": when, "clientEventTimeMs": when, "eventType": kind}


def iv(a: int, b: int) -> dict[str, str]:
    return {"start": f"2026-03-02T14:{a:02d}:00Z", "end": f"2026-03-02T14:{b:02d}:00Z"}


S, P = "REC_START", "REC_STOP"

# (events, has_recording, recorded, paused, problem fragments in order)
CASES: dict[str, tuple[Any, bool | None, list[Any], list[Any], list[str]]] = {
    "one-pair": ([ev(1, S), ev(4, P)], True, [iv(1, 4)], [], []),
    "one-pause": ([ev(1, S), ev(2, P), ev(3, S), ev(5, P)], True, [iv(1, 2), iv(3, 5)], [iv(2, 3)], []),
    "two-pauses": (
        [ev(1, S), ev(2, P), ev(3, S), ev(4, P), ev(6, S), ev(7, P)],
        None,
        [iv(1, 2), iv(3, 4), iv(6, 7)],
        [iv(2, 3), iv(4, 6)],
        [],
    ),
    "pause-resume-spelling": (
        [ev(1, S), ev(2, "REC_PAUSE"), ev(3, "resume"), ev(5, P)],
        True,
        [iv(1, 2), iv(3, 5)],
        [iv(2, 3)],
        [],
    ),
    "zero-gap-is-no-pause": ([ev(1, S), ev(2, P), ev(2, S), ev(5, P)], True, [iv(1, 2), iv(2, 5)], [], []),
    "null": (None, True, [], [], ["segmentEvents is null"]),
    "null-unknown-recording": (None, None, [], [], ["segmentEvents is null"]),
    "null-not-recorded": (None, False, [], [], []),
    "empty": ([], True, [], [], ["segmentEvents is empty"]),
    "empty-not-recorded": ([], False, [], [], []),
    "not-an-array": ({"eventType": S}, True, [], [], ["JSON object, not an array"]),
    "a-string": ("REC_START", True, [], [], ["JSON string, not an array"]),
    "null-entry": ([ev(1, S), None, ev(4, P)], True, [iv(1, 4)], [], ["event 1 is null"]),
    "number-entry": ([ev(1, S), 7, ev(4, P)], True, [iv(1, 4)], [], ["event 1 is a JSON number"]),
    "unknown-type": ([ev(1, S), ev(2, "HOLD"), ev(4, P)], True, [iv(1, 4)], [], ["unknown eventType 'HOLD'"]),
    "null-type": ([ev(1, S), ev(2, None), ev(4, P)], True, [iv(1, 4)], [], ["unknown eventType None"]),
    "no-time": (
        [ev(1, S), ev(None, P), ev(4, P)],
        True,
        [iv(1, 4)],
        [],
        ["event 1 (REC_STOP) has no readable"],
    ),
    "garbage-time": (
        [ev(1, S), {"eventType": P, "eventTimeMs": "soon"}, ev(4, P)],
        True,
        [iv(1, 4)],
        [],
        ["no readable eventTimeMs ('soon')"],
    ),
    "client-time-not-used": (
        [ev(1, S), {"eventType": P, "clientEventTimeMs": "2026-03-02T14:02:00.000Z"}],
        True,
        [],
        [],
        ["event 1 (REC_STOP) has no readable", "never stopped"],
    ),
    "duplicate": ([ev(1, S), ev(1, S), ev(4, P)], True, [iv(1, 4)], [], ["event 1 duplicates"]),
    "out-of-order": (
        [ev(3, S), ev(5, P), ev(1, S), ev(2, P)],
        True,
        [iv(1, 2), iv(3, 5)],
        [iv(2, 3)],
        ["not in time order (event 2"],
    ),
    "begins-with-stop": (
        [ev(1, P), ev(2, S), ev(4, P)],
        True,
        [iv(2, 4)],
        [],
        ["event 0 REC_STOP", "without"],
    ),
    "unpaired-stop": ([ev(1, S), ev(2, P), ev(3, P)], True, [iv(1, 2)], [], ["event 2 REC_STOP"]),
    "double-start": ([ev(1, S), ev(2, S), ev(4, P)], True, [iv(1, 4)], [], ["event 1 REC_START", "since"]),
    "never-stopped": ([ev(1, S)], True, [], [], ["REC_START at 2026-03-02T14:01:00Z is never stopped"]),
    "pause-then-never-stopped": (
        [ev(1, S), ev(2, P), ev(3, S)],
        True,
        [iv(1, 2)],
        [iv(2, 3)],
        ["never stopped"],
    ),
    "epoch-ms-times": (
        [
            {"eventType": S, "eventTimeMs": 1772460060000},
            {"eventType": P, "eventTimeMs": "1772460240000"},
        ],
        True,
        [iv(1, 4)],
        [],
        [],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rule_table(name: str) -> None:
    events, has_recording, recorded, paused, fragments = CASES[name]
    evidence = compute_pause_evidence(events, has_recording=has_recording)
    assert evidence["rule"] == RULE
    assert evidence["recorded"] == recorded
    assert evidence["paused"] == paused
    joined = " | ".join(evidence["problems"])
    for fragment in fragments:
        assert fragment in joined, (fragment, evidence["problems"])
    if not fragments:
        assert evidence["problems"] == []
    assert json.loads(json.dumps(evidence)) == evidence  # JSON-ready as it is


def test_pure_and_input_untouched() -> None:
    events = [ev(3, S), ev(5, P), ev(1, S), ev(2, P)]
    before = json.dumps(events)
    assert compute_pause_evidence(events) == compute_pause_evidence(events)
    assert json.dumps(events) == before


def test_parsed_events_give_the_same_evidence() -> None:
    row = {
        "dialogId": "d",
        "segmentId": "s",
        "segmentStartTimeMs": "2026-03-02T14:01:00.000Z",
        "segmentEndTimeMs": "2026-03-02T14:05:00.000Z",
        "segmentEvents": [ev(1, S), ev(2, P), ev(3, S), ev(5, P)],
    }
    record = SegmentRecord.parse(row)
    assert compute_pause_evidence(record.events) == compute_pause_evidence(row["segmentEvents"])


def test_problems_are_capped_and_counted() -> None:
    evidence = compute_pause_evidence([None] * 1000 + [ev(1, S), ev(2, P)])
    assert evidence["recorded"] == [iv(1, 2)]
    assert len(evidence["problems"]) == MAX_PROBLEMS + 1
    assert evidence["problems"][-1] == f"... and {1000 - MAX_PROBLEMS} more problems"


def test_hostile_event_type_is_escaped_and_short() -> None:
    evidence = compute_pause_evidence([{"eventType": "\x1b[31m" + "A" * 5000, "eventTimeMs": "x"}])
    (problem,) = evidence["problems"][:1]
    assert "\x1b" not in problem
    assert len(problem) < 200
