"""Compressed bodies keep the deadlines and a bounded memory (issue #12 items 3 and 11), against the
simulator's ``gzip`` fault kind with ``stream_kind`` dribble and ``bomb_bytes`` over real sockets.

urllib3's decoding ``read1`` loops over raw reads until the decoder yields output, so bytes that decode to
nothing (a gzip trailer, a block header) were never checked against the deadline; the body reader now reads
the raw stream and checks after every raw read."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from airflow_provider_ringcx.exceptions import RingCXIncompleteDownloadError, RingCXOversizedBodyError
from airflow_provider_ringcx.hooks.body import CHUNK_BYTES
from airflow_provider_ringcx.hooks.lengthproof import TRAILING_CHUNK_BYTES
from tests.hooks.helpers import past_hour
from tests.hooks.test_body import StepClock
from tests.hooks.test_hook_download import inject

#: The bytes after the compressed data that decode to nothing: gzip's CRC32 + ISIZE, zlib's Adler-32.
TRAILER = {"gzip": 8, "deflate": 4}


def _slow(encoding: str | None, *, after: int, every: float, route: str = "download") -> dict:
    """A rule that dribbles one byte every ``every`` s after ``after`` bytes: plain or compressed."""
    slow = {"after_bytes": after, "dribble_bytes": 1, "every_seconds": every}
    if encoding is None:
        return {"route": route, "kind": "dribble", **slow}
    return {"route": route, "kind": "gzip", "encoding": encoding, "stream_kind": "dribble", **slow}


def _encoded_length(sim, hook, encoding: str) -> int:
    """The compressed Content-Length of the recording "d"/"s" (one plain gzip download)."""
    sim.control.set_faults([{"route": "download", "kind": "gzip", "encoding": encoding, "times": 1}])
    with hook.stream_recording("d", "s") as stream:
        stream.read()
        assert stream.length_proof == "content-length"
        return int(stream.encoded_length)


def _read_as_an_uploader(stream) -> None:
    while stream.read(CHUNK_BYTES):
        pass


@pytest.mark.parametrize("encoding", [None, "gzip", "deflate"])
def test_a_dribbled_body_fails_at_its_deadline_whatever_its_encoding(simulator, connect, encoding):
    """The same typed error, message and timing for a plain and a compressed body sent a byte at a time."""
    inject(simulator, "d", "s", duration_ms=8000)
    hook = connect(
        simulator, download_deadline_floor_seconds=1.0, download_min_bytes_per_second=1e6, read_timeout=30
    )
    simulator.control.set_faults([_slow(encoding, after=2000, every=0.2)])
    began = time.monotonic()
    with hook.stream_recording("d", "s") as stream, pytest.raises(RingCXIncompleteDownloadError) as info:
        stream.read()
    assert 1.0 <= time.monotonic() - began < 4.0
    message = str(info.value)
    assert "recording dialog 'd' segment 's'" in message
    assert "the server sent too slowly" in message
    assert "total deadline of 1 s" in message
    assert info.value.retryable
    assert not stream.complete


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_bytes_that_decode_to_nothing_are_held_to_the_deadline(simulator, connect, encoding):
    """Only the trailer is dribbled (0.5 s a byte): every byte of audio has arrived, no read yields output,
    so urllib3's decoding read1 waited for the end and the body landed seconds over its 1 s deadline."""
    inject(simulator, "d", "s", duration_ms=8000)
    hook = connect(
        simulator, download_deadline_floor_seconds=1.0, download_min_bytes_per_second=1e6, read_timeout=30
    )
    length = _encoded_length(simulator, hook, encoding)
    simulator.control.set_faults([_slow(encoding, after=length - TRAILER[encoding], every=0.5)])
    began = time.monotonic()
    with hook.stream_recording("d", "s") as stream, pytest.raises(RingCXIncompleteDownloadError) as info:
        stream.read()
    assert time.monotonic() - began < TRAILER[encoding] * 0.5  # refused before the trailer is all in
    assert "the server sent too slowly" in str(info.value)
    assert not stream.complete


