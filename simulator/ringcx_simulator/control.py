"""The control API under ``/_sim/`` (never on a vendor path): health, ground truth, faults, injected
segments, runtime knobs, stats and token revocation. Used by tests, benchmarks and the demo."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from starlette.requests import Request
from starlette.responses import Response

from ringcx_simulator.config import parse_instant
from ringcx_simulator.guards import sim

router = APIRouter(prefix="/_sim")


def _bad(exc: Exception) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc))


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    state = sim(request)
    return {"status": "ok", "now": state.clock.now().isoformat(), "time_scale": state.clock.time_scale}


@router.get("/ground-truth")
def ground_truth(
    request: Request,
    start: str = Query(..., description="ISO-8601 instant (inclusive)"),
    end: str = Query(..., description="ISO-8601 instant (exclusive)"),
    sub_account_id: str | None = Query(None, description="one sub-account (default: all)"),
    sha256: bool = Query(True, description="compute each recording's SHA-256"),
) -> Response:
    """Every segment whose end is in ``[start, end)``, including ones still hidden (``processing``).

    Serialised with ``json`` directly: a bulk window (``bulk.py``) holds 100,000 entries or more, which
    FastAPI's generic encoder would take many seconds over."""
    state = sim(request)
    try:
        start_ms = int(parse_instant(start).timestamp() * 1000)
        end_ms = int(parse_instant(end).timestamp() * 1000)
    except ValueError as exc:
        raise _bad(exc)
    subs = [sub_account_id] if sub_account_id else list(state.config.sub_account_ids)
    segments = [
        state.ground_truth(segment, sha256)
        for sub in subs
        for segment in state.iter_segments_ending(sub, start_ms, end_ms)
    ]
    return Response(json.dumps({"segments": segments}), media_type="application/json")


@router.get("/faults")
def list_faults(request: Request) -> list[dict[str, Any]]:
    return sim(request).faults.rules()


@router.post("/faults")
def set_faults(
    request: Request, rules: Annotated[list[dict[str, Any]], Body()], append: bool = Query(False)
) -> list[dict[str, Any]]:
    """Replace (or with ``?append=true`` extend) the fault rules; see ``faults.py`` for the rule shape."""
    try:
        sim(request).faults.set_rules(rules, append=append)
    except (ValueError, TypeError) as exc:
        raise _bad(exc)
    return sim(request).faults.rules()


@router.delete("/faults")
def clear_faults(request: Request) -> dict[str, Any]:
    sim(request).faults.clear()
    return {"cleared": True}


@router.post("/segments")
def add_segments(request: Request, specs: Annotated[list[dict[str, Any]], Body()]) -> dict[str, Any]:
    """Inject segments, served like generated ones (spec: ``state.segment_from_spec``)."""
    state = sim(request)
    try:
        segments = state.add_segments(specs)
    except (ValueError, TypeError) as exc:
        raise _bad(exc)
    return {"segments": [state.ground_truth(segment) for segment in segments]}


@router.delete("/segments")
def clear_segments(request: Request) -> dict[str, Any]:
    sim(request).clear_segments()
    return {"cleared": True}


@router.get("/config")
def get_config(request: Request) -> dict[str, Any]:
    return sim(request).config.public_dict()


@router.patch("/config")
def patch_config(request: Request, changes: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Change runtime knobs (time_scale, budgets, now, variants...); returns the new knobs."""
    try:
        return sim(request).update_config(changes).public_dict()
    except (ValueError, TypeError) as exc:
        raise _bad(exc)


@router.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    state = sim(request)
    issued = state.tokens.issued()
    return {**state.stats.snapshot(), "tokens_issued": issued, "tokens": {"issued": len(issued)}}


@router.delete("/stats")
def reset_stats(request: Request) -> dict[str, Any]:
    sim(request).stats.reset()
    return {"reset": True}


@router.post("/revoke")
def revoke(request: Request) -> dict[str, Any]:
    """Revoke every issued token (RC and RingCX, access and refresh); the permanent API token stays."""
    return {"revoked": sim(request).tokens.revoke_all()}


@router.post("/reset-budgets")
def reset_budgets(request: Request) -> dict[str, Any]:
    sim(request).budgets.reset()
    return {"reset": True}
