"""Reading a streamed response body in bounded time, with its wire encoding checked.

**Deadline (issue #12 item 11).** ``read_timeout`` bounds each silence, not a whole body: a server that sends
one byte every 2 s never trips a 60 s read timeout and holds the worker (and its pool slot) for as long as it
likes. :class:`BodyReader` therefore gives each body a *total* deadline on the time spent waiting for the
server: the sum of the time blocked in socket reads. Time the consumer spends elsewhere (an S3 part upload,
parsing JSON) is not counted, so a slow S3 cannot make a healthy vendor look slow. Reads go through urllib3's
``read1``, which returns as soon as one ``recv`` brings data, so the deadline is checked between every two
arrivals; ``iter_content`` would block inside one 64 KiB read until all of it arrived, i.e. forever.
When the deadline passes the body is abandoned with :class:`RingCXIncompleteDownloadError` (retryable) whose
message says that the server sent too slowly and what the deadline was.

**Encodings (item 3).** Recordings are requested with ``Accept-Encoding: identity``; a server that
compresses anyway is decoded by urllib3 when the coding is one we support (:data:`SUPPORTED_ENCODINGS`); any
other coding is refused by :func:`content_encodings` with an error naming it, before any byte is read.
:attr:`BodyReader.wire_bytes` counts the bytes as received (before decoding), which is what an encoded
body's ``Content-Length`` describes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
import urllib3.exceptions

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError, RingCXIncompleteDownloadError

CHUNK_BYTES = 64 * 1024
#: Content codings urllib3 decodes for us (``x-gzip`` is gzip's old name; ``identity`` is no coding).
SUPPORTED_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})

Deadline = Callable[[], float]


def content_encodings(response: requests.Response, what: str) -> tuple[str, ...]:
    """The content codings of ``response`` (``identity`` dropped), lower-case, in the order applied.

    :raises RingCXBadPayloadError: a coding other than gzip/deflate, named, with the fix.
    """
    header = response.headers.get("Content-Encoding", "")
    codings = tuple(part.strip().lower() for part in header.split(",") if part.strip())
    codings = tuple(coding for coding in codings if coding != "identity")
    unsupported = [coding for coding in codings if coding not in SUPPORTED_ENCODINGS]
    if unsupported:
        response.close()
        raise RingCXBadPayloadError(
            f"{what}: the server sent Content-Encoding {header.strip()!r}, which cannot be decoded here "
            f"({', '.join(unsupported)} is not supported; only gzip and deflate are) although the request "
            "asked for identity; nothing was archived - check for a proxy that recompresses responses"
        )
    return codings


class BodyReader:
    """Iterate a streamed ``requests`` response's decoded body within a total wait deadline.

    :param response: a response opened with ``stream=True``.
    :param what: how errors name the body.
    :param deadline: the allowed total wait in seconds; a callable is asked again after every arrival (a
        recording's deadline grows once its WAV header tells its size).
    :param action: what the caller does next, appended to error messages (e.g. "retry the download").
    :param clock: monotonic seconds; injectable so tests need not wait.
    :param announced: the length the headers announced, quoted when the connection breaks.
    """

    def __init__(
        self,
        response: requests.Response,
        *,
        what: str,
        deadline: float | Deadline,
        action: str,
        clock: Callable[[], float] = time.monotonic,
        chunk_size: int = CHUNK_BYTES,
        announced: int | None = None,
    ) -> None:
        self._response = response
        self._announced = announced
        self._raw: Any = response.raw
        self.what = what
        self._deadline = deadline if callable(deadline) else (lambda: float(deadline))
        self.action = action
        self._clock = clock
        self._chunk_size = chunk_size
        self.waited = 0.0
        self.received = 0  # decoded bytes handed out
        self._read = getattr(self._raw, "read1", None)

    @property
    def wire_bytes(self) -> int | None:
        """Bytes received from the socket before decoding (``None`` if urllib3 cannot tell)."""
        tell = getattr(self._raw, "tell", None)
        try:
            return int(tell()) if callable(tell) else None
        except (OSError, ValueError, TypeError):  # pragma: no cover - defensive
            return None

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self.next_chunk()
            if chunk is None:
                return
            yield chunk

    def next_chunk(self) -> bytes | None:
        """The next decoded bytes, or ``None`` at the end of the body.

        :raises RingCXIncompleteDownloadError: the connection broke, or the deadline passed.
        :raises RingCXBadPayloadError: the encoded body could not be decoded.
        """
        began = self._clock()
        try:
            if self._read is not None:
                data = self._read(self._chunk_size, decode_content=True)
            else:  # pragma: no cover - urllib3 < 2.3 has no read1
                data = self._raw.read(self._chunk_size, decode_content=True)
        except urllib3.exceptions.DecodeError as err:
            raise RingCXBadPayloadError(
                f"{self.what}: the {self._response.headers.get('Content-Encoding')!r}-encoded body could "
                f"not be decoded after {self.received} bytes ({type(err).__name__}); {self.action}"
            ) from None
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as err:
            of = "" if self._announced is None else f" of {self._announced}"
            raise RingCXIncompleteDownloadError(
                f"{self.what}: connection lost after {self.received}{of} bytes ({type(err).__name__}); "
                f"{self.action}"
            ) from None
        finally:
            self.waited += max(0.0, self._clock() - began)
        if not data:
            return None
        self.received += len(data)
        self.check_deadline()
        return bytes(data)

    def check_deadline(self) -> None:
        """Raise once the total wait is over the deadline (called after every arrival)."""
        limit = self._deadline()
        if self.waited > limit:
            self._response.close()
            raise RingCXIncompleteDownloadError(
                f"{self.what}: the server sent too slowly - {self.received} bytes in {self.waited:.1f} s of "
                f"waiting, over this body's total deadline of {limit:.3g} s; {self.action}"
            )