def test_a_compressed_body_keeps_the_default_deadline_without_waiting_a_minute(simulator, connect):
    """Defaults (floor 60 s) on the injected clock: each raw read "waits" 8 s, the trailer dribbles 50 ms a
    byte in real time; its 8 raw reads alone are 64 s of waiting. (urllib3's decoding read1 made ~4 calls of
    the whole body: 32 s, and the body landed.)"""
    inject(simulator, "d", "s", duration_ms=8000)
    hook = connect(simulator)
    length = _encoded_length(simulator, hook, "gzip")
    hook.downloads.clock = StepClock(8.0)  # one step per reading: 8 s per raw read
    simulator.control.set_faults([_slow("gzip", after=length - 8, every=0.05)])
    with hook.stream_recording("d", "s") as stream, pytest.raises(RingCXIncompleteDownloadError) as info:
        stream.read()
    assert "total deadline of 60 s" in str(info.value)


@pytest.mark.parametrize(
    ("config", "duration", "evidence"),
    [
        ({}, None, "its WAV header"),
        ({"download_length": "chunked", "wav_data_size": "unknown"}, 8.0, "the metadata's duration"),
        ({"download_length": "close", "wav_data_size": "zero"}, None, "the capped deadline"),
    ],
)
def test_a_decompression_bomb_is_refused_in_bounded_memory(
    make_simulator, connect, config, duration, evidence
):
    """8 s of audio, then 64 MiB of zeros in ~64 KiB of gzip: refused once the decoded bytes pass what the
    evidence allows (WAV size, duration, or the deadline cap at 16 KiB/s: 59 MB), never decoded whole."""
    sim = make_simulator(**config)
    truth = inject(sim, "d", "s", duration_ms=8000, channels=2)
    hook = connect(sim, download_min_bytes_per_second=16384)
    sim.control.set_faults([{"route": "download", "kind": "gzip", "bomb_bytes": 64 << 20}])
    extra = {} if duration is None else {"expected_duration_seconds": duration}
    tracemalloc.start()
    try:
        with hook.stream_recording("d", "s", **extra) as stream:
            with pytest.raises(RingCXOversizedBodyError) as info:
                _read_as_an_uploader(stream)
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # a few chunks, not 64 MiB
    message = str(info.value)
    assert "recording dialog 'd' segment 's'" in message
    assert evidence in message
    assert "decompression bomb" in message
    assert not stream.complete
    if duration is None and not config:
        assert stream.bytes_read <= truth["size"] + TRAILING_CHUNK_BYTES


def test_every_decoded_chunk_is_bounded(simulator, connect):
    """One raw read of the bomb inflates ~1000x; the reader hands it out a chunk at a time."""
    inject(simulator, "d", "s", duration_ms=2000)
    simulator.control.set_faults([{"route": "download", "kind": "gzip", "bomb_bytes": 8 << 20}])
    hook = connect(simulator)
    with hook.stream_recording("d", "s") as stream:
        body = stream._body  # the BodyReader under the stream
        sizes = [len(chunk) for chunk in iter(body.next_chunk, None)]
    assert sum(sizes) >= (8 << 20) - CHUNK_BYTES  # (peek_header took the first chunk)
    assert max(sizes) <= CHUNK_BYTES
    assert body.wire_bytes < sum(sizes) // 100


def test_a_dribbled_compressed_metadata_response_fails_at_its_deadline(simulator, connect):
    hook = connect(simulator, metadata_deadline_seconds=1.0, retry_attempts=1, read_timeout=30)
    simulator.control.set_faults([_slow("gzip", after=20, every=0.2, route="metadata")])
    began = time.monotonic()
    with pytest.raises(RingCXIncompleteDownloadError, match="the server sent too slowly"):
        list(hook.iter_interaction_metadata(*past_hour()))
    assert time.monotonic() - began < 4.0
