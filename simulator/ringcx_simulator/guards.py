"""Request plumbing shared by the vendor routes: state access, forms, faults, auth and budgets."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ringcx_simulator.auth import bearer_token
from ringcx_simulator.bodies import encode_bytes
from ringcx_simulator.errors import (
    HTML_ERROR_PAGE,
    errors_response,
    status_response,
    unauthorized_response,
)
from ringcx_simulator.faults import (
    ENCODING_KINDS,
    PAYLOAD_KINDS,
    TRANSPORT_EXTENSION,
    FaultRule,
    disturb,
    disturbs,
    iterate,
)
from ringcx_simulator.hostile_json import HOSTILE_JSON_KINDS, hostile_body
from ringcx_simulator.limits import retry_after_header
from ringcx_simulator.state import SimState


def sim(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


def transport(request: Request) -> Any:
    return request.scope.get("extensions", {}).get(TRANSPORT_EXTENSION)


async def form_fields(request: Request) -> dict[str, str]:
    """Form body fields (url-encoded), with query parameters as fallback (SPEC lists both)."""
    fields = dict(request.query_params)
    raw = await request.body()
    if raw:
        fields.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    return fields


def draw_fault(request: Request, route: str) -> tuple[FaultRule | None, Response | None]:
    """Draw a fault for this request; response-replacing kinds come back as a ready response."""
    state = sim(request)
    rule = state.faults.draw(route, request.url.path)
    if rule is None:
        return None, None
    state.stats.fault(rule.kind)
    config = state.config
    if rule.kind == "status":
        return rule, status_response(request, rule.status, config.forbidden_shape, config.expired_message)
    if rule.kind == "rate_limit":
        headers: dict[str, str] = {}
        if rule.retry_after == "date":
            headers = retry_after_header(
                rule.retry_after_seconds * state.clock.time_scale, state.clock, "date"
            )
        elif rule.retry_after:
            headers = {"Retry-After": str(rule.retry_after_seconds)}
        return rule, errors_response(request, 429, headers=headers)
    if rule.kind == "expire_token":
        token = bearer_token(request.headers.get("authorization")) or request.cookies.get("access_token")
        if token:
            state.tokens.expire(token)
        return rule, unauthorized_response(config.expired_message)
    if rule.kind == "revoke_tokens":
        state.tokens.revoke_all()
        return rule, unauthorized_response(config.expired_message)
    if rule.kind == "html200":
        return rule, Response(HTML_ERROR_PAGE, 200, media_type="text/html")
    if rule.kind == "redirect":
        assert rule.location is not None
        base, _, signed = rule.location.partition("?")  # a ?query on location: e.g. a pre-signed URL's
        target = base.rstrip("/") + request.url.path
        query = "&".join(part for part in (request.url.query, signed) if part)
        if query:
            target += "?" + query
        status = rule.status if 300 <= rule.status < 400 else 307
        return rule, Response(b"", status, headers={"Location": target})
    return rule, None


def authenticate(request: Request, *, cookie: bool = False) -> Response | None:
    """``None`` if the request carries a live RingCX access token or the permanent API token, else 401.

    :param cookie: the token is the ``access_token`` cookie (the summaries route), not a bearer header.
    """
    state = sim(request)
    config = state.config
    if cookie:
        token = request.cookies.get("access_token") or None
    else:
        token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return unauthorized_response("Full authentication is required to access this resource")
    if config.api_token and token == config.api_token:
        return None
    if state.tokens.check(token, "access") is None:
        return None
    return unauthorized_response(config.expired_message)


def charge(request: Request, budget: str, key: str, spec: str) -> Response | None:
    """Charge one request to a budget; ``None`` if admitted, else the 429 response."""
    state = sim(request)
    wait = state.budgets.acquire(budget, key, spec)
    if wait <= 0:
        return None
    headers = retry_after_header(wait, state.clock, state.config.retry_after)
    return errors_response(request, 429, headers=headers)


def body_response(
    request: Request,
    body: bytes,
    media_type: str,
    rule: FaultRule | None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A 200 carrying ``body``, with any payload or stream fault of ``rule`` applied."""
    if rule is not None and rule.kind in PAYLOAD_KINDS:
        if rule.kind == "malformed_json":
            body = body[: max(1, len(body) // 2)] if len(body) > 4 else b'[{"subAccountId": '
            media_type = "application/json"
        elif rule.kind == "json_object":
            body = b'{"status":"OK","data":' + body + b"}"
            media_type = "application/json"
        elif rule.kind in HOSTILE_JSON_KINDS:
            body = hostile_body(
                body,
                rule.kind,
                depth=rule.depth,
                constant=rule.constant,
                row_field=rule.row_field,
                row=rule.row,
            )
        else:
            body = HTML_ERROR_PAGE
    if rule is not None and rule.kind in ENCODING_KINDS:  # compressed whatever Accept-Encoding said
        headers = {**(headers or {}), "Content-Encoding": rule.encoding}
        body = encode_bytes(body, rule.encoding)
    if not disturbs(rule):
        return Response(body, 200, headers=headers, media_type=media_type)
    size = sim(request).config.chunk_size
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    all_headers = {**(headers or {}), "Content-Length": str(len(body))}
    return StreamingResponse(
        disturb(iterate(chunks), rule, transport(request)), 200, headers=all_headers, media_type=media_type
    )
