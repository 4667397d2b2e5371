"""Knobs for hostile-input scenarios: injected rows that lack fields (``omit``), and ids that hold any
character (a newline included) on the recording route."""

from __future__ import annotations

import hashlib

import pytest
import requests

from tests.simulator.helpers import get_recording, login, post_metadata

END = "2026-03-02T14:00:01Z"


def test_injected_rows_can_omit_fields(make_simulator):
    sim = make_simulator(calls_per_hour=0)
    sim.control.add_segments(
        [
            {
                "dialogId": "d1",
                "segmentId": "s1",
                "segmentEndTimeMs": END,
                "omit": ["hasRecording", "dialogId"],
            },
            {"dialogId": "d2", "segmentId": "s2", "segmentEndTimeMs": END, "fields": {"hasRecording": None}},
            {"dialogId": "d3", "segmentId": "s3", "segmentEndTimeMs": END, "omit": ["noSuchField"]},
        ]
    )
    rows = {row["segmentId"]: row for row in post_metadata(sim, login(sim.url)["accessToken"]).json()}
    assert "hasRecording" not in rows["s1"]
    assert "dialogId" not in rows["s1"]
    assert rows["s1"]["segmentEndTimeMs"] == "2026-03-02T14:00:01.000Z"  # the rest of the row is intact
    assert rows["s2"]["hasRecording"] is None
    assert rows["s3"]["dialogId"] == "d3"
    # the ground truth keeps the segment as it really is: recorded, under its ids
    truth = {
        t["segmentId"]: t for t in sim.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T14:01:00Z")
    }
    assert truth["s1"]["hasRecording"] is True
    assert truth["s1"]["dialogId"] == "d1"


@pytest.mark.parametrize("omit", ["hasRecording", ["hasRecording", 3]])
def test_omit_must_be_a_list_of_field_names(simulator, omit):
    response = requests.post(
        simulator.url + "/_sim/segments",
        json=[{"dialogId": "d", "segmentId": "s", "segmentEndTimeMs": END, "omit": omit}],
        timeout=10,
    )
    assert response.status_code == 400
    assert "omit must be a list of field names" in response.text


@pytest.mark.parametrize("dialog_id", ["line\nbreak", "trailing\n", "cr\rlf\r\n", "nul\x00esc\x1b"])
def test_ids_with_control_characters_are_served(make_simulator, dialog_id):
    """``%0A`` in the dialog id (not only at the end of the path) still reaches the recording route."""
    sim = make_simulator(calls_per_hour=0)
    sim.control.add_segments([{"dialogId": dialog_id, "segmentId": "s\n1", "segmentEndTimeMs": END}])
    truth = sim.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T14:01:00Z")[0]
    response = get_recording(sim, login(sim.url)["accessToken"], dialog_id, "s\n1")
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == truth["sha256"]
