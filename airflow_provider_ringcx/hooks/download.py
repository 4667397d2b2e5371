"""Recording downloads as a verifying, non-seekable file object.

:class:`RecordingStream` wraps the body of ``GET .../recordings/dialogs/{dialogId}/segments/{segmentId}``.
The WAV header is parsed from the first bytes before the stream is handed out, so a non-WAV body is refused
before any byte reaches S3. ``read(n)`` returns exactly ``n`` bytes unless the body ends (s3transfer sizes
multipart parts by what ``read`` returns). SHA-256 and the byte count are computed as bytes pass.

**Length proof (issue #12 item 2).** A clean end of the body proves nothing: a close-delimited body, or a
chunked one whose server stopped after half the audio, ends exactly like a complete one. So a recording
counts as complete only with one of these proofs, tried in this order, and the one used is kept in
:attr:`RecordingStream.length_proof`:

1. ``content-length``: the bytes received equal ``Content-Length`` (for a compressed body: the *encoded*
   bytes received equal it, since it describes the encoded body);
2. ``wav-data-size``: the WAV ``data`` chunk size is a real size (not ``0``, ``0xFFFFFFFF`` or another
   streaming placeholder, :data:`~airflow_provider_ringcx.wav.UNKNOWN_SIZES`) and the body holds all of it;
3. ``duration``: the caller passed the expected duration (the metadata's ``segmentDurationMs``, else segment
   end - start) and the audio received lasts that long within ``max(2 s, 2 %)``
   (:func:`~airflow_provider_ringcx.hooks.lengthproof.duration_tolerance_seconds`).

A body that ends without any proof, a short one, or a connection lost mid-way raises
:class:`RingCXIncompleteDownloadError` - from then on every ``read`` raises again, so an uploader can never
mistake an unproven recording for a complete one.

Whenever the expected duration is known it must also agree with the audio, whatever proof holds, and the
decoded body may never grow past what its evidence allows (a decompression bomb):
:mod:`~airflow_provider_ringcx.hooks.lengthproof` has both rules and why.

**Encoding (item 3).** Recordings are requested with ``Accept-Encoding: identity``. A server that compresses
anyway with gzip or deflate is decoded and the decoded WAV is verified (proofs 1-3 above, proof 1 on the
encoded bytes, the WAV and duration checks and the size bound on the decoded bytes); any other coding is
refused naming it (:func:`~airflow_provider_ringcx.hooks.body.content_encodings`). Decoding reads the raw
stream, so the deadline below holds for compressed bodies exactly as for plain ones.

**Deadline (item 11).** Each body gets a total deadline on the time spent waiting for the server (see
:mod:`~airflow_provider_ringcx.hooks.body`): ``max(download_deadline_floor_seconds, expected bytes /
download_min_bytes_per_second)``, defaults ``max(60 s, bytes / 128 KiB/s)``: 220 s for a 15-minute stereo
call (28.8 MB). The expected size is the best one known so far: Content-Length, else the WAV data size, else
the duration times the byte rate; the deadline never exceeds ``DEADLINE_CAP_SECONDS`` (1 h), so a
server cannot stretch it by claiming a huge size. 128 KiB/s (1 Mbit/s) per recording is far below any link
that can run the download pool; the 60 s floor covers connection ramp-up on short recordings. The defaults
and the cap are owned by :mod:`~airflow_provider_ringcx.hooks.bounds`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import requests

from airflow_provider_ringcx.exceptions import (
    RingCXBadPayloadError,
    RingCXConfigError,
    RingCXError,
    RingCXIncompleteDownloadError,
    RingCXOversizedBodyError,
)
from airflow_provider_ringcx.hooks.body import BodyReader, content_encodings
from airflow_provider_ringcx.hooks.bounds import (
    DEADLINE_CAP_SECONDS,
    DOWNLOAD_DEADLINE_FLOOR_SECONDS,
    DOWNLOAD_MIN_BYTES_PER_SECOND,
)
from airflow_provider_ringcx.hooks.lengthproof import (
    body_limit,
    byte_rate,
    duration_mismatch,
)
from airflow_provider_ringcx.wav import WavError, WavHeaderParser, WavInfo

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
#: What to do about a body that is not a WAV. It comes right after the ids and before the parser's detail:
#: outcome reasons are cut at a few hundred characters and RingCX ids are long.
NOT_WAV_FIX = (
    "not a WAV recording (nothing archived); check api_url and that no proxy or browser User-Agent is used"
)
WAV_CONTENT_TYPES = frozenset(
    {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "application/octet-stream", ""}
)


def encode_id(value: Any, name: str) -> str:
    """Percent-encode an id as exactly one URL path segment.

    Every character outside ``A-Z a-z 0-9 - _ . ~`` is encoded (``/`` too), and an id made only of dots is
    encoded entirely, so ``.`` or ``..`` can never be read as a dot-segment: no id can change the path.

    :raises RingCXConfigError: the id is empty or not a string/integer.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise RingCXConfigError(f"{name} must be a non-empty string, got {value!r}")
    encoded = quote(value, safe="")
    if set(encoded) == {"."}:
        encoded = encoded.replace(".", "%2E")
    return encoded


