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

from urllib.parse import unquote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ringcx_simulator.errors import errors_response, forbidden_response
from ringcx_simulator.guards import authenticate, body_response, charge, draw_fault, sim
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
    rule, early = draw_fault(request, "transcripts")
    if early is not None:
        return early
    denied = authenticate(request)
    if denied is not None:
        return denied
    state, ids = sim(request), _ids(request)
    config = state.config
    if ids is None:
        return errors_response(request, 404)
    if rc_account_id != config.rc_account_id or sub_account_id not in config.sub_account_ids:
        return forbidden_response(request, config.forbidden_shape)
    limited = charge(request, "transcripts", sub_account_id, config.transcript_budget)
    if limited is not None:
        return limited
    segment = state.find_segment(sub_account_id, *ids)
    if segment is not None and state.is_restricted(segment):
        return forbidden_response(request, "access_denied")  # the documented transcript 403 shape
    kind = served_kind(segment, config, state.clock.now_ms())
    if segment is None or kind in ("none", "missing"):
        return errors_response(request, 404)
    return body_response(request, transcript_body(segment, config, kind), "application/json", rule)
