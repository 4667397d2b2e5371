"""Bulk segments (``bulk_segments`` and friends, ``simulator/bulk.py``): a window of 100,000 recorded
segments, served as streamed vendor rows; recordings that download and match the ground truth.

No test here asserts a duration (the cost is noted in docs/local-stack.md, not gated)."""

from __future__ import annotations

import hashlib
import json

import pytest
import requests

from ringcx_simulator import SimConfig
from ringcx_simulator.bulk import BulkSegments
from tests.simulator.helpers import get_recording, login, post_metadata, validate, wav_info

START, END = "2026-03-02T14:00:00Z", "2026-03-02T14:15:00Z"
QUARTER = {"segmentEndTime": "2026-03-02 14:00:00", "timeInterval": 900, "timeZone": "UTC"}
NO_TRAFFIC = "2026-03-01T00:00:00Z"  # traffic_end: no generated dialog in the bulk window


def _rows(sim, token, body=QUARTER, **kwargs):
    response = post_metadata(sim, token, body, stream=True, **kwargs)
    assert response.status_code == 200, response.text
    return response, json.loads(response.content)


def _read_json(response, into: bytearray):
    for chunk in response.iter_content(65536):
        into += chunk
    return json.loads(into)


def test_a_window_of_100k_bulk_rows_is_streamed_and_schema_valid(make_simulator):
    sim = make_simulator(bulk_segments=100_000, traffic_end=NO_TRAFFIC)
    token = login(sim.url)["accessToken"]
    response, rows = _rows(sim, token)
    assert response.headers["content-type"] == "application/json"
    assert "content-length" not in response.headers  # streamed in chunks, never built whole
    assert response.headers["transfer-encoding"] == "chunked"
    assert len(rows) == 100_000
    assert len({row["segmentId"] for row in rows}) == 100_000
    assert all(row["hasRecording"] is True for row in rows)
    ends = [row["segmentEndTimeMs"] for row in rows]
    assert ends == sorted(ends)
    assert ends[0] >= "2026-03-02T14:00:00.000Z"
    assert ends[-1] < "2026-03-02T14:15:00.000Z"
    sample = [*rows[::5000], rows[-1]]
    validate(sample, "WEMInteractionSegmentMetaData2Array")
    assert rows[0]["dialogId"] == "s-v-bulk-00000000"
    assert rows[-1]["segmentId"] == "p-v-bulk-00099999-01"
    assert [e["eventType"] for e in rows[-1]["segmentEvents"]] == ["REC_START", "REC_STOP"]
    stats = sim.control.stats()
    assert stats["bytes_sent"]["metadata"] == len(response.content)


def test_bulk_rows_merge_with_generated_traffic_in_end_order(make_simulator):
    sim = make_simulator(calls_per_hour=60, bulk_segments=500)
    token = login(sim.url)["accessToken"]
    _, rows = _rows(sim, token)
    truth = sim.control.ground_truth(START, END, sha256=False)
    assert [(r["dialogId"], r["segmentId"]) for r in rows] == [(t["dialogId"], t["segmentId"]) for t in truth]
    bulk = [r for r in rows if r["dialogId"].startswith("s-v-bulk-")]
    assert len(bulk) == 500
    assert len(rows) > 500
    keys = [(r["segmentEndTimeMs"], r["dialogId"], r["segmentId"]) for r in rows]
    assert keys == sorted(keys)


def test_bulk_windows_tile_without_gaps_or_overlaps(make_simulator):
    sim = make_simulator(bulk_segments=1000, bulk_span=600, traffic_end=NO_TRAFFIC)
    token = login(sim.url)["accessToken"]
    seen: list[str] = []
    for minute in range(16):  # 14:00 .. 14:15 in one-minute windows; the bulk spans 14:00-14:10
        body = {"segmentEndTime": f"2026-03-02 14:{minute:02d}:00", "timeInterval": 60, "timeZone": "UTC"}
        seen += [row["segmentId"] for row in post_metadata(sim, token, body).json()]
    assert len(seen) == len(set(seen)) == 1000
    before = {"segmentEndTime": "2026-03-02 13:00:00", "timeInterval": 3600, "timeZone": "UTC"}
    assert post_metadata(sim, token, before).json() == []


