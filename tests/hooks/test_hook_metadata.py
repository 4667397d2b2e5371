"""iter_interaction_metadata against the simulator: completeness vs ground truth, DST, pacing, the vendor
request schema, bad payloads, lenient rows and dedupe."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from airflow_provider_ringcx.exceptions import (
    RingCXBadPayloadError,
    RingCXRateLimitedError,
    RingCXWindowNotReadyError,
)
from tests.hooks.helpers import OffsetClock, past_hour, truth_keys

SPEC = Path("/work/shared/vendor/ringcx-openapi-subset.json")


def request_schema() -> dict:
    spec = json.loads(SPEC.read_text())
    return {**spec["components"]["schemas"]["InteractionMetadataRequest"], "components": spec["components"]}


def capture_bodies(hook) -> list[dict]:
    """Record the JSON bodies the hook really sent (a response hook on its requests.Session)."""
    bodies: list[dict] = []

    def record(response, *args, **kwargs):
        if response.request.path_url.endswith("/interaction-metadata"):
            bodies.append(json.loads(response.request.body))

    hook.http.session.hooks["response"].append(record)
    return bodies


def test_matches_ground_truth_and_request_bodies_validate(simulator, connect):
    hook = connect(simulator, timezone="US/Eastern", max_window_seconds=1800)
    bodies = capture_bodies(hook)
    start, end = past_hour(2)
    end += timedelta(hours=1)
    records = list(hook.iter_interaction_metadata(start, end))
    truth = simulator.control.ground_truth(start, end, sha256=False)
    assert {r.key for r in records} == truth_keys(truth)
    assert len(records) == len(truth)
    assert len(bodies) == 4
    if SPEC.exists():
        for body in bodies:
            jsonschema.validate(body, request_schema())
    for body in bodies:
        assert set(body) == {"segmentEndTime", "timeInterval", "timeZone"}
        datetime.strptime(body["segmentEndTime"], "%Y-%m-%d %H:%M:%S")
        assert body["timeZone"] == "US/Eastern"


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        ("2026-03-09T12:00:00Z", "2026-03-08T04:00:00Z", "2026-03-08T10:00:00Z"),  # spring forward
        ("2026-11-02T12:00:00Z", "2026-11-01T03:30:00Z", "2026-11-01T08:30:00Z"),  # fall back
    ],
)
@pytest.mark.parametrize("max_window", [3600, 10800])
def test_dst_transitions_lose_and_duplicate_nothing(make_simulator, connect, now, start, end, max_window):
    sim = make_simulator(now=now, calls_per_hour=120)
    hook = connect(sim, timezone="US/Eastern", max_window_seconds=max_window)
    bodies = capture_bodies(hook)
    lo, hi = datetime.fromisoformat(start), datetime.fromisoformat(end)
    records = list(hook.iter_interaction_metadata(lo, hi))
    truth = sim.control.ground_truth(lo, hi, sha256=False)
    assert len(truth) > 300
    assert len(records) == len({r.key for r in records})
    assert {r.key for r in records} == truth_keys(truth)
    assert all(lo <= r.segment_end < hi for r in records if r.segment_end)
    for body in bodies:
        jsonschema.validate(body, request_schema())


def test_window_ending_less_than_5_minutes_ago_is_refused_without_a_call(simulator, connect):
    hook = connect(simulator)
    end = datetime.now(timezone.utc) - timedelta(minutes=2)
    with pytest.raises(RingCXWindowNotReadyError) as info:
        list(hook.iter_interaction_metadata(end - timedelta(hours=1), end))
    assert info.value.ready_at == end + timedelta(minutes=5)
    assert "metadata" not in simulator.control.stats()["requests"]


def test_pacing_keeps_back_to_back_calls_under_the_budget(make_simulator, connect):
    """Vendor budget 2/60 s and 9/900 s at time scale 60 = 2 per real second and 9 per 15 s; the
    connection's matching budget spaces 3 back-to-back windows so that none is throttled."""
    sim = make_simulator(metadata_budget="2/60,9/900", time_scale=60)
    hook = connect(sim, metadata_budget="2/1,9/15", max_window_seconds=600, retry_attempts=1)
    start, _end = past_hour()
    began = time.monotonic()
    records = list(hook.iter_interaction_metadata(start, start + timedelta(minutes=30)))
    elapsed = time.monotonic() - began
    stats = sim.control.stats()
    assert stats["requests"]["metadata"] == {"200": 3}
    assert not stats["rate_limited"]
    assert elapsed >= 1.0  # the third call waited for the first to leave the 1 s window
    assert records