def recording_path(rc_account_id: str, sub_account_id: str, dialog_id: str, segment_id: str) -> str:
    """The vendor path of a recording, ids encoded (see :func:`encode_id`)."""
    return (
        f"/voice/api/cx/integration/v1/accounts/{encode_id(rc_account_id, 'rc_account_id')}"
        f"/sub-accounts/{encode_id(sub_account_id, 'sub_account_id')}"
        f"/recordings/dialogs/{encode_id(dialog_id, 'dialog_id')}"
        f"/segments/{encode_id(segment_id, 'segment_id')}"
    )


class RecordingStream(io.RawIOBase):
    """A verifying reader of one recording body.

    :param response: a streamed ``requests`` response with status 2xx.
    :param what: how errors name the recording (ids and path, never a token).
    :param expected_duration_seconds: the metadata's duration of the segment; enables the ``duration``
        length proof when neither Content-Length nor the WAV header proves the length.
    :param floor_seconds: the smallest total deadline (see the module doc).
    :param min_bytes_per_second: the slowest accepted throughput (sets the deadline from the size).
    :param clock: monotonic seconds for the deadline; injectable for tests.
    """

    def __init__(
        self,
        response: requests.Response,
        *,
        what: str,
        chunk_size: int = CHUNK_BYTES,
        expected_duration_seconds: float | None = None,
        floor_seconds: float = DOWNLOAD_DEADLINE_FLOOR_SECONDS,
        min_bytes_per_second: float = DOWNLOAD_MIN_BYTES_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._response = response
        self.what = what
        self.headers: Mapping[str, str] = response.headers
        self.content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        self.encodings = content_encodings(response, what)
        length = response.headers.get("Content-Length")
        announced = int(length) if length and length.strip().isdigit() else None
        #: Content-Length when it describes the bytes handed out (no content coding), else ``None``.
        self.content_length: int | None = None if self.encodings else announced
        #: Content-Length of an encoded (compressed) body: the bytes on the wire, not the WAV's size.
        self.encoded_length: int | None = announced if self.encodings else None
        self.expected_duration_seconds = expected_duration_seconds
        self._floor = floor_seconds
        self._min_rate = min_bytes_per_second
        self._body = BodyReader(
            response,
            what=what,
            deadline=self.deadline_seconds,
            action="nothing was archived - retry the download",
            clock=clock,
            chunk_size=chunk_size,
            announced=self.content_length,
        )
        self._pending = bytearray()
        self._sha = hashlib.sha256()
        self._received = 0
        self._eof = False
        self._error: RingCXError | None = None
        self._parser = WavHeaderParser()
        self.bytes_read = 0
        self.complete = False
        self.wav: WavInfo | None = None
        #: Which evidence proved the length once complete: content-length, wav-data-size or duration.
        self.length_proof: str | None = None

    def __repr__(self) -> str:
        return f"RecordingStream({self.what!r}, bytes_read={self.bytes_read}, complete={self.complete})"

    # -- io.RawIOBase --------------------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.bytes_read

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        """Return exactly ``size`` bytes, fewer only at the end (``-1``: everything left).

        :raises RingCXIncompleteDownloadError: the body is short, its length is unproven, the connection
            broke or the deadline passed.
        """
        if self._error is not None:
            raise self._error
        if self.closed:
            raise ValueError("read from a closed RecordingStream")
        if size is None or size < 0:
            while self._fill():
                pass
            size = len(self._pending)
        while len(self._pending) < size and self._fill():
            pass
        if len(self._pending) <= size:  # everything buffered goes out: one copy, no slice
            out = bytes(self._pending)
            self._pending.clear()
        else:
            with memoryview(self._pending) as view:
                out = bytes(view[:size])  # one copy (a bytearray slice would copy twice)
            del self._pending[:size]
        self._sha.update(out)
        self.bytes_read += len(out)
        if not self._pending and not self._eof and self._received == self.content_length:
            self._fill()  # all announced bytes are out: reach the end now, so `complete` needs no extra read
        if self._eof and not self._pending:
            self.complete = True
        return out

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()

    # -- verification --------------------------------------------------------------------------------------

    @property
    def sha256_hex(self) -> str:
        """SHA-256 of the whole body; only meaningful once :attr:`complete`."""
        if not self.complete:
            raise RuntimeError(f"{self.what}: sha256 is only known once the whole body has been read")
        return self._sha.hexdigest()

    @property
    def sha256_digest(self) -> bytes:
        """SHA-256 of the whole body as raw bytes (for ``ChecksumSHA256``); only once :attr:`complete`."""
        if not self.complete:
            raise RuntimeError(f"{self.what}: sha256 is only known once the whole body has been read")
        return self._sha.digest()

    @property
    def size(self) -> int | None:
        """The total size: ``Content-Length`` when sent, else the size the WAV header implies."""
        if self.content_length is not None:
            return self.content_length
        return self.wav.expected_min_size if self.wav else None

    def expected_bytes(self) -> int | None:
        """The best known size of the body: Content-Length, WAV data size, duration x byte rate."""
        if self.size is not None:
            return self.size
        if self.wav is not None and self.expected_duration_seconds is not None:
            return self.wav.data_offset + round(self.expected_duration_seconds * byte_rate(self.wav))
        return self.encoded_length

    def max_body_bytes(self) -> tuple[int, str]:
        """The most decoded bytes this body may hold, and the evidence that says so (``lengthproof``)."""
        return body_limit(
            content_length=self.content_length,
            wav=self.wav,
            expected_seconds=self.expected_duration_seconds,
            min_bytes_per_second=self._min_rate,
        )

    def deadline_seconds(self) -> float:
        """The total wait allowed for this body (module doc): grows once the WAV header tells the size."""
        expected = self.expected_bytes()
        if expected is None or self._min_rate <= 0:
            return self._floor
        return min(DEADLINE_CAP_SECONDS, max(self._floor, expected / self._min_rate))

    def peek_header(self) -> WavInfo:
        """Receive bytes until the WAV header is parsed (they stay buffered for ``read``).

        :raises RingCXBadPayloadError: the body is not RIFF/WAVE.
        :raises RingCXIncompleteDownloadError: the connection broke first.
        """
        while self.wav is None:
            if not self._fill():
                try:
                    self._parser.finish()
                except WavError as err:
                    raise self._fail(RingCXBadPayloadError(f"{self.what}: {NOT_WAV_FIX} ({err})")) from None
        return self.wav

    def _fill(self) -> bool:
        """Receive one more chunk into the buffer; False at the end of the body (verified)."""
        if self._eof:
            return False
        try:
            chunk = self._body.next_chunk()
        except RingCXError as err:
            raise self._fail(err) from None
        if chunk is None:
            self._eof = True
            self._verify_end()
            return False
        self._received += len(chunk)
        self._pending += chunk
        if self.wav is None:
            try:
                self.wav = self._parser.feed(chunk)
            except WavError as err:
                raise self._fail(RingCXBadPayloadError(f"{self.what}: {NOT_WAV_FIX} ({err})")) from None
            if self.wav is not None and self.wav.duration_seconds is not None:
                self._check_duration(self.wav.duration_seconds, "as the WAV header declares")  # fail early
        limit, evidence = self.max_body_bytes()
        if self._received > limit:
            raise self._fail(
                RingCXOversizedBodyError(
                    f"{self.what}: the body grew past {limit} bytes, the most {evidence} allows "
                    f"({'+'.join(self.encodings) or 'identity'}: a decompression bomb or bytes that are not "
                    "this recording); nothing was archived - report it to RingCentral support if it persists"
                )
            )
        return True

    def _verify_end(self) -> None:
        """Find the length proof of a body that ended (module doc), or fail saying which proof is missing."""
        received, proof = self._received, None
        if self.encoded_length is not None:
            wire = self._body.wire_bytes
            if wire != self.encoded_length:
                raise self._incomplete(
                    f"received {wire} encoded bytes but Content-Length (of the {'+'.join(self.encodings)} "
                    f"body) is {self.encoded_length}"
                )
            proof = "content-length"
        elif self.content_length is not None:
            if received != self.content_length:
                raise self._incomplete(
                    f"received {received} bytes but Content-Length is {self.content_length}"
                )
            proof = "content-length"
        expected = self.wav.expected_min_size if self.wav else None
        if expected is not None and received < expected:
            raise self._incomplete(f"received {received} bytes but the WAV header declares {expected}")
        if proof is None and expected is not None:
            proof = "wav-data-size"
        if self.wav is not None and self.expected_duration_seconds is not None:
            audio = self.wav.duration_seconds
            if audio is None:  # a placeholder size: the audio is what arrived after the header
                audio = (received - self.wav.data_offset) / byte_rate(self.wav)
            self._check_duration(
                audio, "as received" + ("" if proof is None else f", though its {proof} proof holds")
            )
            proof = proof or "duration"
        if proof is None:
            raise self._incomplete(
                f"length unproven ({received} bytes; no Content-Length"
                f"{' of the decoded body' if self.encodings else ''}, WAV data size {self._declared_size()}, "
                "no expected duration): the server did not say how long the recording is",
                fix="nothing was archived - retry; if it persists pass expected_duration_seconds (the lander "
                "does from the metadata)",
            )
        self.length_proof = proof

    def _check_duration(self, audio: float, source: str) -> None:
        """Fail unless ``audio`` seconds match the expected duration within the tolerance (lengthproof)."""
        want = self.expected_duration_seconds
        error = None if want is None else duration_mismatch(self.what, audio, want, source)
        if error is not None:
            raise self._fail(error)

    def _declared_size(self) -> str:
        if self.wav is None:
            return "unknown"
        return f"{self.wav.raw_data_size:#x} (a streaming placeholder)"

    def _incomplete(
        self, problem: str, *, fix: str = "nothing was archived - retry the download"
    ) -> RingCXError:
        return self._fail(RingCXIncompleteDownloadError(f"{self.what}: {problem}; {fix}"))

    def _fail(self, error: RingCXError) -> RingCXError:
        self._error = error
        self._pending.clear()
        self._response.close()
        return error
