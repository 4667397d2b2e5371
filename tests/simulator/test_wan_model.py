"""The WAN model knobs: ``stream_rate`` paces each recording body on its own, ``download_latency`` delays
its first byte (real seconds; used by ``bench`` to make concurrency measurable on loopback)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ringcx_simulator.config import SimConfig
from tests.simulator.helpers import get_recording, login

RATE = 1_000_000  # bytes/s per response
LATENCY = 0.2
DURATION_MS = 12_500  # stereo 8 kHz 16 bit: 400 044 bytes -> 0.4 s at RATE


def _timed_download(sim, token: str, segment_id: str) -> tuple[float, int]:
    began = time.monotonic()
    response = get_recording(sim, token, "wan", segment_id)
    assert response.status_code == 200
    return time.monotonic() - began, len(response.content)


def test_each_body_is_paced_on_its_own_after_the_latency(make_simulator):
    sim = make_simulator(calls_per_hour=0, stream_rate=RATE, download_latency=LATENCY, chunk_size=32768)
    specs = [
        {"dialogId": "wan", "segmentId": f"s{n}", "segmentEndTimeMs": "2026-03-02T14:00:00Z",
         "segmentDurationMs": DURATION_MS, "channels": 2}
        for n in range(3)
    ]  # fmt: skip
    sizes = {seg["segmentId"]: seg["size"] for seg in sim.control.add_segments(specs)}
    token = login(sim.url)["accessToken"]
    alone, size = _timed_download(sim, token, "s0")
    assert size == sizes["s0"]
    expected = LATENCY + size / RATE  # 0.6 s
    assert expected * 0.95 <= alone < expected + 0.5
    # Two at once take about as long as one: the rate is per response, not shared (a blocking sleep in the
    # event loop would serialise them and take twice as long).
    began = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda seg: _timed_download(sim, token, seg), ["s1", "s2"]))
    assert all(seconds >= expected * 0.95 for seconds, _ in both)
    assert time.monotonic() - began < 2 * expected * 0.9


def test_defaults_are_unpaced_and_negative_values_are_refused():
    config = SimConfig()
    assert (config.stream_rate, config.download_latency) == (0.0, 0.0)
    for knob in ("stream_rate", "download_latency"):
        with pytest.raises(ValueError, match="must be >= 0"):
            config.replace(**{knob: -1})
    assert config.replace(stream_rate="8e6").stream_rate == 8e6  # CLI / PATCH spelling
