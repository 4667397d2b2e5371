"""AI summaries of recorded segments: deterministic, some missing, some late, some hostile.

Vendor route (``../shared/ringcx-api.md`` section 3, "Related endpoints"; no schema is documented):
``GET /voice/api/v1/summary/accounts/{subAccountId}/segments/{segmentId}/{agent|auto}``, authenticated by
the ``Cookie: access_token=<token>`` header **instead of** Bearer. The simulator is strict about that: no
cookie is a 401, and a request that also carries ``Authorization`` is refused with 400, so a client that
sends its token the wrong way (or both ways) fails loudly here. The body's shape is not documented; the
simulator sends a small object naming the segment, the kind and a text [INF].

Paced by the ``transcript_budget`` bucket: "transcripts, summaries, most admin APIs" are one 120/min
class (section 4.1). A 403 uses the ``access.denied.exception`` shape for a restricted segment.

Which segment gets what is a pure function of ``seed``, the segment id and the summary kind
(:func:`~ringcx_simulator.summary_data.summary_kind`), so the ground truth can list it: ``none`` (no
``hasTranscript``: 404; a summary is made from the transcript), ``missing`` (404 forever), ``late`` (404
until ``summary_delay`` simulated seconds after the segment's end, then ``ok``), ``ok``, or one hostile
variant: ``malformed`` (truncated JSON), ``html`` (an HTML page with status 200), ``array`` (a JSON array).
"""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ringcx_simulator.errors import errors_response, forbidden_response
from ringcx_simulator.guards import sim
from ringcx_simulator.summary_data import served_summary, summary_body
from ringcx_simulator.transcripts import admit, document_response
from ringcx_simulator.vendor_data import CX  # noqa: F401 - importing it registers ringcx_sim_any

router = APIRouter()
PREFIX = "/voice/api/v1/summary/accounts/"


def _ids(request: Request) -> tuple[str, str, str] | None:
    """``(subAccountId, segmentId, kind)`` from the *raw* path (ids may hold ``%2F``), or ``None``."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    parts = raw.split(b"?", 1)[0].split(b"/")
    if len(parts) != 10 or parts[7] != b"segments":
        return None
    sub, segment, kind = (unquote(part.decode("latin-1"), "utf-8") for part in (parts[6], parts[8], parts[9]))
    return sub, segment, kind


@router.get(PREFIX + "{rest:ringcx_sim_any}")
async def summary(request: Request, rest: str) -> Response:
    """The segment's summary of one kind (module docstring); 404 ``Errors`` when there is none (yet)."""
    rule, early = admit(request, "summaries", cookie=True)
    state, ids = sim(request), _ids(request)
    if early is not None or ids is None:
        return early if early is not None else errors_response(request, 404)
    config = state.config
    sub_account_id, segment_id, kind = ids
    if sub_account_id not in config.sub_account_ids:
        return forbidden_response(request, "access_denied")
    return document_response(
        request, sub_account_id, state.find_segment_by_id(sub_account_id, segment_id), rule,
        lambda segment: served_summary(segment, config, kind, state.clock.now_ms()),
        lambda segment, served: summary_body(segment, kind, served),
    )  # fmt: skip  # the transcript budget (one 120/min class), 403, 404, the body
