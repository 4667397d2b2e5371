"""WAV synthesis units: header, streaming equals random access, chunking does not change bytes."""

from __future__ import annotations

import hashlib
import io
import wave

import pytest

from ringcx_simulator.audio import HEADER_SIZE, Recording, fake_mp3, wav_header


@pytest.mark.parametrize("channels", [1, 2])
def test_header_and_length(channels):
    recording = Recording("seed|sub|d|s", 1234, channels)
    body = recording.read()
    assert len(body) == recording.size == HEADER_SIZE + 1234 * 8 * 2 * channels
    with wave.open(io.BytesIO(body)) as reader:
        assert reader.getnchannels() == channels
        assert reader.getframerate() == 8000
        assert reader.getsampwidth() == 2
        assert reader.getnframes() == 1234 * 8
        assert reader.getcomptype() == "NONE"


@pytest.mark.parametrize("chunk_size", [1024, 4099, 262144])
def test_chunking_and_offsets_do_not_change_bytes(chunk_size):
    recording = Recording("x", 5000, 2)
    whole = recording.read()
    assert b"".join(recording.iter_bytes(chunk_size)) == whole
    assert all(len(c) <= chunk_size for c in recording.iter_bytes(chunk_size))
    assert b"".join(recording.iter_bytes(chunk_size, start=777)) == whole[777:]
    assert recording.read(100, 5000) == whole[100:5000]
    assert recording.sha256() == hashlib.sha256(whole).hexdigest()


def test_identity_changes_bytes_even_with_equal_tones():
    a, b = Recording("a", 1000, 2), Recording("b", 1000, 2)
    assert a.sha256() != b.sha256()


def test_zero_length_recording_is_a_valid_empty_wav():
    body = Recording("z", 0, 1).read()
    assert body == wav_header(1, 0)
    with wave.open(io.BytesIO(body)) as reader:
        assert reader.getnframes() == 0


def test_fake_mp3_is_deterministic_and_not_wav():
    assert fake_mp3("a") == fake_mp3("a") != fake_mp3("b")
    assert fake_mp3("a").startswith(b"ID3")
