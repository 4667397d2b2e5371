"""The body reader's decoder on its own (a pure function of bytes: no peer needed): gzip members, deflate
with and without its zlib header, bounded output per step, and streams that stop early or run on."""

from __future__ import annotations

import gzip
import os
import zlib

import pytest

from airflow_provider_ringcx.hooks.body import InflateError, Inflater

PLAIN = os.urandom(5000) + bytes(200_000)


def _decode(coding: str, encoded: bytes, *, piece: int = 1000, limit: int = 4096) -> tuple[bytes, int]:
    """Feed ``encoded`` ``piece`` bytes at a time; returns the output and the largest step."""
    inflater, out, largest = Inflater(coding), bytearray(), 0
    for start in range(0, len(encoded), piece):
        data = encoded[start : start + piece]
        while True:
            step = inflater.step(data, limit)
            largest = max(largest, len(step))
            out += step
            data = b""
            if not (step and inflater.has_pending):
                break
    while inflater.has_pending:
        step = inflater.step(b"", limit)
        largest = max(largest, len(step))
        out += step
    inflater.finish()
    return bytes(out), largest


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        ("gzip", gzip.compress(PLAIN)),
        ("x-gzip", gzip.compress(PLAIN)),
        ("gzip", gzip.compress(PLAIN[:3000]) + gzip.compress(PLAIN[3000:])),  # two members (RFC 1952)
        ("deflate", zlib.compress(PLAIN)),
        ("deflate", _raw_deflate(PLAIN)),  # deflate without its zlib header, as some servers send it
    ],
)
def test_decodes_in_bounded_steps(coding, encoded):
    out, largest = _decode(coding, encoded)
    assert out == PLAIN
    assert largest <= 4096


def test_a_one_byte_dribble_decodes_too():
    out, _ = _decode("gzip", gzip.compress(PLAIN[:20000]), piece=1)
    assert out == PLAIN[:20000]


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_stream_that_stops_before_its_end_is_refused(coding):
    encoded = gzip.compress(PLAIN) if coding == "gzip" else zlib.compress(PLAIN)
    with pytest.raises(InflateError, match="stopped before its end marker"):
        _decode(coding, encoded[:-3])


@pytest.mark.parametrize(
    ("coding", "encoded"), [("gzip", gzip.compress(PLAIN)), ("deflate", zlib.compress(PLAIN))]
)
def test_bytes_after_the_end_are_refused(coding, encoded):
    with pytest.raises(InflateError, match="unexpected bytes after the end"):
        _decode(coding, encoded + b"<html>")


def test_garbage_is_refused_naming_the_coding():
    with pytest.raises(InflateError, match="invalid gzip data"):
        _decode("gzip", b"this is not gzip at all")
    with pytest.raises(InflateError, match="invalid deflate data"):
        _decode("deflate", b"\xff" * 64)
