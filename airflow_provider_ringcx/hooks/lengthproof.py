"""What a recording body must hold to count as complete: the duration check and the size bound.

:class:`~airflow_provider_ringcx.hooks.download.RecordingStream` applies these rules as bytes arrive (its
module doc lists the three length proofs: Content-Length, WAV data size, expected duration).

**Duration cross-check (issue #12 item 2).** Content-Length and the WAV header can agree with each other and
still describe half the call (a recording served while still being written, or the wrong one). So whenever
the caller passes the expected duration (the metadata's ``segmentDurationMs``, else segment end - start),
the audio - the WAV ``data`` size when the header states it, else the bytes after the header - must last
that long within :func:`duration_tolerance_seconds`, ``max(2 s, 2 %)``, whatever other proof holds;
otherwise :class:`~airflow_provider_ringcx.exceptions.RingCXDurationMismatchError` (retryable, a subclass
of ``RingCXIncompleteDownloadError``) names both durations. 2 s absorbs the vendor rounding segment times to
whole seconds and a recorder that starts a moment after the agent joins; 2 % absorbs clock drift on long
calls; half the audio missing (the attack) is always far outside it. Audio *longer* than the expected
duration plus the tolerance fails the same way: the vendor's audio "should equal segmentDurationMs", and a
longer body is not the segment the metadata describes either, so it is never archived as verified. A WAV
header that states a contradicting size fails at once, before any byte is handed out.

**Size bound (items 2, 3).** The decoded body may not grow past the most its evidence allows
(:func:`body_limit`): Content-Length (identity), the WAV size plus :data:`TRAILING_CHUNK_BYTES` (1 MiB for
LIST/INFO chunks after the audio), the expected duration plus the tolerance plus that allowance, and without
any of them ``DEADLINE_CAP_SECONDS x download_min_bytes_per_second`` (such a body can never be proven
anyway). A gzip body that inflates past it - a decompression bomb - is refused with
:class:`~airflow_provider_ringcx.exceptions.RingCXOversizedBodyError` as soon as it does; it is decoded one
64 KiB chunk at a time (:mod:`~airflow_provider_ringcx.hooks.body`), never whole.
"""

from __future__ import annotations

from airflow_provider_ringcx.exceptions import RingCXDurationMismatchError
from airflow_provider_ringcx.hooks.bounds import DEADLINE_CAP_SECONDS
from airflow_provider_ringcx.wav import WavInfo

#: The audio may be this far from the expected duration: max(2 s, 2 %) (module doc).
DURATION_TOLERANCE_SECONDS = 2.0
DURATION_TOLERANCE_SHARE = 0.02
#: Bytes a body may hold after the WAV's audio (LIST/INFO and similar chunks); more is not this recording.
TRAILING_CHUNK_BYTES = 1024 * 1024


def duration_tolerance_seconds(expected_seconds: float) -> float:
    """How far the audio received may be from the expected duration: ``max(2 s, 2 %)`` (module doc)."""
    return max(DURATION_TOLERANCE_SECONDS, DURATION_TOLERANCE_SHARE * expected_seconds)


def byte_rate(wav: WavInfo) -> float:
    """Bytes per second of audio (``block_align x sample_rate``; never 0)."""
    return float(max(1, wav.block_align) * max(1, wav.sample_rate))


def duration_mismatch(
    what: str, audio: float, expected: float, source: str
) -> RingCXDurationMismatchError | None:
    """The error for ``audio`` seconds that are not ``expected`` within the tolerance, else ``None``.

    :param source: where ``audio`` comes from, quoted (e.g. "as the WAV header declares").
    """
    tolerance = duration_tolerance_seconds(expected)
    if abs(audio - expected) <= tolerance:
        return None
    how = "shorter" if audio < expected else "longer"
    return RingCXDurationMismatchError(
        f"{what}: {audio:.1f} s of audio but the metadata says {expected:.1f} s (tolerance "
        f"{tolerance:.1f} s; {source}): the recording is {how} than the call; nothing was archived - "
        "retry later (the vendor may still be writing it); if it persists report the segment to RingCentral "
        "support"
    )


def body_limit(
    *,
    content_length: int | None,
    wav: WavInfo | None,
    expected_seconds: float | None,
    min_bytes_per_second: float,
) -> tuple[int, str]:
    """The most decoded bytes a recording body may hold, and the evidence that says so (module doc)."""
    limits: list[tuple[int, str]] = []
    if content_length is not None:
        limits.append((content_length, "its Content-Length"))
    if wav is not None and wav.expected_min_size is not None:
        limits.append((wav.expected_min_size + TRAILING_CHUNK_BYTES, "its WAV header (+ 1 MiB of chunks)"))
    if wav is not None and expected_seconds is not None:
        audio = (expected_seconds + duration_tolerance_seconds(expected_seconds)) * byte_rate(wav)
        limit = wav.data_offset + round(audio) + TRAILING_CHUNK_BYTES
        limits.append((limit, "the metadata's duration (+ tolerance)"))
    if not limits:
        cap = DEADLINE_CAP_SECONDS * max(1.0, min_bytes_per_second)
        limits.append((round(cap), "the capped deadline at download_min_bytes_per_second"))
    return min(limits)
