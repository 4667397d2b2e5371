"""Hostile body modes over real sockets: dribble, close-delimited framing, clean short ends, placeholder WAV
sizes and unrequested compression (issue #12 items 2, 3 and 11)."""

from __future__ import annotations

import gzip
import socket
import struct
import time
import zlib

import pytest

from ringcx_simulator.faults import FaultRule
from tests.simulator.helpers import get_recording, login, post_metadata

SIZE = 44 + 10000 * 32  # 10 s stereo at 8 kHz


@pytest.fixture
def segment(simulator):
    simulator.control.add_segments(
        [
            {
                "dialogId": "dlg-1",
                "segmentId": "seg-1",
                "segmentEndTimeMs": "2026-03-02T14:30:00Z",
                "segmentDurationMs": 10000,
            }
        ]
    )
    return "dlg-1", "seg-1"


def _add(sim) -> None:
    spec = {"dialogId": "d", "segmentId": "s", "segmentEndTimeMs": "2026-03-02T14:30:00Z"}
    sim.control.add_segments([{**spec, "segmentDurationMs": 10000}])


def _raw_exchange(sim, path: str, token: str) -> tuple[bytes, bytes]:
    """Send a GET by hand and read until the server closes: ``(head, body)`` exactly as framed."""
    sock = socket.create_connection(("127.0.0.1", sim.server.port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    data = bytearray()
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def test_close_delimited_body_has_no_length_and_ends_with_the_connection(make_simulator):
    sim = make_simulator(download_length="close")
    _add(sim)
    token = login(sim.url)["accessToken"]
    head, body = _raw_exchange(sim, sim.recording_path("d", "s"), token)
    lowered = head.lower()
    assert lowered.startswith(b"http/1.1 200")
    assert b"content-length" not in lowered
    assert b"transfer-encoding" not in lowered
    assert b"connection: close" in lowered
    assert len(body) == SIZE
    assert body[:4] == b"RIFF"


def test_short_kind_ends_a_close_delimited_body_cleanly(make_simulator):
    sim = make_simulator(download_length="close")
    _add(sim)
    sim.control.set_faults([{"route": "download", "kind": "short", "after_bytes": SIZE // 2}])
    token = login(sim.url)["accessToken"]
    _head, body = _raw_exchange(sim, sim.recording_path("d", "s"), token)
    assert len(body) == SIZE // 2  # a FIN, no reset: the framing claims the body is complete


def test_short_kind_on_a_chunked_body_sends_the_terminating_chunk(make_simulator):
    sim = make_simulator(download_length="chunked")
    _add(sim)
    sim.control.set_faults([{"route": "download", "kind": "short", "after_bytes": SIZE // 2}])
    token = login(sim.url)["accessToken"]
    response = get_recording(sim, token, "d", "s")  # requests raises on a missing final chunk
    assert response.status_code == 200
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert len(response.content) == SIZE // 2


@pytest.mark.parametrize(("mode", "value"), [("zero", 0), ("unknown", 0xFFFFFFFF)])
def test_placeholder_wav_sizes(make_simulator, mode, value):
    sim = make_simulator(wav_data_size=mode)
    _add(sim)
    token = login(sim.url)["accessToken"]
    body = get_recording(sim, token, "d", "s").content
    assert len(body) == SIZE
    assert struct.unpack_from("<I", body, 4)[0] == value
    assert body[36:40] == b"data"
    assert struct.unpack_from("<I", body, 40)[0] == value


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_gzip_kind_compresses_recordings_whatever_accept_encoding_says(simulator, token, segment, encoding):
    simulator.control.set_faults([{"route": "download", "kind": "gzip", "encoding": encoding}])
    response = get_recording(simulator, token, *segment, headers={"Accept-Encoding": "identity"}, stream=True)
    assert response.headers["Content-Encoding"] == encoding
    raw = response.raw.read(decode_content=False)
    assert int(response.headers["Content-Length"]) == len(raw) < SIZE
    plain = gzip.decompress(raw) if encoding == "gzip" else zlib.decompress(raw)
    assert len(plain) == SIZE
    assert plain[:4] == b"RIFF"


def test_unproducible_encoding_is_only_a_label(simulator, token, segment):
    simulator.control.set_faults([{"route": "download", "kind": "gzip", "encoding": "br"}])
    response = get_recording(simulator, token, *segment, stream=True)
    assert response.headers["Content-Encoding"] == "br"
    assert response.raw.read(decode_content=False)[:4] == b"RIFF"


def test_gzip_kind_compresses_metadata(simulator, token, segment):
    simulator.control.set_faults([{"route": "metadata", "kind": "gzip"}])
    response = post_metadata(simulator, token)
    assert response.headers["Content-Encoding"] == "gzip"
    assert any(row["segmentId"] == "seg-1" for row in response.json())  # requests decodes it


def test_dribble_sends_a_few_bytes_at_a_time(simulator, token, segment):
    simulator.control.set_faults(
        [
            {
                "route": "download",
                "kind": "dribble",
                "after_bytes": 100,
                "dribble_bytes": 3,
                "every_seconds": 0.2,
            }
        ]
    )
    response = get_recording(simulator, token, *segment, stream=True)
    began = time.monotonic()
    head = response.raw.read(100)
    pieces = [response.raw.read1(64) for _ in range(4)]
    elapsed = time.monotonic() - began
    response.close()
    assert len(head) == 100
    assert [len(piece) for piece in pieces] == [3, 3, 3, 3]
    assert 0.6 <= elapsed < 3


def test_new_rule_fields_are_validated():
    assert FaultRule.from_dict({"route": "download", "kind": "dribble"}).every_seconds == 2.0
    for bad in ({"dribble_bytes": 0}, {"every_seconds": -1}, {"encoding": " "}):
        with pytest.raises(ValueError, match="dribble_bytes"):
            FaultRule.from_dict({"route": "download", "kind": "dribble", **bad})


def test_gzip_with_a_stream_kind_dribbles_the_encoded_bytes(simulator, token, segment):
    simulator.control.set_faults(
        [
            {
                "route": "download",
                "kind": "gzip",
                "stream_kind": "dribble",
                "after_bytes": 50,
                "dribble_bytes": 2,
                "every_seconds": 0.2,
            }
        ]
    )
    response = get_recording(simulator, token, *segment, stream=True)
    assert response.headers["Content-Encoding"] == "gzip"
    began = time.monotonic()
    head = response.raw.read(50, decode_content=False)
    pieces = [response.raw.read1(64, decode_content=False) for _ in range(3)]
    elapsed = time.monotonic() - began
    response.close()
    assert head[:2] == b"\x1f\x8b"  # the encoded stream, not the WAV
    assert [len(piece) for piece in pieces] == [2, 2, 2]
    assert 0.4 <= elapsed < 3


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_bomb_bytes_inflate_far_past_the_declared_size(make_simulator, framing):
    sim = make_simulator(download_length=framing)
    _add(sim)
    sim.control.set_faults([{"route": "download", "kind": "gzip", "bomb_bytes": 16 << 20}])
    token = login(sim.url)["accessToken"]
    response = get_recording(sim, token, "d", "s", stream=True)
    raw = response.raw.read(decode_content=False)
    if framing == "content-length":
        assert int(response.headers["Content-Length"]) == len(raw)
    assert len(raw) < SIZE + (16 << 20) // 500  # ~1/1000 on the wire
    plain = gzip.decompress(raw)
    assert len(plain) == SIZE + (16 << 20)
    assert struct.unpack_from("<I", plain, 40)[0] == SIZE - 44  # the header still declares the real audio
    assert plain[SIZE:] == bytes(16 << 20)


@pytest.mark.parametrize("share", [0.5, 1.5])
def test_audio_duration_share_serves_audio_that_contradicts_the_metadata(make_simulator, share):
    """The WAV header and Content-Length agree with the audio sent; only the metadata still says 10 s."""
    sim = make_simulator(audio_duration_share=share)
    _add(sim)
    token = login(sim.url)["accessToken"]
    response = get_recording(sim, token, "d", "s")
    data_size = round(10000 * share) * 8 * 2 * 2  # ms x frames/ms x channels x bytes
    assert int(response.headers["Content-Length"]) == len(response.content) == 44 + data_size
    assert struct.unpack_from("<I", response.content, 40)[0] == data_size
    rows = post_metadata(sim, token).json()
    assert next(row for row in rows if row["segmentId"] == "s")["segmentDurationMs"] == 10000
    truth = sim.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z")
    assert next(t for t in truth if t["segmentId"] == "s")["size"] == 44 + data_size  # what is served


def test_hostile_gzip_fields_are_validated():
    rule = {"route": "download", "kind": "gzip"}
    assert FaultRule.from_dict({**rule, "stream_kind": "dribble", "bomb_bytes": 1}).stream_fault == "dribble"
    assert FaultRule.from_dict({"route": "download", "kind": "short"}).stream_fault == "short"
    assert FaultRule.from_dict(rule).stream_fault is None
    for bad in (
        {**rule, "stream_kind": "gzip"},
        {"route": "download", "kind": "status", "stream_kind": "dribble"},
    ):
        with pytest.raises(ValueError, match="stream_kind"):
            FaultRule.from_dict(bad)
    for bad in ({**rule, "bomb_bytes": -1}, {"route": "download", "kind": "dribble", "bomb_bytes": 10}):
        with pytest.raises(ValueError, match="bomb_bytes"):
            FaultRule.from_dict(bad)
