"""A streaming parser for a top-level JSON array: bytes in, one element at a time out.

``interaction-metadata`` answers with a bare JSON array that may hold 100,000 rows or more;
:func:`iter_json_array` decodes it element by element from the response's byte chunks, so memory stays
bounded by the largest row, and a malformed or truncated body is refused with the position and an excerpt.

Every chunk's nesting is counted as it arrives, before the decoder sees it, by a scanner that does not
recurse (:class:`~airflow_provider_ringcx.jsonutil.DepthGuard`): a body nested deeper than
:data:`~airflow_provider_ringcx.jsonutil.MAX_DEPTH` levels is refused as a bad payload naming the window,
instead of reaching the recursive decoder and ending in a bare ``RecursionError``. ``NaN`` and
``Infinity`` decode to :class:`~airflow_provider_ringcx.jsonutil.NonFinite` markers, never to floats.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError
from airflow_provider_ringcx.hooks.client import sanitize
from airflow_provider_ringcx.jsonutil import (
    MAX_DEPTH,
    DepthGuard,
    JSONTooDeepError,
    check_finite,
    vendor_decoder,
)

MAX_ROW_CHARS = 16 * 1024 * 1024
_WS = " \t\r\n\ufeff"


def check_row_finite(value: Any, raw: str) -> None:
    """Refuse a row holding ``NaN``/``Infinity`` (anywhere, nested fields included), naming the fields.

    Such a row is not stored (manifest and sidecar must stay standard JSON, and it is the vendor's row or
    nothing): the caller lists it as unparseable, like a row without an id, and the rest of the window goes
    on.

    :raises RingCXBadPayloadError: the row holds a non-finite number.
    """

    def error(reason: str) -> RingCXBadPayloadError:
        excerpt = raw if len(raw) <= 300 else raw[:300] + "..."
        return RingCXBadPayloadError(
            f"metadata row cannot be parsed: {reason}; not archived, listed in the window report as "
            f"unparseable - report the row to RingCentral support: {excerpt}"
        )

    check_finite(value, raw, error)


def iter_json_array(chunks: Iterable[bytes], *, what: str) -> Iterator[tuple[Any, str]]:
    """Yield ``(element, raw_text)`` for each element of a top-level JSON array, decoding incrementally.

    :param chunks: the body as byte chunks (e.g. ``response.iter_content``).
    :param what: how errors name the response (the window).
    :raises RingCXBadPayloadError: the body is not a JSON array, is malformed or truncated, or nests deeper
        than :data:`~airflow_provider_ringcx.jsonutil.MAX_DEPTH` levels.
    """
    decoder = vendor_decoder()
    utf8 = codecs.getincrementaldecoder("utf-8")("strict")
    source = iter(chunks)
    buf, pos, eof, consumed = "", 0, False, 0
    depth = DepthGuard(MAX_DEPTH)

    def more() -> bool:
        nonlocal buf, pos, eof, consumed
        if eof:
            return False
        try:
            chunk = next(source)
            text = utf8.decode(chunk)
        except StopIteration:
            eof, text = True, utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            raise RingCXBadPayloadError(f"{what}: the response is not UTF-8 text; check api_url") from None
        consumed += pos
        buf, pos = buf[pos:] + text, 0
        try:
            depth.feed(text)  # before the recursive decoder sees the text
        except JSONTooDeepError:
            raise bad(f"the JSON nests deeper than {MAX_DEPTH} levels; RingCX rows nest at most 4") from None
        return True

    def skip_ws() -> bool:
        """Advance over whitespace; False at end of body."""
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            if pos < len(buf):
                return True
            if not more():
                return False

    def bad(problem: str) -> RingCXBadPayloadError:
        near = sanitize(buf[pos : pos + 120], 120)
        return RingCXBadPayloadError(
            f"{what}: {problem} (at character {consumed + pos}, near {near!r}); the window was not "
            "archived - retry it later; if it persists check api_url and report the response to RingCentral"
        )

    if not skip_ws():
        raise bad("the response body is empty, expected a JSON array")
    if buf[pos] == "{":
        raise bad("expected a JSON array of segments but got a JSON object (an error body or a wrong path?)")
    if buf[pos] == "<":
        raise bad("the response is an HTML page, not JSON; check that api_url points at the RingCX API")
    if buf[pos] != "[":
        raise bad("the response is not JSON (expected a JSON array of segments)")
    pos += 1
    first = True
    while True:
        if not skip_ws():
            raise bad("the JSON array is truncated (no closing ']')")
        if buf[pos] == "]":
            pos += 1
            if skip_ws():
                raise bad("unexpected data after the JSON array")
            return
        if not first:
            if buf[pos] != ",":
                raise bad("expected ',' or ']' between array elements")
            pos += 1
            if not skip_ws():
                raise bad("the JSON array is truncated after ','")
        while True:
            try:
                value, stop = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as err:
                incomplete = err.pos + 64 >= len(buf) or err.msg.startswith("Unterminated string")
                if eof or not incomplete:
                    raise bad(f"malformed JSON ({err.msg})") from None
                if len(buf) - pos > MAX_ROW_CHARS:
                    raise bad(f"an array element is larger than {MAX_ROW_CHARS} characters") from None
                more()
                continue
            scalar = not isinstance(value, (dict, list, str))
            if scalar and not eof and (stop == len(buf) or buf[stop] not in _WS + ",]"):
                more()  # a number at the end of the buffer may continue in the next chunk ("45" + "6e1")
                continue
            break
        raw = buf[pos:stop]
        pos = stop
        first = False
        yield value, raw
