"""Vendor data routes: interaction-metadata (POST) and the recording download (GET)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from itertools import islice
from urllib.parse import unquote

from fastapi import APIRouter
from starlette.concurrency import iterate_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ringcx_simulator.audio import fake_mp3
from ringcx_simulator.bodies import (
    CloseDelimitedResponse,
    collect,
    encode,
    placeholder_sizes,
)
from ringcx_simulator.errors import (
    HTML_ERROR_PAGE,
    errors_response,
    forbidden_response,
)
from ringcx_simulator.faults import (
    ENCODING_KINDS,
    PAYLOAD_KINDS,
    FaultRule,
    disturb,
    iterate,
)
from ringcx_simulator.guards import (
    authenticate,
    body_response,
    charge,
    draw_fault,
    sim,
    transport,
)
from ringcx_simulator.metadata import parse_query, render_row, too_recent

CX = "/voice/api/cx/integration/v1/accounts/{rc_account_id}/sub-accounts/{sub_account_id}"
router = APIRouter()
#: Rows per streamed chunk of a bulk metadata response.
_ROWS_PER_CHUNK = 500


class _AnyPath(Convertor[str]):
    """Starlette's ``path`` convertor (``.*``) does not match a newline: a decoded id holding ``%0A``
    would fall through to FastAPI's plain 404. This one matches any text (the ids are read from the raw
    path anyway, see :func:`_recording_ids`)."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("ringcx_sim_any", _AnyPath())
_BROWSER_MARKERS = ("Mozilla/", "Chrome/", "Safari/", "Firefox/")


def _account_error(request: Request, rc_account_id: str, sub_account_id: str) -> Response | None:
    config = sim(request).config
    if rc_account_id != config.rc_account_id or sub_account_id not in config.sub_account_ids:
        return forbidden_response(request, config.forbidden_shape)
    return None


@router.post(CX + "/interaction-metadata")
async def interaction_metadata(request: Request, rc_account_id: str, sub_account_id: str) -> Response:
    """Segments whose end falls in the requested window, as a bare JSON array (see ``metadata.py``)."""
    rule, early = draw_fault(request, "metadata")
    if early is not None:
        return early
    denied = authenticate(request) or _account_error(request, rc_account_id, sub_account_id)
    if denied is not None:
        return denied
    state = sim(request)
    config = state.config
    limited = charge(request, "metadata", sub_account_id, config.metadata_budget)
    if limited is not None:
        return limited
    query = parse_query(await request.body(), config)
    if isinstance(query, list):
        return errors_response(request, 400, query)
    not_ready = too_recent(query, state.clock.now(), config)
    if not_ready is not None:
        return errors_response(request, 400, not_ready, details="window is not completed yet")
    base_url = str(request.base_url).rstrip("/")
    if state.bulk_in_window(sub_account_id, query.start_ms, query.end_ms):
        return _stream_rows(request, sub_account_id, query.start_ms, query.end_ms, base_url, rule)
    rows = [
        render_row(segment, config, base_url)
        for segment in state.segments_ending(sub_account_id, query.start_ms, query.end_ms)
        if not state.is_processing(segment)
    ]
    body = json.dumps(rows, separators=(",", ":")).encode()
    return body_response(request, body, "application/json", rule)


def _json_rows(
    request: Request, sub_account_id: str, start_ms: int, end_ms: int, base_url: str
) -> Iterator[bytes]:
    """The window's rows as a JSON array in chunks of :data:`_ROWS_PER_CHUNK` rows, made as they are sent."""
    state = sim(request)
    config = state.config
    cutoff = state.processing_cutoff_ms()
    rows = (
        json.dumps(render_row(segment, config, base_url), separators=(",", ":"))
        for segment in state.iter_segments_ending(sub_account_id, start_ms, end_ms)
        if segment.end_ms <= cutoff
    )
    opening = "["
    while True:
        chunk = list(islice(rows, _ROWS_PER_CHUNK))
        if not chunk:
            break
        yield (opening + ",".join(chunk)).encode()
        opening = ","
    yield b"[]" if opening == "[" else b"]"


def _stream_rows(
    request: Request, sub_account_id: str, start_ms: int, end_ms: int, base_url: str, rule: FaultRule | None
) -> Response:
    """A window holding bulk segments (``bulk.py``): the body is streamed (chunked) from a worker thread,
    never built whole; a payload fault (malformed_json, json_object) needs the whole body and gets it."""
    chunks = _json_rows(request, sub_account_id, start_ms, end_ms, base_url)
    if rule is not None and rule.kind in PAYLOAD_KINDS:
        return body_response(request, b"".join(chunks), "application/json", rule)
    body: AsyncIterator[bytes] = iterate_in_threadpool(chunks)
    headers: dict[str, str] = {}
    if rule is not None and rule.kind in ENCODING_KINDS:
        body, headers = encode(body, rule.encoding), {"Content-Encoding": rule.encoding}
    return StreamingResponse(
        disturb(body, rule, transport(request)), 200, headers=headers, media_type="application/json"
    )


