"""Incremental RIFF/WAVE header parser.

A recording is streamed to S3 without being held in memory, so its header is parsed from the first chunks
of the body as they arrive: :class:`WavHeaderParser` is fed bytes until it has seen the ``fmt `` chunk and
the start of the ``data`` chunk, skipping any other chunk on the way (``LIST``, ``fact``, ``bext``...) and
honouring the pad byte after odd-sized chunks. The result, :class:`WavInfo`, tells how many bytes the whole
file must have, which the download verifies at end of stream.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: Data sizes that streaming encoders write when they do not know the length up front: 0, 0xFFFFFFFF, and
#: the signed maximums 0x7FFFFFFF / 0x7FFFF000 (2 GiB: 18 hours of stereo telephony, never a real call).
#: None of them proves a length (issue #12 item 2): the download needs another proof.
UNKNOWN_SIZES = frozenset({0, 0xFFFFFFFF, 0x7FFFFFFF, 0x7FFFF000})

#: Refuse headers larger than this (a real header is a few dozen bytes; metadata chunks a few KiB).
MAX_HEADER_BYTES = 1 << 20

_FORMAT_NAMES = {1: "PCM", 3: "IEEE float", 6: "A-law", 7: "mu-law", 0xFFFE: "extensible"}


class WavError(ValueError):
    """The bytes are not a RIFF/WAVE file, or its header is malformed."""


@dataclass(frozen=True)
class WavInfo:
    """What the header of a WAV file says.

    :param data_offset: offset of the first audio byte in the file.
    :param data_size: declared size of the ``data`` chunk (``None`` when the encoder left it unknown).
    :param raw_data_size: the size field as written, placeholder included.
    """

    channels: int
    sample_rate: int
    bits_per_sample: int
    audio_format: int
    block_align: int
    data_offset: int
    data_size: int | None
    riff_size: int
    raw_data_size: int = 0

    @property
    def format_name(self) -> str:
        """Human name of ``audio_format`` (``PCM`` for 1)."""
        return _FORMAT_NAMES.get(self.audio_format, f"format {self.audio_format}")

    @property
    def expected_min_size(self) -> int | None:
        """Smallest total file size consistent with the header (``None`` when the data size is unknown)."""
        if self.data_size is None:
            return None
        return self.data_offset + self.data_size

    @property
    def duration_seconds(self) -> float | None:
        """Audio length from the data size (``None`` when unknown)."""
        if self.data_size is None or not self.block_align or not self.sample_rate:
            return None
        return self.data_size / self.block_align / self.sample_rate


class WavHeaderParser:
    """Feed bytes from the start of a WAV file; ``info`` is set once the ``data`` chunk starts."""

    def __init__(self, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_header_bytes
        self._fmt: tuple[int, int, int, int, int] | None = None
        self._riff_size = 0
        self._pos = 12  # next chunk header offset once RIFF/WAVE is checked
        self._checked_riff = False
        self.info: WavInfo | None = None

    @property
    def done(self) -> bool:
        """Whether the header is complete (``info`` is set)."""
        return self.info is not None

    def feed(self, data: bytes) -> WavInfo | None:
        """Consume the next bytes of the file.

        :param data: the next bytes (any size; only the header part is kept).
        :return: the header once complete, else ``None``.
        :raises WavError: not RIFF/WAVE, a malformed chunk, or a header larger than the limit.
        """
        if self.info is not None:
            return self.info
        self._buffer += data
        self._parse()
        if self.info is None and len(self._buffer) > self._max:
            raise WavError(f"no 'data' chunk in the first {self._max} bytes")
        return self.info

    def finish(self) -> WavInfo:
        """Signal end of input; return the header or raise :class:`WavError` saying what was missing."""
        if self.info is not None:
            return self.info
        if not self._checked_riff:
            raise WavError(f"body ended after {len(self._buffer)} bytes, before the RIFF/WAVE header")
        if self._fmt is None:
            raise WavError("body ended before the 'fmt ' chunk")
        raise WavError("body ended before the 'data' chunk")

    def _parse(self) -> None:
        buf = self._buffer
        if not self._checked_riff:
            if len(buf) < 12:
                if not b"RIFF".startswith(bytes(buf[:4])):
                    raise WavError(f"body does not start with RIFF (starts with {bytes(buf[:8])!r})")
                return
            if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
                raise WavError(f"body is not RIFF/WAVE (starts with {bytes(buf[:12])!r})")
            self._riff_size = struct.unpack_from("<I", buf, 4)[0]
            self._checked_riff = True
        while len(buf) >= self._pos + 8:
            chunk_id = bytes(buf[self._pos : self._pos + 4])
            (size,) = struct.unpack_from("<I", buf, self._pos + 4)
            body = self._pos + 8
            if chunk_id == b"data":
                if self._fmt is None:
                    raise WavError("'data' chunk before the 'fmt ' chunk")
                self._finish(body, size)
                return
            if len(buf) < body + size:
                return  # wait for the rest of this chunk
            if chunk_id == b"fmt ":
                if size < 16:
                    raise WavError(f"'fmt ' chunk too short ({size} bytes)")
                self._fmt = struct.unpack_from("<HHIxxxxHH", buf, body)
            self._pos = body + size + (size & 1)  # odd-sized chunks are followed by a pad byte

    def _finish(self, data_offset: int, data_size: int) -> None:
        assert self._fmt is not None
        audio_format, channels, sample_rate, block_align, bits = self._fmt
        if channels < 1 or sample_rate < 1:
            raise WavError(f"'fmt ' chunk declares {channels} channel(s) at {sample_rate} Hz")
        self.info = WavInfo(
            channels=channels,
            sample_rate=sample_rate,
            bits_per_sample=bits,
            audio_format=audio_format,
            block_align=block_align,
            data_offset=data_offset,
            data_size=None if data_size in UNKNOWN_SIZES else data_size,
            riff_size=self._riff_size,
            raw_data_size=data_size,
        )
        self._buffer = bytearray()  # the header is all we keep


def parse_wav_header(data: bytes) -> WavInfo:
    """Parse a complete header from ``data`` (the first bytes of a file).

    :raises WavError: see :meth:`WavHeaderParser.feed` and :meth:`WavHeaderParser.finish`.
    """
    parser = WavHeaderParser()
    info = parser.feed(data)
    return info if info is not None else parser.finish()
