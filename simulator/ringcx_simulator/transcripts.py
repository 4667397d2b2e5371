"""Transcripts of recorded segments: deterministic, some missing, some late, some hostile.

Vendor routes (``../shared/ringcx-api.md`` section 3, "Related endpoints"; no OpenAPI schema exists for them):

- ``GET .../transcripts/dialogs/{dialogId}/segments/{segmentId}`` (bearer token, like the recording):
  ``{channelClass, errorCode, errorMessage, transcript: [{participantId, participantType, rcUserId,
  participantName, timestamp (epoch-ms string), message}]}``. The simulator adds ``dialogId`` and
  ``segmentId`` to the body [INF: not documented], so that a client can check that a body is the one it
  asked for; the ``wrong_ids`` variant sends another segment's.

Paced by the ``transcript_budget`` (120/min per sub-account), which the summaries route
(:mod:`ringcx_simulator.summaries`, cookie-authenticated) shares: one vendor rate-limit class.

Which segment gets what is a pure function of ``seed`` and the segment id (:func:`transcript_kind`), so
the ground truth can list it: ``none`` (no ``hasTranscript``: 404), ``missing`` (404 forever), ``late``
(404 until ``transcript_delay`` simulated seconds after the segment's end, then ``ok``), ``ok``, or one
hostile variant: ``malformed`` (truncated JSON), ``huge`` (valid JSON of ``transcript_huge_bytes``),
``wrong_ids`` (another segment's ids), ``array`` (a JSON array, not an object).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ringcx_simulator.errors import errors_response, forbidden_response
from ringcx_simulator.faults import FaultRule
from ringcx_simulator.guards import authenticate, body_response, charge, draw_fault, sim
from ringcx_simulator.traffic import Segment
from ringcx_simulator.transcript_data import served_kind, transcript_body
from ringcx_simulator.vendor_data import CX  # importing it registers the ringcx_sim_any convertor

router = APIRouter()


def _ids(request: Request) -> tuple[str, str] | None:
    """``(dialogId, segmentId)`` from the *raw* path (ids may hold ``%2F``), or ``None`` for another shape."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    parts = raw.split(b"?", 1)[0].split(b"/")
    if len(parts) != 15 or (parts[10], parts[11], parts[13]) != (b"transcripts", b"dialogs", b"segments"):
        return None
    return unquote(parts[12].decode("latin-1"), "utf-8"), unquote(parts[14].decode("latin-1"), "utf-8")


@router.get(CX + "/transcripts/{rest:ringcx_sim_any}")
async def transcript(request: Request, rc_account_id: str, sub_account_id: str, rest: str) -> Response:
    """The segment's transcript (module docstring); 404 ``Errors`` when there is none (yet)."""
    rule, early = admit(request, "transcripts")
    state, ids = sim(request), _ids(request)
    config = state.config
    if early is not None or ids is None:
        return early if early is not None else errors_response(request, 404)
    if rc_account_id != config.rc_account_id or sub_account_id not in config.sub_account_ids:
        return forbidden_response(request, config.forbidden_shape)
    return document_response(
        request, sub_account_id, state.find_segment(sub_account_id, *ids), rule,
        lambda segment: served_kind(segment, config, state.clock.now_ms()),
        lambda segment, kind: (transcript_body(segment, config, kind), "application/json"),
    )  # fmt: skip


def admit(request: Request, route: str, *, cookie: bool = False) -> tuple[FaultRule | None, Response | None]:
    """The start of the transcript and summary routes: the fault rule drawn for ``route``, and the response
    that ends the request early (a fault, a token that is missing or not live; with ``cookie``, a token that
    is not the ``access_token`` cookie or an ``Authorization`` header sent as well: 400), else ``None``."""
    rule, early = draw_fault(request, route)
    if early is None and cookie and request.headers.get("authorization"):
        early = errors_response(request, 400)  # the token goes in the access_token cookie, not as Bearer
    return rule, early if early is not None else authenticate(request, cookie=cookie)


def document_response(
    request: Request,
    sub_account_id: str,
    segment: Segment | None,
    rule: FaultRule | None,
    served: Callable[[Segment], str],
    body: Callable[[Segment, str], tuple[bytes, str]],
) -> Response:
    """The end of the transcript and summary routes: one charge to the sub-account's transcript budget
    (transcripts and summaries are one vendor rate-limit class), 403 ``access.denied.exception`` for a
    restricted segment (the shape documented for both), 404 ``Errors`` when there is nothing (yet), else the
    body of the kind served now."""
    limited = charge(request, "transcripts", sub_account_id, sim(request).config.transcript_budget)
    if limited is not None:
        return limited
    if segment is not None and sim(request).is_restricted(segment):
        return forbidden_response(request, "access_denied")
    kind = served(segment) if segment is not None else "none"
    if segment is None or kind in ("none", "missing"):
        return errors_response(request, 404)
    data, media_type = body(segment, kind)
    return body_response(request, data, media_type, rule)
