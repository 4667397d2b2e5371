"""stream_recording against the simulator: verified bytes, exact reads, hostile ids, broken bodies."""

from __future__ import annotations

import hashlib
import io
import wave
from datetime import timedelta

import pytest

from airflow_provider_ringcx.exceptions import (
    RingCXBadPayloadError,
    RingCXConfigError,
    RingCXForbiddenError,
    RingCXIncompleteDownloadError,
    RingCXNotFoundError,
)
from airflow_provider_ringcx.hooks.download import encode_id
from tests.hooks.helpers import OffsetClock, past_hour


def inject(sim, dialog_id: str, segment_id: str, *, duration_ms: int = 4000, **spec) -> dict:
    _, end = past_hour()
    (truth,) = sim.control.add_segments(
        [
            {
                "dialogId": dialog_id,
                "segmentId": segment_id,
                "segmentEndTimeMs": (end - timedelta(minutes=30)).isoformat(),
                "segmentDurationMs": duration_ms,
                **spec,
            }
        ]
    )
    return truth


def download(hook, dialog_id: str, segment_id: str, piece: int = 10_000) -> tuple[bytes, object]:
    with hook.stream_recording(dialog_id, segment_id) as stream:
        parts = []
        while True:
            part = stream.read(piece)
            if not part:
                break
            parts.append(part)
        for part in parts[:-1]:
            assert len(part) == piece  # exactly n bytes unless EOF (s3transfer relies on it)
        return b"".join(parts), stream


def test_stream_matches_ground_truth(simulator, connect):
    truth = inject(simulator, "dialog-1", "segment-1", duration_ms=6000)
    hook = connect(simulator)
    data, stream = download(hook, "dialog-1", "segment-1", piece=4096)
    assert stream.complete
    assert stream.bytes_read == len(data) == truth["size"] == stream.content_length == stream.size
    assert stream.sha256_hex == hashlib.sha256(data).hexdigest() == truth["sha256"]
    assert stream.content_type == "audio/wav"
    assert stream.headers["Content-Type"].startswith("audio/wav")
    assert stream.wav.channels == truth["channels"]
    assert stream.wav.sample_rate == 8000
    assert stream.wav.duration_seconds == pytest.approx(6.0, abs=0.01)
    with wave.open(io.BytesIO(data)) as parsed:
        assert parsed.getnchannels() == stream.wav.channels
    assert stream.closed
    assert simulator.control.stats()["requests"]["download"] == {"200": 1}


def test_reading_exactly_content_length_completes_the_stream(simulator, connect):
    truth = inject(simulator, "d", "s")
    hook = connect(simulator)
    with hook.stream_recording("d", "s") as stream:
        data = stream.read(stream.content_length)
        assert stream.complete  # no extra read() returning b"" is needed
        assert stream.sha256_hex == truth["sha256"] == hashlib.sha256(data).hexdigest()


def test_read_all_and_readinto(simulator, connect):
    truth = inject(simulator, "d", "s", channels=1)
    hook = connect(simulator)
    with hook.stream_recording("d", "s") as stream:
        head = bytearray(100)
        assert stream.readinto(head) == 100
        rest = stream.read()
        assert stream.read(10) == b""
    assert len(head) + len(rest) == truth["size"]
    assert stream.sha256_hex == truth["sha256"]
    assert stream.wav.channels == 1


@pytest.mark.parametrize(
    ("dialog_id", "segment_id"),
    [
        ("a/b", "../../../interaction-metadata"),
        ("..", "."),
        ("dialog ünïcödé ☎", "セグメント"),
        ("%2F..%2F", "?x=1#frag"),
        ("d\\\\back", "semi;colon&amp=1"),
    ],
)
def test_hostile_ids_stay_single_path_segments(simulator, connect, dialog_id, segment_id):
    truth = inject(simulator, dialog_id, segment_id)
    hook = connect(simulator)
    path = hook.recording_path(dialog_id, segment_id)
    prefix = "/voice/api/cx/integration/v1/accounts/980634004/sub-accounts/99999999/recordings/dialogs/"
    assert path.startswith(prefix)
    tail = path[len(prefix) :].split("/")
    assert len(tail) == 3
    assert tail[1] == "segments"
    assert all(part not in (".", "..") for part in tail)
    _data, stream = download(hook, dialog_id, segment_id)
    assert stream.sha256_hex == truth["sha256"]


def test_encode_id_rules():
    assert encode_id("a/b", "dialog_id") == "a%2Fb"
    assert encode_id("..", "dialog_id") == "%2E%2E"
    assert encode_id(12345, "segment_id") == "12345"
    assert encode_id("x\x00y", "segment_id") == "x%00y"
    for bad in ("", None, b"bytes", True):
        with pytest.raises(RingCXConfigError, match="non-empty"):
            encode_id(bad, "dialog_id")


