"""Deterministic traffic and the acceptance criterion (one hour at 300 calls/hour, over HTTP)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from itertools import pairwise

import requests

from ringcx_simulator.config import SimConfig
from ringcx_simulator.traffic import HOUR_MS, TrafficGenerator
from tests.simulator.helpers import bearer, get_recording, login, post_metadata, validate, wav_info

HOUR = ("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z")
HOUR_START_MS = 1772460000000  # 2026-03-02T14:00:00Z


def test_one_hour_at_300_calls_serves_300_valid_segments(make_simulator):
    """Acceptance: >= 300 segments whose metadata validates against the vendor schema and whose WAVs parse."""
    sim = make_simulator(calls_per_hour=300)
    token = login(sim.url)["accessToken"]
    rows = post_metadata(sim, token).json()
    validate(rows, "WEMInteractionSegmentMetaData2Array")
    truth = {(t["dialogId"], t["segmentId"]): t for t in sim.control.ground_truth(*HOUR)}
    recorded = [row for row in rows if row["hasRecording"]]
    assert len(rows) >= 300
    assert len(recorded) >= 300
    session = requests.Session()
    for row in recorded:
        url = sim.url + sim.recording_path(row["dialogId"], row["segmentId"])
        response = session.get(url, headers=bearer(token), timeout=30)
        assert response.status_code == 200, row["segmentId"]
        expected = truth[(row["dialogId"], row["segmentId"])]
        channels, rate, width, frames = wav_info(response.content)
        assert (channels, rate, width) == (expected["channels"], 8000, 2)
        assert frames * 1000 // rate == row["segmentDurationMs"]
        assert hashlib.sha256(response.content).hexdigest() == expected["sha256"]


def test_same_seed_same_bytes_other_seed_other_data(make_simulator):
    one, two = make_simulator(seed=5), make_simulator(seed=5)
    truth_one = one.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T14:10:00Z")
    assert truth_one == two.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T14:10:00Z")
    entry = next(t for t in truth_one if t["hasRecording"])
    bodies = [
        get_recording(sim, login(sim.url)["accessToken"], entry["dialogId"], entry["segmentId"]).content
        for sim in (one, two)
    ]
    assert bodies[0] == bodies[1]
    other = make_simulator(seed=6).control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T14:10:00Z")
    assert {t["segmentId"] for t in other}.isdisjoint({t["segmentId"] for t in truth_one})


def test_every_recording_has_a_distinct_checksum(simulator):
    recorded = [t for t in simulator.control.ground_truth(*HOUR) if t["hasRecording"]]
    assert len({t["sha256"] for t in recorded}) == len(recorded)


def test_exact_dialog_count_per_hour_and_transfers():
    generator = TrafficGenerator(SimConfig(calls_per_hour=300, duration_scale=0.02))
    bucket = generator.bucket("99999999", HOUR_START_MS // HOUR_MS)
    dialogs = defaultdict(list)
    for segment in bucket:
        dialogs[segment.dialog_id].append(segment)
    assert len(dialogs) == 300
    transferred = [legs for legs in dialogs.values() if len(legs) > 1]
    assert transferred
    for legs in transferred:
        assert len({leg.segment_id for leg in legs}) == len(legs)
        assert all(a.participant_id != b.participant_id for a, b in pairwise(legs))
        assert all(a.end_ms < b.start_ms for a, b in pairwise(legs))
        assert {leg.interaction_id for leg in legs} == {legs[0].interaction_id}
        assert legs[0].agent_disposition == "Transferred"
    for legs in dialogs.values():
        for leg in legs:
            assert leg.dialog_start_ms < leg.start_ms <= leg.end_ms <= leg.dialog_end_ms
            if leg.has_recording:
                assert leg.events[0] == (leg.start_ms, "REC_START")
                assert leg.events[-1] == (leg.end_ms, "REC_STOP")


def test_durations_follow_the_knobs():
    real = TrafficGenerator(SimConfig(min_duration=30, max_duration=60))
    durations = [s.duration_ms for s in real.bucket("99999999", 490000)]
    assert min(durations) >= 30_000
    assert max(durations) <= 60_000
    scaled = TrafficGenerator(SimConfig(min_duration=30, max_duration=60, duration_scale=0.01))
    assert max(s.duration_ms for s in scaled.bucket("99999999", 490000)) <= 600


def test_share_knobs_do_not_move_ids():
    base = TrafficGenerator(SimConfig(duration_scale=0.02)).bucket("99999999", 490000)
    other = TrafficGenerator(SimConfig(duration_scale=0.02, mono_share=0.9, restricted_share=0.5)).bucket(
        "99999999", 490000
    )
    assert [s.key for s in base] == [s.key for s in other]
    assert sum(s.channels == 1 for s in other) > sum(s.channels == 1 for s in base)
    assert any(s.restricted for s in other)


def test_find_by_ids_and_sub_accounts_differ():
    generator = TrafficGenerator(SimConfig(duration_scale=0.02))
    segment = generator.bucket("99999999", 490000)[5]
    assert generator.find("99999999", segment.dialog_id, segment.segment_id) == segment
    assert generator.find("88888888", segment.dialog_id, segment.segment_id) is None
    assert generator.find("99999999", "no-digits-here", segment.segment_id) is None


def test_window_spanning_buckets_includes_segments_from_dialogs_started_earlier():
    generator = TrafficGenerator(SimConfig())  # real durations: dialogs cross hour boundaries
    start = HOUR_START_MS
    segments = generator.segments_ending("99999999", start, start + 600_000)
    assert any(s.dialog_start_ms < start for s in segments)
    assert all(start <= s.end_ms < start + 600_000 for s in segments)


def test_traffic_range_bounds_dialog_starts():
    generator = TrafficGenerator(
        SimConfig(traffic_start="2026-03-02T14:30:00Z", traffic_end="2026-03-02T14:40:00Z")
    )
    starts = [s.dialog_start_ms for s in generator.bucket("99999999", HOUR_START_MS // HOUR_MS)]
    assert starts
    assert min(starts) >= HOUR_START_MS + 1_800_000
    assert max(starts) < HOUR_START_MS + 2_400_000
