"""Hostile body modes of the simulator: wire encodings, connection-close framing, placeholder WAV sizes.

These are the shapes of a body that a careless client takes for complete (issue #12 items 2 and 3):

* :func:`encode` compresses a body (``gzip`` fault kind) whatever ``Accept-Encoding`` asked for, as some
  proxies and CDNs do; for a name the simulator cannot produce (``br``, ``zstd``...) only the label is set.
  With ``bomb_bytes`` it appends that many zero bytes to the plain body first, compressed as they stream
  (never held whole): a decompression bomb whose encoded size stays ~1/1000 of what it inflates to;
* :class:`CloseDelimitedResponse` (``download_length=close``) sends neither ``Content-Length`` nor
  ``Transfer-Encoding: chunked``: the body ends when the connection closes (HTTP/1.1 allows it), so a clean
  FIN after half the audio looks exactly like a complete body. uvicorn always adds chunked framing to a body
  of unknown length, so this response writes the status line, headers and body to the raw transport itself
  (``TRANSPORT_EXTENSION``) and then closes it;
* :func:`placeholder_sizes` (``wav_data_size=zero|unknown``) rewrites the header's RIFF and ``data`` sizes
  to ``0`` or ``0xFFFFFFFF``, as streaming encoders that do not know the length up front write them.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ringcx_simulator.faults import SimulatedDisconnect

#: Encodings the simulator really produces; others are only labelled.
REAL_ENCODINGS = ("gzip", "deflate")
#: The header sizes written for each ``wav_data_size`` knob value (``exact`` keeps the real ones).
PLACEHOLDERS = {"zero": 0, "unknown": 0xFFFFFFFF}
#: Zero bytes compressed per step of a decompression bomb (``bomb_bytes``).
BOMB_PIECE = 1 << 20


def _compressor(encoding: str) -> Any:
    if encoding == "gzip":
        return zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS)  # deflate = zlib stream (RFC 9110)


def encode_bytes(body: bytes, encoding: str) -> bytes:
    """``body`` encoded whole (for responses that send a Content-Length)."""
    if encoding not in REAL_ENCODINGS:
        return body
    compressor = _compressor(encoding)
    return compressor.compress(body) + compressor.flush()


async def encode(chunks: AsyncIterator[bytes], encoding: str, *, bomb_bytes: int = 0) -> AsyncIterator[bytes]:
    """``chunks`` encoded as they stream, then ``bomb_bytes`` zero bytes (module doc) encoded too."""
    if encoding not in REAL_ENCODINGS:
        async for chunk in chunks:
            yield chunk
        return
    compressor = _compressor(encoding)
    async for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    zeros = bytes(min(bomb_bytes, BOMB_PIECE))
    left = bomb_bytes
    while left > 0:
        out = compressor.compress(zeros[: min(left, BOMB_PIECE)])
        left -= BOMB_PIECE
        if out:
            yield out
    yield compressor.flush()


async def placeholder_sizes(chunks: AsyncIterator[bytes], mode: str) -> AsyncIterator[bytes]:
    """Rewrite the RIFF and ``data`` sizes of the canonical 44-byte header in the first chunk."""
    value = PLACEHOLDERS.get(mode)
    first = True
    async for chunk in chunks:
        if first and value is not None and len(chunk) >= 44:
            header = bytearray(chunk[:44])
            struct.pack_into("<I", header, 4, value)
            struct.pack_into("<I", header, 40, value)
            chunk = bytes(header) + chunk[44:]
        first = False
        yield chunk


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    """Every chunk of an async iterator (small bodies only)."""
    return [chunk async for chunk in chunks]


class CloseDelimitedResponse(Response):
    """A 200 whose body is delimited by closing the connection (no Content-Length, not chunked).

    :param chunks: the body.
    :param headers: extra headers (never a length or a transfer coding).
    :param transport: the connection's asyncio transport (``TRANSPORT_EXTENSION``).
    """

    def __init__(
        self, chunks: AsyncIterator[bytes], *, media_type: str, headers: dict[str, str], transport: Any
    ) -> None:
        super().__init__(b"", 200, media_type=media_type)
        self.chunks = chunks
        self.extra_headers = headers
        self.transport = transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = self.transport
        if transport is None:  # pragma: no cover - only without the simulator's protocol
            raise RuntimeError("close-delimited framing needs the simulator's uvicorn protocol")
        media_type = (self.media_type or "application/octet-stream").encode()
        lines = [b"HTTP/1.1 200 OK", b"Content-Type: " + media_type, b"Connection: close"]
        lines += [f"{name}: {value}".encode("latin-1") for name, value in self.extra_headers.items()]
        transport.write(b"\r\n".join(lines) + b"\r\n\r\n")
        try:
            async for chunk in self.chunks:
                if transport.is_closing():
                    break
                transport.write(chunk)
                while transport.get_write_buffer_size() > (1 << 20) and not transport.is_closing():
                    await asyncio.sleep(0.002)  # flow control: keep at most 1 MiB queued
        finally:
            # Drain first: asyncio's close() still accepts writes while it flushes, and uvicorn answers a
            # response-less app with a 500 that would be appended to the body. Once closed with an empty
            # buffer the transport drops every later write.
            while not transport.is_closing() and transport.get_write_buffer_size() > 0:
                await asyncio.sleep(0.002)
            if not transport.is_closing():
                transport.close()  # a FIN: the end of the body
        raise SimulatedDisconnect("close")
