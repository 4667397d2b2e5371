"""Recording downloads as a verifying, non-seekable file object.

:class:`RecordingStream` wraps the body of ``GET .../recordings/dialogs/{dialogId}/segments/{segmentId}``.
The WAV header is parsed from the first bytes before the stream is handed out, so a non-WAV body is refused
before any byte reaches S3. ``read(n)`` returns exactly ``n`` bytes unless the body ends (s3transfer sizes
multipart parts by what ``read`` returns). SHA-256 and the byte count are computed as bytes pass. When the
body ends, its length is checked against ``Content-Length`` and against the size the WAV header declares;
a short body, or a connection lost mid-way, raises :class:`RingCXIncompleteDownloadError` - from then on
every ``read`` raises again, so an uploader can never mistake a truncated recording for a complete one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from airflow_provider_ringcx.exceptions import (
    RingCXBadPayloadError,
    RingCXConfigError,
    RingCXError,
    RingCXIncompleteDownloadError,
)
from airflow_provider_ringcx.hooks.budget import RateBudget
from airflow_provider_ringcx.hooks.client import HttpClient, TokenSource
from airflow_provider_ringcx.hooks.settings import RingCXSettings
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
    """

    def __init__(self, response: requests.Response, *, what: str, chunk_size: int = CHUNK_BYTES) -> None:
        super().__init__()
        self._response = response
        self.what = what
        self.headers: Mapping[str, str] = response.headers
        self.content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        length = response.headers.get("Content-Length")
        self.content_length: int | None = int(length) if length and length.isdigit() else None
        self._source = response.iter_content(chunk_size)
        self._pending = bytearray()
        self._sha = hashlib.sha256()
        self._received = 0
        self._eof = False
        self._error: RingCXError | None = None
        self._parser = WavHeaderParser()
        self.bytes_read = 0
        self.complete = False
        self.wav: WavInfo | None = None

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

        :raises RingCXIncompleteDownloadError: the body is shorter than announced or the connection broke.
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
            chunk = next(self._source, None)
        except (requests.RequestException, OSError) as err:
            expected = "" if self.content_length is None else f" of {self.content_length}"
            raise self._fail(
                RingCXIncompleteDownloadError(
                    f"{self.what}: connection lost after {self._received}{expected} bytes "
                    f"({type(err).__name__}); nothing was archived - retry the download"
                )
            ) from None
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
        return True

    def _verify_end(self) -> None:
        if self.content_length is not None and self._received != self.content_length:
            raise self._fail(
                RingCXIncompleteDownloadError(
                    f"{self.what}: received {self._received} bytes but Content-Length is "
                    f"{self.content_length}; nothing was archived - retry the download"
                )
            )
        expected = self.wav.expected_min_size if self.wav else None
        if expected is not None and self._received < expected:
            raise self._fail(
                RingCXIncompleteDownloadError(
                    f"{self.what}: received {self._received} bytes but the WAV header declares {expected}; "
                    "the recording is truncated - retry the download"
                )
            )
        if self.content_length is None and expected is None:
            log.warning(
                "%s: neither Content-Length nor a WAV data size; the length cannot be verified", self.what
            )

    def _fail(self, error: RingCXError) -> RingCXError:
        self._error = error
        self._pending.clear()
        self._response.close()
        return error


class RecordingDownloader:
    """Opens recording streams for one sub-account, paced by the download budget."""

    def __init__(
        self, settings: RingCXSettings, http: HttpClient, tokens: TokenSource, budget: RateBudget
    ) -> None:
        self.settings = settings
        self.http = http
        self.tokens = tokens
        self.budget = budget

    def path(self, dialog_id: str, segment_id: str) -> str:
        """The vendor path of one recording."""
        return recording_path(
            self.settings.rc_account_id, self.settings.sub_account_id, dialog_id, segment_id
        )

    @contextlib.contextmanager
    def open(self, dialog_id: str, segment_id: str) -> Iterator[RecordingStream]:
        """GET the recording, check status, content type and WAV header; yield the stream; close it after."""
        path = self.path(dialog_id, segment_id)
        what = f"recording dialog {dialog_id!r} segment {segment_id!r}"
        streams: list[RecordingStream] = []

        def check(response: requests.Response) -> None:
            streams.append(self._checked(response, what))

        self.http.send_authenticated(
            "GET",
            self.settings.api_url + path,
            self.tokens,
            what=f"GET {what}",
            budget=self.budget,
            headers={"Accept": "audio/wav"},
            stream=True,
            check=check,
        )
        stream = streams[-1]
        try:
            yield stream
        finally:
            stream.close()

    @staticmethod
    def _checked(response: requests.Response, what: str) -> RecordingStream:
        stream = RecordingStream(response, what=what)
        if stream.content_type not in WAV_CONTENT_TYPES:
            hint = (
                "RingCX sends MP3 to browser-like User-Agents; do not override the hook's User-Agent"
                if "mpeg" in stream.content_type
                else "check that api_url points at the RingCX API (not a proxy or login page)"
            )
            stream.close()
            raise RingCXBadPayloadError(
                f"{what}: expected audio/wav but got Content-Type {stream.content_type!r}; {hint}"
            )
        stream.peek_header()
        return stream
