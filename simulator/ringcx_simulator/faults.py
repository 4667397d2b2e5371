"""Fault injection per route, by probability or by a scripted sequence.

A rule (``POST /_sim/faults`` takes a JSON list of them)::

    {"route": "download", "kind": "reset", "after_bytes": 65536, "times": 2}

* ``route``: metadata | download | exchange | refresh | oauth | account | admin_accounts |
  admin_subaccounts | transcripts | summaries | any
* ``kind``: status (``status``, default 503) | rate_limit (429; ``retry_after``: true, false or "date";
  ``retry_after_seconds``, default 1) | reset (a real TCP RST, SO_LINGER 0, once ``after_bytes`` body
  bytes were handed to the kernel; like any reset it may discard bytes still in flight, so the client sees
  *at most* ``after_bytes``) | truncate (a clean FIN after exactly ``after_bytes`` body bytes although
  Content-Length announced the full size; chunked bodies lack the final chunk) | stall (sleep
  ``stall_seconds`` real seconds after ``after_bytes`` bytes, then finish) | expire_token (the presented
  token expires now, 401) | revoke_tokens (every issued token - RingCentral and RingCX, access and
  refresh - is revoked now, like ``POST /_sim/revoke``, and the request gets 401; the permanent API token
  stays) | html200 (an HTML error page with status 200) | malformed_json | json_object
  (an object instead of the array) | non_wav (200 audio/wav whose body is not RIFF/WAVE) | dribble
  (after ``after_bytes`` bytes, send ``dribble_bytes`` bytes every ``every_seconds`` real seconds, each
  gap under any sane read timeout, until the body ends: a server that never times out yet never finishes)
  | short (a *clean* end after exactly ``after_bytes`` body bytes: with ``download_length`` chunked the
  terminating chunk is sent, with close the connection is closed normally, so nothing but the payload
  itself can tell the body is short; with a Content-Length it is a truncation) | gzip (the body is
  compressed whatever ``Accept-Encoding`` asked for and sent with ``Content-Encoding: <encoding>``:
  ``encoding`` gzip (default) or deflate compresses for real, any other name such as br or zstd only
  labels the plain body, and ``negotiated`` gzips a recording only if ``Accept-Encoding`` allows gzip;
  a Content-Length, when sent, is the encoded length). Two fields make it hostile: ``stream_kind`` (one
  of the stream kinds above, e.g. dribble) disturbs the *encoded* bytes with the rule's ``after_bytes``,
  ``dribble_bytes``, ``every_seconds``... (a slow compressed body), and ``bomb_bytes`` appends that many
  zero bytes to the plain body before compressing (a decompression bomb: 64 MiB of zeros gzip to ~64 KiB,
  far more than the WAV header or Content-Length declares)
* JSON bodies (metadata, and the auth routes' token objects): deep_nesting (``[[[...]]]`` ``depth`` levels,
  default 100,000: the whole body, or the value of ``row_field`` in array element ``row``) | non_finite
  (``row_field``, default segmentDurationMs, of element ``row`` becomes the literal ``constant``: NaN,
  Infinity or -Infinity); see :mod:`~ringcx_simulator.hostile_json`
* redirect (issue #12 item 7): answer ``status`` if it is a 3xx, else 307, with ``Location`` = ``location``
  (a base URL such as ``http://127.0.0.2:PORT``, e.g. a capture server the test runs) + the request's path
  and query (a ``?query`` on ``location`` is appended to the request's: a pre-signed URL's signature); on
  the oauth, exchange and refresh routes, metadata and downloads it shows whether a client
  re-sends the JWT, the client secret or a token to another host
* ``probability`` (default 1.0) is drawn from an RNG seeded by ``fault_seed``; ``times`` limits the rule
  to the next N matching requests (scripted); ``skip`` lets the first N matching requests through first;
  ``match`` restricts the rule to request paths containing that (decoded) text, e.g. a segment id.

Rules are tried in order; the first that fires wins. Rules whose ``times`` are used up stay listed with
``times: 0`` until cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ringcx_simulator.hostile_json import HOSTILE_JSON_KINDS, NON_FINITE_CONSTANTS

ROUTES = (
    *("metadata", "download", "exchange", "refresh", "oauth", "account"),
    *("admin_accounts", "admin_subaccounts", "transcripts", "summaries", "any"),
)
#: Kinds that replace the response before the handler does any work.
RESPONSE_KINDS = ("status", "rate_limit", "expire_token", "revoke_tokens", "html200", "redirect")
#: Kinds that replace a successful body.
PAYLOAD_KINDS = ("malformed_json", "json_object", "non_wav", *HOSTILE_JSON_KINDS)
#: Kinds that disturb the transfer of a successful body.
STREAM_KINDS = ("reset", "truncate", "stall", "dribble", "short")
#: Kinds that change how a successful body is encoded on the wire.
ENCODING_KINDS = ("gzip",)
KINDS = RESPONSE_KINDS + PAYLOAD_KINDS + STREAM_KINDS + ENCODING_KINDS

#: ASGI scope extension under which the simulator's uvicorn protocol exposes the connection's transport.
TRANSPORT_EXTENSION = "ringcx.sim.transport"


class SimulatedDisconnect(Exception):
    """Raised inside a body stream after the connection was cut on purpose (filtered from server logs)."""


@dataclass
class FaultRule:
    route: str
    kind: str
    status: int = 503
    probability: float = 1.0
    times: int | None = None
    skip: int = 0
    match: str | None = None
    after_bytes: int = 0
    stall_seconds: float = 1.0
    retry_after: bool | str = True
    retry_after_seconds: int = 1
    dribble_bytes: int = 1
    every_seconds: float = 2.0
    encoding: str = "gzip"
    depth: int = 100_000
    constant: str = "NaN"
    row_field: str | None = None
    row: int = 0
    location: str | None = None
    stream_kind: str | None = None
    bomb_bytes: int = 0
    fired: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """Validate one rule.

        :raises ValueError: unknown field, route or kind, or a value out of range.
        """
        fields = set(cls.__dataclass_fields__) - {"fired"}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"fault rule {data!r}: unknown field(s) {', '.join(unknown)}")
        if data.get("route") not in ROUTES:
            raise ValueError(f"fault rule {data!r}: route must be one of {', '.join(ROUTES)}")
        if data.get("kind") not in KINDS:
            raise ValueError(f"fault rule {data!r}: kind must be one of {', '.join(KINDS)}")
        rule = cls(**data)
        if not 0.0 <= rule.probability <= 1.0:
            raise ValueError(f"fault rule {data!r}: probability must be within 0..1")
        if rule.times is not None and rule.times < 0:
            raise ValueError(f"fault rule {data!r}: times must be >= 0")
        if not 100 <= rule.status <= 599 or rule.after_bytes < 0 or rule.stall_seconds < 0:
            raise ValueError(f"fault rule {data!r}: status 100..599, after_bytes and stall_seconds >= 0")
        if rule.dribble_bytes < 1 or rule.every_seconds < 0 or not rule.encoding.strip():
            raise ValueError(
                f"fault rule {data!r}: dribble_bytes >= 1, every_seconds >= 0 and a non-empty encoding"
            )
        if rule.kind == "redirect" and not (
            isinstance(rule.location, str) and rule.location.startswith(("http://", "https://"))
        ):
            raise ValueError(f"fault rule {data!r}: kind redirect needs location, an http(s) base URL")
        if rule.stream_kind is not None and (rule.kind != "gzip" or rule.stream_kind not in STREAM_KINDS):
            kinds = ", ".join(STREAM_KINDS)
            raise ValueError(f"fault rule {data!r}: stream_kind goes with kind gzip and is one of {kinds}")
        if rule.bomb_bytes < 0 or (rule.bomb_bytes and rule.kind != "gzip"):
            raise ValueError(f"fault rule {data!r}: bomb_bytes is >= 0 and goes with kind gzip")
        if rule.retry_after not in (True, False, "date"):
            raise ValueError(f"fault rule {data!r}: retry_after must be true, false or 'date'")
        if rule.depth < 1 or rule.row < 0 or rule.constant not in NON_FINITE_CONSTANTS:
            raise ValueError(
                f"fault rule {data!r}: depth >= 1, row >= 0, constant one of "
                f"{', '.join(NON_FINITE_CONSTANTS)}"
            )
        return rule

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def stream_fault(self) -> str | None:
        """The stream kind this rule applies to the bytes sent: its own kind, or a gzip rule's
        ``stream_kind``; ``None`` when it leaves the transfer alone."""
        if self.kind in STREAM_KINDS:
            return self.kind
        return self.stream_kind if self.kind == "gzip" else None


def disturbs(rule: FaultRule | None) -> bool:
    """Whether ``rule`` disturbs the transfer of the body (see :func:`disturb`)."""
    return rule is not None and rule.stream_fault is not None


class FaultInjector:
    """The active rules and the seeded draw (thread-safe)."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)

    def set_rules(self, rules: Iterable[dict[str, Any]], *, append: bool = False) -> list[FaultRule]:
        parsed = [FaultRule.from_dict(dict(rule)) for rule in rules]
        with self._lock:
            self._rules = ([*self._rules, *parsed]) if append else parsed
            return list(self._rules)

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def draw(self, route: str, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any (consumes ``skip``/``times``)."""
        with self._lock:
            for rule in self._rules:
                if rule.route not in (route, "any"):
                    continue
                if rule.match is not None and rule.match not in path:
                    continue
                if rule.times is not None and rule.times <= 0:
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                rule.fired += 1
                return FaultRule(**{**asdict(rule)})
        return None


async def _drain(transport: Any) -> None:
    """Wait until the transport has handed every buffered byte to the kernel (bounded)."""
    for _ in range(400):
        if transport.is_closing() or transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)  # let the kernel push the bytes out before the cut


async def _cut(transport: Any, *, reset: bool) -> None:
    """Close the connection: RST (SO_LINGER 0 + abort) for ``reset``, else a plain FIN."""
    if transport is None:
        return
    await _drain(transport)
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()


async def disturb(
    chunks: AsyncIterator[bytes], rule: FaultRule | None, transport: Any
) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, applying a stream fault (reset, truncate, stall, dribble, short) after
    ``after_bytes``: the rule's kind, or a gzip rule's ``stream_kind`` (then on the encoded bytes)."""
    kind = None if rule is None else rule.stream_fault
    if rule is None or kind is None:
        async for chunk in chunks:
            yield chunk
        return
    sent = 0
    triggered = False
    async for chunk in chunks:
        if not triggered and sent + len(chunk) >= rule.after_bytes:
            head = chunk[: rule.after_bytes - sent]
            if head:
                yield head
            sent += len(head)
            triggered = True
            if kind == "short":
                return  # a clean end: the framing (chunked terminator, FIN) says the body is complete
            if kind == "dribble":
                async for piece in _dribble(chunk[len(head) :], chunks, rule):
                    yield piece
                return
            if kind == "stall":
                await asyncio.sleep(rule.stall_seconds)
                rest = chunk[len(head) :]
                if rest:
                    yield rest
                continue
            await _cut(transport, reset=kind == "reset")
            raise SimulatedDisconnect(kind)
        if triggered or sent + len(chunk) < rule.after_bytes:
            sent += len(chunk)
            yield chunk
    if not triggered and kind in ("reset", "truncate"):
        await _cut(transport, reset=kind == "reset")
        raise SimulatedDisconnect(kind)


async def _dribble(rest: bytes, chunks: AsyncIterator[bytes], rule: FaultRule) -> AsyncIterator[bytes]:
    """The rest of the body, ``dribble_bytes`` at a time, ``every_seconds`` apart."""
    pending = bytearray(rest)
    more = True
    while pending or more:
        if len(pending) < rule.dribble_bytes and more:
            try:
                pending += await chunks.__anext__()
            except StopAsyncIteration:
                more = False
            continue
        await asyncio.sleep(rule.every_seconds)
        piece = bytes(pending[: rule.dribble_bytes])
        del pending[: rule.dribble_bytes]
        yield piece


async def iterate(data: Iterable[bytes]) -> AsyncIterator[bytes]:
    """An async iterator over an in-memory iterable of chunks (no thread hop)."""
    for chunk in data:
        yield chunk