def test_without_pacing_the_same_calls_are_throttled(make_simulator, connect):
    """Control for the test above: the simulator really enforces the budget."""
    sim = make_simulator(
        metadata_budget="2/60,9/900", time_scale=6
    )  # a 10 s window: robust to a slow, loaded machine
    hook = connect(sim, metadata_budget="off", max_window_seconds=600, retry_attempts=1)
    start, _ = past_hour()
    with pytest.raises(RingCXRateLimitedError):
        list(hook.iter_interaction_metadata(start, start + timedelta(minutes=30)))
    assert sim.control.stats()["requests"]["metadata"].get("429") == 1


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("html200", "HTML page"),
        ("json_object", "JSON object"),
        ("malformed_json", "malformed JSON|truncated|not JSON|expected ','"),
    ],
)
def test_bad_payloads_raise_naming_the_window(simulator, connect, kind, message):
    hook = connect(simulator)
    simulator.control.set_faults([{"route": "metadata", "kind": kind, "times": 1}])
    start, end = past_hour()
    with pytest.raises(RingCXBadPayloadError, match=message) as info:
        list(hook.iter_interaction_metadata(start, end))
    text = str(info.value)
    assert "window" in text
    assert "interaction-metadata" in text
    assert "Bearer" not in text


@pytest.mark.parametrize(
    "knobs",
    [
        {"segment_id_field": "segmentID"},
        {"numeric_ids": True},
        {"null_fields": True},
        {"extra_fields": True},
    ],
)
def test_lenient_row_variants(make_simulator, connect, knobs):
    sim = make_simulator(**knobs)
    hook = connect(sim)
    start, end = past_hour()
    records = list(hook.iter_interaction_metadata(start, end))
    assert {r.key for r in records} == truth_keys(sim.control.ground_truth(start, end, sha256=False))


def test_unparseable_rows_go_to_on_invalid_or_raise(simulator, connect):
    start, end = past_hour()
    when = start + timedelta(minutes=10)
    simulator.control.add_segments(
        [
            {
                "dialogId": "d-bad",
                "segmentId": "s-bad",
                "segmentEndTimeMs": when.isoformat(),
                "fields": {"segmentStartTimeMs": "not a time"},
            }
        ]
    )
    hook = connect(simulator)
    invalid: list[tuple[str, RingCXBadPayloadError]] = []
    records = list(
        hook.iter_interaction_metadata(start, end, on_invalid=lambda raw, err: invalid.append((raw, err)))
    )
    assert len(invalid) == 1
    raw, err = invalid[0]
    assert '"s-bad"' in raw
    assert "not a time" in raw
    assert "cannot be parsed" in str(err)
    assert ("d-bad", "s-bad") not in {r.key for r in records}
    with pytest.raises(RingCXBadPayloadError, match="d-bad"):
        list(hook.iter_interaction_metadata(start, end))


def test_boundary_segments_are_yielded_once(simulator, connect):
    start, end = past_hour()
    boundary = start + timedelta(minutes=10)  # a window boundary with max_window_seconds=600
    simulator.control.add_segments(
        [
            {"dialogId": "d-edge", "segmentId": "s-at-boundary", "segmentEndTimeMs": boundary.isoformat()},
            {"dialogId": "d-edge", "segmentId": "s-at-start", "segmentEndTimeMs": start.isoformat()},
            {"dialogId": "d-edge", "segmentId": "s-at-end", "segmentEndTimeMs": end.isoformat()},
        ]
    )
    hook = connect(simulator, max_window_seconds=600)
    keys = [r.key for r in hook.iter_interaction_metadata(start, end)]
    assert len(keys) == len(set(keys))
    assert ("d-edge", "s-at-boundary") in keys
    assert ("d-edge", "s-at-start") in keys
    assert ("d-edge", "s-at-end") not in keys  # [start, end) is half-open


def test_large_window_is_streamed(make_simulator, connect):
    """A dense window (~3 MB of JSON) in one request, parsed as it streams (memory bound: test_jsonstream)."""
    sim = make_simulator(calls_per_hour=2000)
    hook = connect(sim, max_window_seconds=10800, clock=OffsetClock())
    start, end = past_hour()
    count = sum(1 for _ in hook.iter_interaction_metadata(start, end))
    assert count == len(sim.control.ground_truth(start, end, sha256=False)) > 2500