def _recording_ids(request: Request) -> tuple[str, str, str, str] | None:
    """``(rcAccountId, subAccountId, dialogId, segmentId)`` from the *raw* path (ids may hold ``%2F``)."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    parts = raw.split(b"?", 1)[0].split(b"/")
    expected = [b"", b"voice", b"api", b"cx", b"integration", b"v1", b"accounts"]
    if len(parts) != 15 or parts[:7] != expected:
        return None
    if (parts[8], parts[10], parts[11], parts[13]) != (
        b"sub-accounts",
        b"recordings",
        b"dialogs",
        b"segments",
    ):
        return None
    rc, sub, dialog, segment = (unquote(parts[i].decode("latin-1"), "utf-8") for i in (7, 9, 12, 14))
    return rc, sub, dialog, segment


@router.get(CX + "/recordings/{rest:ringcx_sim_any}")
async def recording(request: Request, rc_account_id: str, sub_account_id: str, rest: str) -> Response:
    """The segment's audio: WAV (or MP3 for browser-like User-Agents), streamed, no disk."""
    rule, early = draw_fault(request, "download")
    if early is not None:
        return early
    denied = authenticate(request)
    if denied is not None:
        return denied
    ids = _recording_ids(request)
    if ids is None:
        return errors_response(request, 404)
    rc, sub, dialog_id, segment_id = ids
    denied = _account_error(request, rc, sub)
    if denied is not None:
        return denied
    state = sim(request)
    config = state.config
    limited = charge(request, "download", sub, config.download_budget)
    if limited is not None:
        return limited
    segment = state.find_segment(sub, dialog_id, segment_id)
    if segment is None or not segment.has_recording or state.is_processing(segment):
        return errors_response(request, 404)
    if state.is_restricted(segment):
        return forbidden_response(request, config.forbidden_shape)
    user_agent = request.headers.get("user-agent", "")
    if config.mp3_for_browsers and any(marker in user_agent for marker in _BROWSER_MARKERS):
        return Response(
            fake_mp3(f"{config.seed}|{sub}|{dialog_id}|{segment_id}"), 200, media_type="audio/mpeg"
        )
    if rule is not None and rule.kind in ("json_object", "malformed_json", "non_wav"):
        body = {
            "json_object": b'{"status":"OK","data":[]}',
            "malformed_json": b'{"status":',
            "non_wav": HTML_ERROR_PAGE,
        }[rule.kind]
        media_type = "audio/wav" if rule.kind == "non_wav" else "application/json"
        return Response(body, 200, media_type=media_type)
    audio = state.recording(segment)
    headers = {"Accept-Ranges": "none"}
    chunks = placeholder_sizes(iterate(audio.iter_bytes(config.chunk_size)), config.wav_data_size)
    length: int | None = audio.size
    encoding = _encoding(request, rule)
    if encoding is not None:  # compressed whatever Accept-Encoding said (unless "negotiated")
        headers["Content-Encoding"] = encoding
        bomb = rule.bomb_bytes if rule is not None else 0
        chunks = encode(chunks, encoding, bomb_bytes=bomb)
        if config.download_length == "content-length":
            body = b"".join(await collect(chunks))
            chunks, length = iterate([body]), len(body)
    if config.download_length == "content-length":
        headers["Content-Length"] = str(length)
    if config.stream_rate or config.download_latency:
        chunks = pace(chunks, config.stream_rate, config.download_latency)
    chunks = disturb(chunks, rule, transport(request))
    if config.download_length == "close":
        return CloseDelimitedResponse(
            chunks, media_type="audio/wav", headers=headers, transport=transport(request)
        )
    return StreamingResponse(chunks, 200, headers=headers, media_type="audio/wav")


def _encoding(request: Request, rule: FaultRule | None) -> str | None:
    """The content coding a ``gzip`` rule applies: its ``encoding``, or for ``negotiated`` gzip only when
    the request's ``Accept-Encoding`` allows it (what a well-behaved compressing server does)."""
    if rule is None or rule.kind not in ENCODING_KINDS:
        return None
    if rule.encoding != "negotiated":
        return rule.encoding
    accepted = request.headers.get("accept-encoding", "").lower()
    return "gzip" if "gzip" in accepted else None


async def pace(chunks: AsyncIterator[bytes], rate: float, latency: float) -> AsyncIterator[bytes]:
    """The WAN model: wait ``latency`` seconds, then release each chunk when its last byte would arrive
    at ``rate`` bytes/s (0 = unlimited). Real seconds, not simulated ones (``time_scale`` does not apply).

    ``asyncio.sleep``, not ``time.sleep``: the rate is per response, so concurrent downloads each get it,
    as they would from the vendor over the internet (a blocking sleep would serialise every stream).
    """
    loop = asyncio.get_running_loop()
    if latency > 0:
        await asyncio.sleep(latency)
    began, sent = loop.time(), 0
    async for chunk in chunks:
        sent += len(chunk)
        if rate > 0:
            delay = began + sent / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        yield chunk
