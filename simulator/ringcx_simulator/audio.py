"""Recording audio synthesised on the fly: RIFF/WAVE PCM s16le, 8 kHz, 1 or 2 channels, no disk.

Every recording is ``44-byte header + preamble + periodic tone``:

* the *preamble* (32 frames) is noise derived from ``sha256(seed|sub-account|dialog|segment)``, so two
  recordings never share a checksum even when their tones and lengths coincide;
* the *tone* is one sine per channel whose period (16..68 samples, i.e. ~118..500 Hz) and amplitude come
  from the same digest. In stereo the agent's tone is on ``agent_channel`` and the customer's on the other;
  mono mixes both.

One period block per tone pair (``lcm`` of the two periods, at most a few KiB) is computed once and cached
as a *tile* a little longer than a chunk, so streaming a multi-GB body is a series of slices of a cached
buffer: constant memory, no per-sample work, hundreds of MB/s.
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
from array import array
from collections.abc import Iterator
from functools import lru_cache

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
HEADER_SIZE = 44
PREAMBLE_FRAMES = 32
_MAX_RIFF = 0xFFFFFFFF


def wav_header(channels: int, data_size: int) -> bytes:
    """The canonical 44-byte PCM WAVE header."""
    block_align = channels * SAMPLE_WIDTH
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        min(_MAX_RIFF, 36 + data_size),
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        SAMPLE_RATE,
        SAMPLE_RATE * block_align,
        block_align,
        SAMPLE_WIDTH * 8,
        b"data",
        min(_MAX_RIFF, data_size),
    )


def _pcm(samples: list[int]) -> bytes:
    data = array("h", samples)
    if sys.byteorder != "little":
        data.byteswap()
    return data.tobytes()


@lru_cache(maxsize=256)
def _block(agent: tuple[int, int], customer: tuple[int, int], channels: int, agent_channel: int) -> bytes:
    """One full period of the tone pair as interleaved PCM. ``agent``/``customer`` = (period, amplitude)."""
    frames = math.lcm(agent[0], customer[0])

    def tone(spec: tuple[int, int], n: int) -> float:
        return spec[1] * math.sin(2 * math.pi * n / spec[0])

    samples: list[int] = []
    for n in range(frames):
        a, c = tone(agent, n), tone(customer, n)
        if channels == 1:
            samples.append(round((a + c) / 2))
        else:
            pair = (a, c) if agent_channel == 0 else (c, a)
            samples.extend(round(x) for x in pair)
    return _pcm(samples)


@lru_cache(maxsize=32)
def _tile(block: bytes, chunk_size: int) -> bytes:
    """``block`` repeated to at least ``chunk_size + len(block)`` bytes."""
    return block * (chunk_size // len(block) + 2)


class Recording:
    """The bytes of one segment's recording, addressable and streamable without materialising them.

    :param identity: unique text for the segment (seed, sub-account, dialog and segment ids).
    :param duration_ms: recording length; the data chunk holds ``duration_ms * 8`` frames.
    :param channels: 1 or 2.
    :param agent_channel: the stereo channel carrying the agent's tone.
    :param tone_identity: derive the tones from this text instead of ``identity`` (the preamble still comes
        from ``identity``): recordings that share it share one cached period block, so building one costs
        microseconds instead of milliseconds (bulk segments), and their checksums still differ.
    """

    def __init__(
        self,
        identity: str,
        duration_ms: int,
        channels: int,
        agent_channel: int = 0,
        tone_identity: str | None = None,
    ) -> None:
        digest = hashlib.sha256(identity.encode()).digest()
        self.digest = digest
        self.channels = channels
        self.frames = max(0, duration_ms) * SAMPLE_RATE // 1000
        self.data_size = self.frames * channels * SAMPLE_WIDTH
        self.size = HEADER_SIZE + self.data_size
        tones = digest if tone_identity is None else hashlib.sha256(tone_identity.encode()).digest()
        agent_period = 16 + tones[0] % 48
        customer_period = 17 + tones[1] % 52
        if customer_period == agent_period:
            customer_period += 1
        self.agent_tone = (agent_period, 3000 + int.from_bytes(tones[2:4], "big") % 7000)
        self.customer_tone = (customer_period, 3000 + int.from_bytes(tones[4:6], "big") % 7000)
        self._block = _block(self.agent_tone, self.customer_tone, channels, agent_channel)
        preamble_size = min(PREAMBLE_FRAMES, self.frames) * channels * SAMPLE_WIDTH
        self._prefix = wav_header(channels, self.data_size) + _noise(digest, preamble_size)

    @property
    def agent_frequency(self) -> float:
        return SAMPLE_RATE / self.agent_tone[0]

    @property
    def customer_frequency(self) -> float:
        return SAMPLE_RATE / self.customer_tone[0]

    def iter_bytes(self, chunk_size: int = 262144, start: int = 0) -> Iterator[bytes]:
        """Yield the bytes from offset ``start`` to the end in chunks of at most ``chunk_size``."""
        position = start
        prefix = self._prefix
        while position < min(len(prefix), self.size):
            piece = prefix[position : min(len(prefix), position + chunk_size)]
            position += len(piece)
            yield piece
        block = self._block
        tile = _tile(block, chunk_size)
        while position < self.size:
            offset = (position - len(prefix)) % len(block)
            length = min(chunk_size, self.size - position)
            yield tile[offset : offset + length]
            position += length

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` (for tests and small recordings)."""
        stop = self.size if end is None else min(end, self.size)
        out = bytearray()
        for piece in self.iter_bytes(1 << 20, start):
            out += piece
            if start + len(out) >= stop:
                break
        return bytes(out[: stop - start])

    def sha256(self) -> str:
        """SHA-256 of the whole body (streams through it; cache the result for big recordings)."""
        digest = hashlib.sha256()
        for piece in self.iter_bytes(1 << 20):
            digest.update(piece)
        return digest.hexdigest()


def _noise(digest: bytes, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(digest + counter.to_bytes(4, "big")).digest()
        counter += 1
    samples = array("h", bytes(out[:size]))
    quiet = [s // 8 for s in samples]  # keep the burst well below clipping
    return _pcm(quiet)


def fake_mp3(identity: str, frames: int = 8) -> bytes:
    """A tiny deterministic MPEG-1 Layer III-looking body (ID3v2 header + frame syncs), for browser UAs."""
    digest = hashlib.sha256(identity.encode()).digest()
    body = bytearray(b"ID3\x04\x00\x00\x00\x00\x00\x00")
    for n in range(frames):
        body += b"\xff\xfb\x90\x64" + bytes(digest[(n + i) % 32] for i in range(413))
    return bytes(body)
