"""Reading a streamed response body in bounded time and bounded memory, with its wire encoding checked.

**Deadline (issue #12 item 11).** ``read_timeout`` bounds each silence, not a whole body: a server that sends
one byte every 2 s never trips a 60 s read timeout and holds the worker (and its pool slot) for as long as it
likes. :class:`BodyReader` therefore gives each body a *total* deadline on the time spent waiting for the
server: the sum of the time blocked in socket reads. Time the consumer spends elsewhere (an S3 part upload,
parsing JSON) is not counted, so a slow S3 cannot make a healthy vendor look slow. Reads go through urllib3's
``read1``, which returns as soon as one ``recv`` brings data, so the deadline is checked between every two
arrivals; ``iter_content`` would block inside one 64 KiB read until all of it arrived, i.e. forever.
When the deadline passes the body is abandoned with :class:`RingCXIncompleteDownloadError` (retryable) whose
message says that the server sent too slowly and what the deadline was.

**Encodings (item 3).** Recordings are requested with ``Accept-Encoding: identity``; any coding other than
:data:`SUPPORTED_ENCODINGS` is refused by :func:`content_encodings` with an error naming it, before any byte
is read. A gzip or deflate body is decoded *here*, not by urllib3: urllib3's ``read1(decode_content=True)``
loops over raw reads until the decoder yields output, so a compressed body dribbled a byte at a time (the
gzip trailer, a block header) was never checked against the deadline between those reads. So the raw
(still encoded) stream is read in bounded chunks, the deadline is checked after *every* raw read, and each
coding is undone by a ``zlib.decompressobj`` (:class:`Inflater`) asked for at most ``chunk_size`` decoded
bytes per step (``max_length``; the input it did not consume waits in ``unconsumed_tail``): a
decompression bomb (64 KiB that inflate to 64 MiB) never allocates more than one chunk at a time. The
*total* decoded size is bounded by the caller, which knows what the body should hold (a recording's
Content-Length, WAV size or duration, :mod:`~airflow_provider_ringcx.hooks.download`). gzip may be several
members (RFC 1952); deflate is a zlib stream (RFC 9110), or a raw deflate stream from servers that get it
wrong. A compressed stream that ends before its end marker, or with bytes after it, is refused.
:attr:`BodyReader.wire_bytes` counts the bytes as received (before decoding), which is what an encoded
body's ``Content-Length`` describes.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import requests
import urllib3.exceptions

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError, RingCXIncompleteDownloadError

CHUNK_BYTES = 64 * 1024
#: Content codings decoded here (``x-gzip`` is gzip's old name; ``identity`` is no coding).
SUPPORTED_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})
_GZIP_MAGIC = b"\x1f\x8b"

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


class InflateError(ValueError):
    """The encoded bytes are not a valid gzip/deflate stream (the message says why)."""


class Inflater:
    """Undo one content coding incrementally, at most ``limit`` decoded bytes per :meth:`step`.

    :param coding: ``gzip``, ``x-gzip`` or ``deflate``.
    """

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._gzip = coding in ("gzip", "x-gzip")
        self._raw_fallback = not self._gzip  # deflate: a zlib stream, else raw deflate (first bytes)
        self._seen = bytearray()  # the first bytes of a deflate body, replayed if it is raw deflate
        self._zlib = self._new()
        self._pending = b""  # input not yet given to the decompressor (a following gzip member)

    def _new(self, raw: bool = False) -> Any:
        wbits = 16 + zlib.MAX_WBITS if self._gzip else (-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        return zlib.decompressobj(wbits)

    @property
    def has_pending(self) -> bool:
        """Whether input is left over that can yield output without new bytes."""
        return bool(self._pending or self._zlib.unconsumed_tail)

    def step(self, data: bytes, limit: int) -> bytes:
        """Decode ``data`` (after any input left over from the last step); at most ``limit`` bytes out.

        :raises InflateError: the bytes are not a valid stream of this coding.
        """
        data = self._pending + self._zlib.unconsumed_tail + data
        self._pending = b""
        if self._zlib.eof:
            if not data:
                return b""
            data = self._next_member(data)
        if self._raw_fallback:
            self._seen += data
        try:
            out = self._zlib.decompress(data, limit)
        except zlib.error as err:
            if not self._raw_fallback:
                raise InflateError(f"invalid {self.coding} data ({err})") from None
            self._zlib, self._raw_fallback = self._new(raw=True), False  # deflate sent without zlib header
            seen, self._seen = bytes(self._seen), bytearray()
            try:
                out = self._zlib.decompress(seen, limit)
            except zlib.error as raw_err:
                raise InflateError(f"invalid {self.coding} data ({raw_err})") from None
        if self._raw_fallback and len(self._seen) >= 2:  # the zlib header was accepted
            self._raw_fallback = False
            self._seen.clear()
        if self._zlib.eof and self._zlib.unused_data:
            self._pending = self._zlib.unused_data  # a following gzip member, or trailing bytes
        return out

    def _next_member(self, data: bytes) -> bytes:
        """Start the next gzip member at ``data``; anything else after the end is refused."""
        if not self._gzip or not data.startswith(_GZIP_MAGIC[: len(data)]):
            raise InflateError(f"{len(data)} unexpected bytes after the end of the {self.coding} stream")
        self._zlib = self._new()
        return data

    def finish(self) -> None:
        """Check that the stream ended at its end marker (call at the end of the input).

        :raises InflateError: the encoded stream stopped early, or bytes follow its end.
        """
        if self._pending:
            self._next_member(self._pending)  # raises unless it is the start of another member
            raise InflateError(f"the {self.coding} stream stopped inside a member's header")
        if not self._zlib.eof:
            raise InflateError(f"the {self.coding} stream stopped before its end marker")


class BodyReader:
    """Iterate a streamed ``requests`` response's decoded body within a total wait deadline.

    :param response: a response opened with ``stream=True``.
    :param what: how errors name the body.
    :param deadline: the allowed total wait in seconds; a callable is asked again after every raw read (a
        recording's deadline grows once its WAV header tells its size).
    :param action: what the caller does next, appended to error messages (e.g. "retry the download").
    :param clock: monotonic seconds; injectable so tests need not wait.
    :param chunk_size: the most bytes one raw read asks for and one decoded chunk holds.
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
        #: Bytes received from the socket before decoding (what an encoded body's Content-Length counts).
        self.wire_bytes = 0
        self._read = getattr(self._raw, "read1", None) or self._raw.read
        #: Decoders in decoding order: the coding applied last is undone first.
        self._stages = [Inflater(coding) for coding in reversed(content_encodings(response, what))]
        self._ended = False

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self.next_chunk()
            if chunk is None:
                return
            yield chunk

    def next_chunk(self) -> bytes | None:
        """The next decoded bytes (at most ``chunk_size``), or ``None`` at the end of the body.

        :raises RingCXIncompleteDownloadError: the connection broke, the deadline passed, or a compressed
            stream stopped before its end.
        :raises RingCXBadPayloadError: the encoded body could not be decoded.
        """
        data = self._pull(len(self._stages), self._chunk_size)
        if data is None:
            return None
        self.received += len(data)
        return data

    def _pull(self, depth: int, limit: int) -> bytes | None:
        """At most ``limit`` bytes decoded by the first ``depth`` stages (never empty); None at the end."""
        if depth == 0:
            return self._raw_chunk()
        stage = self._stages[depth - 1]
        while True:
            data = b"" if stage.has_pending else self._pull(depth - 1, self._chunk_size)
            if data is None:
                self._inflate(stage.finish)
                return None
            out: bytes = self._inflate(stage.step, data, limit)
            if out:
                return out
            # no output yet (a header, a trailer, a dribbled byte): read on - each raw read checked the
            # deadline, which urllib3's decoding read1 never did between its own raw reads

    def _inflate(self, work: Callable[..., Any], *args: Any) -> Any:
        """``work(*args)`` with an :class:`InflateError` turned into the typed error for this body."""
        try:
            return work(*args)
        except InflateError as err:
            self._response.close()
            problem = str(err)
            error = RingCXIncompleteDownloadError if "stopped" in problem else RingCXBadPayloadError
            raise error(
                f"{self.what}: the {self._response.headers.get('Content-Encoding')!r}-encoded body could "
                f"not be decoded after {self.received} bytes: {problem}; {self.action}"
            ) from None

    def _raw_chunk(self) -> bytes | None:
        """One raw read (one ``recv`` worth, at most ``chunk_size``); the deadline is checked after it."""
        if self._ended:
            return None
        began = self._clock()
        try:
            data = self._read(self._chunk_size, decode_content=False)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as err:
            of = "" if self._announced is None else f" of {self._announced}"
            self._response.close()
            raise RingCXIncompleteDownloadError(
                f"{self.what}: connection lost after {self.received}{of} bytes ({type(err).__name__}); "
                f"{self.action}"
            ) from None
        finally:
            self.waited += max(0.0, self._clock() - began)
        if not data:
            self._ended = True
            self.check_deadline()  # the wait for the end counts too
            return None
        self.wire_bytes += len(data)
        self.check_deadline()
        return bytes(data)

    def check_deadline(self) -> None:
        """Raise once the total wait is over the deadline (called after every raw read)."""
        limit = self._deadline()
        if self.waited > limit:
            self._response.close()
            raise RingCXIncompleteDownloadError(
                f"{self.what}: the server sent too slowly - {self.received} bytes in {self.waited:.1f} s of "
                f"waiting, over this body's total deadline of {limit:.3g} s; {self.action}"
            )