def test_bulk_index_arithmetic_matches_the_documented_rule():
    config = SimConfig(bulk_segments=7, bulk_span=1.0, bulk_start="2026-03-02T14:00:00Z")
    bulk = BulkSegments(config)
    start = bulk.start_ms
    ends = [bulk.end_ms(i) for i in range(7)]
    assert ends == [start + i * 1000 // 7 for i in range(7)]
    sub = config.sub_account_ids[0]
    for lo in range(start - 2, start + 1003):
        for width in (1, 142, 143, 500):
            expected = [i for i, end in enumerate(ends) if lo <= end < lo + width]
            assert list(bulk.indexes(sub, lo, lo + width)) == expected, (lo, width)
    assert not bulk.indexes("another-sub-account", start, start + 1000)


def test_bulk_recordings_download_and_match_the_ground_truth(make_simulator):
    sim = make_simulator(bulk_segments=2000, traffic_end=NO_TRAFFIC)
    token = login(sim.url)["accessToken"]
    truth = sim.control.ground_truth(START, END)
    assert len(truth) == 2000
    assert len({t["sha256"] for t in truth}) == 2000  # one shared tone, still unique checksums
    for entry in truth[:: 2000 // 8]:
        assert entry["hasRecording"]
        assert (entry["restricted"], entry["processing"]) == (False, False)
        response = get_recording(sim, token, entry["dialogId"], entry["segmentId"])
        assert response.status_code == 200
        assert len(response.content) == entry["size"] == 44 + 100 * 8 * 2  # 100 ms mono by default
        assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]
        assert wav_info(response.content) == (1, 8000, 2, 800)


def test_bulk_ground_truth_can_skip_checksums(make_simulator):
    sim = make_simulator(bulk_segments=20_000, bulk_duration_ms=2000, traffic_end=NO_TRAFFIC)
    truth = sim.control.ground_truth(START, END, sha256=False)
    assert len(truth) == 20_000
    assert {t["sha256"] for t in truth} == {None}
    assert {t["size"] for t in truth} == {44 + 2000 * 16}


@pytest.mark.parametrize(
    ("dialog", "segment"),
    [
        ("s-v-bulk-00000010", "p-v-bulk-00000011-01"),  # ids of two different segments
        ("s-v-bulk-00000500", "p-v-bulk-00000500-01"),  # index past the count
        ("s-v-bulk-10", "p-v-bulk-10-01"),  # not the 8-digit form
    ],
)
def test_unknown_bulk_ids_are_404(make_simulator, dialog, segment):
    sim = make_simulator(bulk_segments=500, traffic_end=NO_TRAFFIC)
    token = login(sim.url)["accessToken"]
    assert get_recording(sim, token, "s-v-bulk-00000010", "p-v-bulk-00000010-01").status_code == 200
    assert get_recording(sim, token, dialog, segment).status_code == 404


def test_bulk_segments_can_be_switched_at_runtime(simulator, token):
    baseline = len(post_metadata(simulator, token, QUARTER).json())
    simulator.control.patch_config(bulk_segments=250, bulk_start="2026-03-02T14:05:00Z", bulk_span=60)
    rows = post_metadata(simulator, token, QUARTER).json()
    assert len(rows) == baseline + 250
    bulk_ends = {r["segmentEndTimeMs"][:16] for r in rows if r["dialogId"].startswith("s-v-bulk-")}
    assert bulk_ends == {"2026-03-02T14:05"}
    simulator.control.patch_config(bulk_segments=0)
    assert len(post_metadata(simulator, token, QUARTER).json()) == baseline


def test_bulk_segments_still_processing_are_hidden(make_simulator):
    # the window 14:00-14:15 ended 10 minutes ago: bulk segments that ended after 14:10 are still processing
    sim = make_simulator(bulk_segments=900, now="2026-03-02T14:25:00Z", traffic_end=NO_TRAFFIC)
    token = login(sim.url)["accessToken"]
    _, rows = _rows(sim, token)
    truth = sim.control.ground_truth(START, END, sha256=False)
    visible = [t for t in truth if not t["processing"]]
    assert len(truth) == 900
    assert len(rows) == len(visible) == 601  # one segment a second, 14:00:00 .. 14:10:00 inclusive
    hidden = next(t for t in truth if t["processing"])
    assert get_recording(sim, token, hidden["dialogId"], hidden["segmentId"]).status_code == 404


def test_stream_faults_cut_a_bulk_response(make_simulator):
    sim = make_simulator(bulk_segments=5000, traffic_end=NO_TRAFFIC)
    token = login(sim.url)["accessToken"]
    sim.control.set_faults([{"route": "metadata", "kind": "truncate", "after_bytes": 100_000, "times": 1}])
    response = post_metadata(sim, token, QUARTER, stream=True)
    received = bytearray()
    with pytest.raises((requests.exceptions.ChunkedEncodingError, ValueError)):  # cut mid-body
        _read_json(response, received)
    assert len(received) <= 100_000
    sim.control.set_faults([{"route": "metadata", "kind": "json_object", "times": 1}])
    wrapped = post_metadata(sim, token, QUARTER).json()
    assert set(wrapped) == {"status", "data"}
    assert len(wrapped["data"]) == 5000
    assert len(post_metadata(sim, token, QUARTER).json()) == 5000


@pytest.mark.parametrize(
    ("knob", "value"),
    [("bulk_segments", -1), ("bulk_span", 0), ("bulk_duration_ms", 0), ("bulk_start", "soon")],
)
def test_bad_bulk_knobs_are_rejected(knob, value):
    with pytest.raises(ValueError, match="bulk"):
        SimConfig().replace(**{knob: value})