def test_reset_mid_body_raises_incomplete_and_keeps_raising(simulator, connect):
    inject(simulator, "d", "s", duration_ms=8000)
    hook = connect(simulator)
    simulator.control.set_faults([{"route": "download", "kind": "reset", "after_bytes": 100_000, "times": 1}])
    with hook.stream_recording("d", "s") as stream:
        with pytest.raises(RingCXIncompleteDownloadError, match="connection lost") as info:
            stream.read()
        assert info.value.retryable
        with pytest.raises(RingCXIncompleteDownloadError):
            stream.read(10)  # never b"": an uploader cannot take a broken body for a complete one
        assert not stream.complete
        with pytest.raises(RuntimeError):
            _ = stream.sha256_hex


def test_truncated_body_raises_incomplete(simulator, connect):
    truth = inject(simulator, "d", "s", duration_ms=8000)
    hook = connect(simulator)
    simulator.control.set_faults(
        [{"route": "download", "kind": "truncate", "after_bytes": 100_000, "times": 1}]
    )
    with hook.stream_recording("d", "s") as stream:
        assert len(stream.read(40_000)) == 40_000
        with pytest.raises(RingCXIncompleteDownloadError) as info:
            stream.read()
    assert str(truth["size"]) in str(info.value)


def test_truncated_chunked_body_is_caught_by_the_wav_size(make_simulator, connect):
    sim = make_simulator(download_length="chunked")
    inject(sim, "d", "s", duration_ms=8000)
    hook = connect(sim)
    sim.control.set_faults([{"route": "download", "kind": "truncate", "after_bytes": 100_000, "times": 1}])
    with hook.stream_recording("d", "s") as stream:
        assert stream.content_length is None
        with pytest.raises(RingCXIncompleteDownloadError):
            stream.read()


def test_chunked_body_verified_by_wav_size(make_simulator, connect):
    sim = make_simulator(download_length="chunked")
    truth = inject(sim, "d", "s")
    hook = connect(sim)
    data, stream = download(hook, "d", "s")
    assert stream.content_length is None
    assert stream.size == len(data) == truth["size"]
    assert stream.complete


def test_reset_before_the_header_is_retried(simulator, connect):
    truth = inject(simulator, "d", "s")
    hook = connect(simulator, clock=OffsetClock())
    simulator.control.set_faults([{"route": "download", "kind": "reset", "after_bytes": 10, "times": 1}])
    _data, stream = download(hook, "d", "s")
    assert stream.sha256_hex == truth["sha256"]


def test_stalled_body_read_timeout_is_incomplete(simulator, connect):
    inject(simulator, "d", "s", duration_ms=8000)
    hook = connect(simulator, read_timeout=0.3)
    simulator.control.set_faults(
        [{"route": "download", "kind": "stall", "after_bytes": 100_000, "stall_seconds": 1.5, "times": 1}]
    )
    with hook.stream_recording("d", "s") as stream, pytest.raises(RingCXIncompleteDownloadError):
        stream.read()


def test_html_200_is_a_bad_payload(simulator, connect):
    inject(simulator, "d", "s")
    hook = connect(simulator)
    simulator.control.set_faults([{"route": "download", "kind": "html200", "times": 1}])
    with pytest.raises(RingCXBadPayloadError, match="expected audio/wav but got Content-Type 'text/html'"):
        hook.stream_recording("d", "s").__enter__()


def test_non_wav_body_is_refused_before_any_byte_is_handed_out(simulator, connect):
    inject(simulator, "d", "s")
    hook = connect(simulator)
    simulator.control.set_faults([{"route": "download", "kind": "non_wav", "times": 1}])
    with pytest.raises(RingCXBadPayloadError, match="not a WAV recording"):
        hook.stream_recording("d", "s").__enter__()


def test_404_and_403(make_simulator, connect):
    sim = make_simulator(forbidden_shape="access_denied")
    inject(sim, "d", "secret", restricted=True)
    hook = connect(sim)
    with pytest.raises(RingCXNotFoundError, match="404"):
        hook.stream_recording("d", "unknown").__enter__()
    with pytest.raises(RingCXForbiddenError, match=r"access\.denied\.exception"):
        hook.stream_recording("d", "secret").__enter__()
    assert sim.control.stats()["requests"]["download"] == {"404": 1, "403": 1}


def test_401_on_download_reauthenticates_once(simulator, connect):
    truth = inject(simulator, "d", "s")
    hook = connect(simulator)
    hook.tokens.token()
    simulator.control.set_faults([{"route": "download", "kind": "expire_token", "times": 1}])
    _data, stream = download(hook, "d", "s")
    assert stream.sha256_hex == truth["sha256"]
    assert simulator.control.stats()["requests"]["download"] == {"401": 1, "200": 1}


def test_download_budget_paces_gets(simulator, connect):
    inject(simulator, "d", "s")
    clock = OffsetClock()
    hook = connect(simulator, clock=clock, download_budget="2/60")
    started = clock()
    for _ in range(3):
        download(hook, "d", "s")
    # the third GET waited for the window: on the clock (real time + waits), not on the waits alone
    assert clock.sleeps
    assert clock() - started >= 60
