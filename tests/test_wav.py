"""The incremental WAV header parser (pure bytes; no peer needed)."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from airflow_provider_ringcx.wav import WavError, WavHeaderParser, parse_wav_header


def make_wav(frames: int = 800, channels: int = 2, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x01\x02" * channels * frames)
    return buf.getvalue()


def chunk(chunk_id: bytes, body: bytes) -> bytes:
    pad = b"\x00" if len(body) % 2 else b""
    return chunk_id + struct.pack("<I", len(body)) + body + pad


def wav_with_chunks(*extra: bytes, data: bytes = b"\x00\x01" * 100, data_size: int | None = None) -> bytes:
    fmt = chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16))
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + fmt + b"".join(extra) + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_parses_a_standard_wav():
    data = make_wav(frames=8000, channels=2)
    info = parse_wav_header(data)
    assert (info.channels, info.sample_rate, info.bits_per_sample, info.audio_format) == (2, 8000, 16, 1)
    assert info.format_name == "PCM"
    assert info.data_offset == 44
    assert info.data_size == 8000 * 4
    assert info.expected_min_size == len(data)
    assert info.duration_seconds == pytest.approx(1.0)


def test_byte_by_byte_feeding_gives_the_same_header():
    data = make_wav()
    parser = WavHeaderParser()
    result = None
    for i in range(len(data)):
        result = parser.feed(data[i : i + 1])
        if result:
            break
    assert result == parse_wav_header(data)
    assert parser.done


def test_skips_list_chunk_and_honours_odd_size_padding():
    odd = chunk(b"LIST", b"INFOabc")  # 7 bytes + pad byte
    data = wav_with_chunks(odd, chunk(b"fact", b"\x10\x00\x00\x00"))
    info = parse_wav_header(data)
    assert info.data_offset == len(data) - 200
    assert info.data_size == 200
    assert info.channels == 1


def test_unknown_data_size_is_none():
    info = parse_wav_header(wav_with_chunks(data_size=0xFFFFFFFF))
    assert info.data_size is None
    assert info.expected_min_size is None
    assert info.duration_seconds is None


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>error</body></html>",
        b"ID3\x03\x00mp3 bytes here",
        b'{"error": 1}',
        b"RIFF\x00\x00\x00\x00AVI ",
    ],
)
def test_non_wav_is_refused(body):
    with pytest.raises(WavError, match="RIFF"):
        WavHeaderParser().feed(body)


def test_non_riff_is_refused_from_the_first_byte():
    with pytest.raises(WavError):
        WavHeaderParser().feed(b"<")


def test_truncated_headers_say_what_is_missing():
    data = make_wav()
    for cut, message in (
        (6, "before the RIFF/WAVE header"),
        (20, "before the 'fmt ' chunk"),
        (40, "before the 'data'"),
    ):
        parser = WavHeaderParser()
        assert parser.feed(data[:cut]) is None
        with pytest.raises(WavError, match=message):
            parser.finish()


def test_data_before_fmt_is_refused():
    body = b"WAVE" + b"data" + struct.pack("<I", 4) + b"\x00" * 4
    with pytest.raises(WavError, match="before the 'fmt '"):
        parse_wav_header(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_header_size_is_bounded():
    parser = WavHeaderParser(max_header_bytes=1024)
    head = wav_with_chunks(chunk(b"junk", b"\x00" * 4000))[:2000]
    with pytest.raises(WavError, match="no 'data' chunk"):
        parser.feed(head)
