"""The ``/_sim/`` control API and the in-process server object."""

from __future__ import annotations

import time

import pytest
import requests

from ringcx_simulator import SimConfig, SimulatorServer
from ringcx_simulator.clock import SimClock
from tests.simulator.helpers import login, post_metadata


@pytest.mark.integration  # starts its own servers
def test_server_context_manager_picks_a_free_port():
    with SimulatorServer(SimConfig()) as one, SimulatorServer(SimConfig()) as two:
        assert one.port != two.port
        assert requests.get(one.url + "/_sim/health", timeout=5).json()["status"] == "ok"
    with pytest.raises(requests.ConnectionError):
        requests.get(one.url + "/_sim/health", timeout=2)


def test_ground_truth_shape(simulator):
    truth = simulator.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T14:05:00Z")
    assert truth
    keys = {"dialogId", "segmentId", "subAccountId", "segmentStartTimeMs", "segmentEndTimeMs",
            "segmentDurationMs", "hasRecording", "restricted", "channels", "sample_rate", "size", "sha256",
            "processing", "path"}  # fmt: skip
    assert keys <= set(truth[0])
    assert all(
        "2026-03-02T14:00:00.000Z" <= t["segmentEndTimeMs"] < "2026-03-02T14:05:00.000Z" for t in truth
    )
    recorded = next(t for t in truth if t["hasRecording"])
    assert len(recorded["sha256"]) == 64
    assert recorded["size"] == 44 + recorded["segmentDurationMs"] * 8 * 2 * recorded["channels"]


def test_ground_truth_rejects_bad_instants(simulator):
    response = requests.get(
        simulator.url + "/_sim/ground-truth", params={"start": "x", "end": "y"}, timeout=5
    )
    assert response.status_code == 400


def test_ground_truth_covers_every_sub_account(make_simulator):
    sim = make_simulator(sub_account_ids="1,2")
    truth = sim.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T14:05:00Z", sha256=False)
    assert {t["subAccountId"] for t in truth} == {"1", "2"}
    only = sim.control.ground_truth(
        "2026-03-02T14:00:00Z", "2026-03-02T14:05:00Z", sub_account_id="2", sha256=False
    )
    assert {t["subAccountId"] for t in only} == {"2"}


def test_segment_injection_validation_and_clearing(simulator):
    bad = requests.post(simulator.url + "/_sim/segments", json=[{"dialogId": "d"}], timeout=5)
    assert bad.status_code == 400
    assert "segmentId" in bad.text
    added = simulator.control.add_segments(
        [{"dialogId": "d", "segmentId": "s", "segmentEndTimeMs": 1772460001000, "hasRecording": False}]
    )
    assert added[0]["injected"] is True
    assert added[0]["sha256"] is None
    truth = simulator.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T14:00:02Z")
    assert ("d", "s") in {(t["dialogId"], t["segmentId"]) for t in truth}
    simulator.control.clear_segments()
    truth = simulator.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T14:00:02Z")
    assert ("d", "s") not in {(t["dialogId"], t["segmentId"]) for t in truth}


def test_stats_count_requests_per_route_and_status(simulator):
    token = login(simulator.url)["accessToken"]
    post_metadata(simulator, token)
    post_metadata(simulator, "bad")
    stats = simulator.control.stats()
    assert stats["requests"]["metadata"] == {"200": 1, "401": 1}
    assert stats["requests"]["oauth"] == {"200": 1}
    assert stats["bytes_sent"]["metadata"] > 0
    simulator.control.reset_stats()
    assert simulator.control.stats()["requests"] == {}


def test_reset_budgets(make_simulator):
    sim = make_simulator(metadata_budget="1/3600")
    token = login(sim.url)["accessToken"]
    assert [post_metadata(sim, token).status_code for _ in range(2)] == [200, 429]
    sim.control.reset_budgets()
    assert post_metadata(sim, token).status_code == 200


def test_clock_scale_and_pin():
    clock = SimClock(time_scale=100)
    before = clock.elapsed()
    time.sleep(0.05)
    assert clock.elapsed() - before >= 4.5
    clock.configure(1.0, "2026-03-02T15:00:00Z")
    assert clock.now().isoformat() == "2026-03-02T15:00:00+00:00"
    frozen = clock.elapsed()
    assert clock.elapsed() >= frozen  # never jumps backwards across a scale change
    assert clock.to_real(60) == 60
