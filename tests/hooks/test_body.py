"""Total deadlines of response bodies (issue #12 item 11) and compressed metadata (item 3), against the
simulator's ``dribble`` and ``gzip`` fault kinds over real sockets."""

from __future__ import annotations

import time

import pytest

from airflow_provider_ringcx.exceptions import RingCXIncompleteDownloadError
from airflow_provider_ringcx.hooks.download import DEADLINE_CAP_SECONDS
from tests.hooks.helpers import past_hour, truth_keys
from tests.hooks.test_hook_download import inject


class StepClock:
    """A monotonic clock that advances ``step`` seconds on every reading: each socket read "waits" long."""

    def __init__(self, step: float) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _dribble(sim, route: str, after: int, every: float) -> None:
    sim.control.set_faults(
        [
            {
                "route": route,
                "kind": "dribble",
                "after_bytes": after,
                "dribble_bytes": 1,
                "every_seconds": every,
            }
        ]
    )


def test_a_dribbling_recording_fails_at_its_deadline_on_a_real_socket(simulator, connect):
    """Headers, the WAV header, then one byte every 0.2 s (far under read_timeout): retryable, in ~1 s."""
    inject(simulator, "d", "s", duration_ms=8000)
    hook = connect(
        simulator, download_deadline_floor_seconds=1.0, download_min_bytes_per_second=1e6, read_timeout=30
    )
    _dribble(simulator, "download", after=100, every=0.2)
    began = time.monotonic()
    with hook.stream_recording("d", "s") as stream, pytest.raises(RingCXIncompleteDownloadError) as info:
        stream.read()
    elapsed = time.monotonic() - began
    assert 1.0 <= elapsed < 4.0
    message = str(info.value)
    assert "recording dialog 'd' segment 's'" in message
    assert "the server sent too slowly" in message
    assert "total deadline of 1 s" in message
    assert info.value.retryable
    assert not stream.complete


def test_the_default_deadline_holds_without_waiting_a_minute(simulator, connect):
    """Defaults (floor 60 s): an injected clock that says each read waited 2 s ends the body after ~31
    reads, though the dribble is only 10 ms per byte in real time."""
    inject(simulator, "d", "s", duration_ms=8000)
    hook = connect(simulator)
    hook.downloads.clock = StepClock(1.0)  # two readings per socket read: 2 s "waited" each
    _dribble(simulator, "download", after=100, every=0.01)
    began = time.monotonic()
    with hook.stream_recording("d", "s") as stream, pytest.raises(RingCXIncompleteDownloadError) as info:
        stream.read()
    assert time.monotonic() - began < 10
    assert "total deadline of 60 s" in str(info.value)
    assert stream.bytes_read == 0  # nothing was handed out to an uploader


def test_a_healthy_body_is_not_cut_by_the_deadline(simulator, connect):
    truth = inject(simulator, "d", "s", duration_ms=8000)
    hook = connect(simulator, download_deadline_floor_seconds=1.0)
    _dribble(simulator, "download", after=truth["size"] - 5, every=0.05)  # slow, but done within 1 s
    with hook.stream_recording("d", "s") as stream:
        data = stream.read()
    assert len(data) == truth["size"]
    assert stream.sha256_hex == truth["sha256"]


def test_the_deadline_follows_the_expected_size(make_simulator, connect):
    sim = make_simulator(download_length="close", wav_data_size="unknown")
    inject(sim, "d", "s", duration_ms=60_000, channels=2)  # 3.84 MB of audio
    hook = connect(sim, download_min_bytes_per_second=16384)
    with hook.stream_recording("d", "s", expected_duration_seconds=60.0) as stream:
        assert stream.content_length is None
        assert stream.wav.data_size is None
        assert stream.deadline_seconds() == pytest.approx((44 + 60 * 32000) / 16384)  # duration x byte rate
        stream.read()
        assert stream.length_proof == "duration"


def test_a_claimed_size_cannot_stretch_the_deadline_past_its_cap(make_simulator, connect):
    """A hostile size claim (here a 10-hour duration at the slowest rate: 19.5 h) is capped at one hour."""
    sim = make_simulator(download_length="close", wav_data_size="unknown")
    inject(sim, "d", "s", duration_ms=60_000, channels=2)
    hook = connect(sim, download_min_bytes_per_second=16384)
    with hook.stream_recording("d", "s", expected_duration_seconds=36_000.0) as stream:
        assert (stream.wav.data_offset + 36_000 * 32000) / 16384 > 70_000
        assert stream.deadline_seconds() == DEADLINE_CAP_SECONDS == 3600


def test_a_dribbling_metadata_response_fails_at_its_deadline(simulator, connect):
    hook = connect(simulator, metadata_deadline_seconds=1.0, retry_attempts=1, read_timeout=30)
    _dribble(simulator, "metadata", after=10, every=0.2)
    start, end = past_hour()
    began = time.monotonic()
    with pytest.raises(RingCXIncompleteDownloadError) as info:
        list(hook.iter_interaction_metadata(start, end))
    assert time.monotonic() - began < 4.0
    message = str(info.value)
    assert "interaction-metadata window" in message
    assert "the server sent too slowly" in message
    assert "total deadline of 1 s" in message
    assert info.value.retryable


def test_a_dribbling_metadata_response_is_fetched_again(make_simulator, connect):
    """One slow response costs one retry of the window, not the run (the retry gets the whole window)."""
    simulator = make_simulator(calls_per_hour=30)
    hook = connect(simulator, metadata_deadline_seconds=0.5, read_timeout=30)
    simulator.control.set_faults(
        [{"route": "metadata", "kind": "dribble", "after_bytes": 10, "every_seconds": 0.2, "times": 1}]
    )
    start, end = past_hour()
    records = list(hook.iter_interaction_metadata(start, end))
    truth = simulator.control.ground_truth(start, end, sha256=False)
    assert {r.key for r in records} == truth_keys(truth)
    assert simulator.control.stats()["requests"]["metadata"] == {"200": 2}


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_metadata_decodes(make_simulator, connect, encoding):
    simulator = make_simulator(calls_per_hour=30)
    hook = connect(simulator)
    simulator.control.set_faults([{"route": "metadata", "kind": "gzip", "encoding": encoding}])
    start, end = past_hour()
    records = list(hook.iter_interaction_metadata(start, end))
    truth = simulator.control.ground_truth(start, end, sha256=False)
    assert records
    assert {r.key for r in records} == truth_keys(truth)
    assert simulator.control.stats()["faults"] == {"gzip": 1}
