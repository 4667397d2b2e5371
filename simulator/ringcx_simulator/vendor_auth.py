"""Vendor auth routes: RingCentral OAuth (JWT grant), account lookups, RingCX exchange and refresh."""

from __future__ import annotations

import json
import secrets

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ringcx_simulator.auth import basic_credentials, bearer_token
from ringcx_simulator.config import SimConfig
from ringcx_simulator.errors import forbidden_response
from ringcx_simulator.guards import (
    authenticate,
    body_response,
    charge,
    draw_fault,
    form_fields,
    sim,
)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
router = APIRouter()


def _oauth_error(status: int, error: str, description: str, code: str) -> JSONResponse:
    body = {
        "error": error,
        "errors": [{"errorCode": code, "message": description}],
        "error_description": description,
    }
    return JSONResponse(body, status)


def _rc_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"errorCode": code, "message": message, "errors": [{"errorCode": code, "message": message}]}, status
    )


@router.post("/restapi/oauth/token")
async def rc_token(request: Request) -> Response:
    """RingCentral token endpoint: JWT-bearer (and refresh_token) grants with HTTP Basic client auth."""
    rule, early = draw_fault(request, "oauth")
    if early is not None:
        return early
    state = sim(request)
    config = state.config
    fields = await form_fields(request)
    creds = basic_credentials(request.headers.get("authorization"))
    if creds is None or creds != (config.client_id, config.client_secret):
        return _oauth_error(401, "invalid_client", "Invalid client credentials", "OAU-123")
    grant = fields.get("grant_type")
    if grant == JWT_GRANT:
        if fields.get("assertion") != config.jwt:
            return _oauth_error(400, "invalid_grant", "Invalid token: JWT assertion is not valid", "OAU-251")
    elif grant == "refresh_token":
        old = fields.get("refresh_token", "")
        if state.tokens.check(old, "rc_refresh") is not None:
            return _oauth_error(400, "invalid_grant", "Token not found", "OAU-211")
        state.tokens.revoke(old)
    else:
        return _oauth_error(400, "unsupported_grant_type", "Unsupported grant type", "OAU-250")
    access = state.tokens.issue("rc_access", config.rc_token_lifetime, config)
    refresh = state.tokens.issue("rc_refresh", 604800.0, config)
    body = {
        "access_token": access.value,
        "token_type": "bearer",
        "expires_in": int(config.rc_token_lifetime),
        "refresh_token": refresh.value,
        "refresh_token_expires_in": 604800,
        "scope": "ReadAccounts",
        "owner_id": "63034604004",
        "endpoint_id": "sim-" + secrets.token_hex(6),
    }
    return body_response(request, json.dumps(body).encode(), "application/json", rule)


def _rc_bearer_error(request: Request) -> Response | None:
    state = sim(request)
    token = bearer_token(request.headers.get("authorization"))
    reason = state.tokens.check(token, "rc_access") if token else "missing"
    if reason is None:
        return None
    if reason == "expired":
        return _rc_error(401, "TokenExpired", "Access token expired")
    return _rc_error(401, "TokenInvalid", "Invalid token")


@router.get("/restapi/v1.0/account/{account}")
async def rc_account(request: Request, account: str) -> Response:
    """RingCentral ``GET /restapi/v1.0/account/~``: the account UID (``id``) with an RC token."""
    rule, early = draw_fault(request, "account")
    if early is not None:
        return early
    denied = _rc_bearer_error(request)
    if denied is not None:
        return denied
    config = sim(request).config
    if account not in ("~", config.rc_account_id):
        return _rc_error(404, "CMN-102", "Resource for parameter [accountId] is not found")
    body = {
        "uri": f"{request.base_url}restapi/v1.0/account/{config.rc_account_id}",
        "id": config.rc_account_id,
        "serviceInfo": {"brand": {"id": "1210", "name": "RingCentral"}},
        "mainNumber": "+16505550100",
        "status": "Confirmed",
        "setupWizardState": "Completed",
    }
    return body_response(request, json.dumps(body).encode(), "application/json", rule)


def _user_details(config: SimConfig, access: str, refresh: str | None) -> dict[str, object]:
    agents = [
        {
            "agentId": 449400 + n,
            "firstName": "Sim",
            "lastName": f"Admin{n}",
            "email": f"sim.admin{n}@example.com",
            "username": f"sim.admin{n}@example.com",
            "agentType": "AGENT",
            "rcUserId": 63034604004 + n,
            "accountId": sub,
            "accountName": f"Simulated sub-account {sub}",
            "agentGroupId": 76873,
            "allowLoginControl": True,
            "allowLoginUpdates": True,
        }
        for n, sub in enumerate(config.sub_account_ids)
    ]
    details: dict[str, object] = {
        "accessToken": access,
        "tokenType": "Bearer",
        "mainAccountId": config.main_account_id,
        "agentDetails": agents,
        "adminId": 12345,
        "adminUrl": "/voice/admin/",
        "agentUrl": "/voice/agent/",
        "analyticsUrl": "/voice/analytics/",
        "iqUrl": "/voice/iq/",
        "platformId": "c01",
        "redirectUrl": "",
        "loginHashcode": secrets.token_hex(16),
        "port": 443,
        "ssoLogin": True,
        "adminPasswordReset": False,
        "rcUser": {"firstName": "Sim", "lastName": "Admin", "email": "sim.admin0@example.com"},
    }
    if refresh is not None:
        details["refreshToken"] = refresh
    return details


@router.post("/api/auth/login/rc/accesstoken")
async def exchange(request: Request) -> Response:
    """RingCX exchange: a live RC access token (form body or query) for a RingCX access token."""
    rule, early = draw_fault(request, "exchange")
    if early is not None:
        return early
    state = sim(request)
    config = state.config
    limited = charge(request, "token", "exchange", config.token_budget)
    if limited is not None:
        return limited
    fields = await form_fields(request)
    rc_token = fields.get("rcAccessToken", "")
    token_type = fields.get("rcTokenType", "Bearer")
    if token_type.lower() != "bearer":
        return Response("Unsupported rcTokenType", 400, media_type="text/plain")
    reason = state.tokens.check(rc_token, "rc_access") if rc_token else "missing"
    if reason is not None:
        message = (
            "RingCentral token is expired" if reason == "expired" else "Invalid RingCentral access token"
        )
        return Response(message, 401, media_type="text/plain")
    include_refresh = fields.get("includeRefresh", "").lower() == "true"
    access = state.tokens.issue("access", config.token_lifetime, config)
    refresh = (
        state.tokens.issue("refresh", config.refresh_token_lifetime, config) if include_refresh else None
    )
    body = _user_details(config, access.value, refresh.value if refresh else None)
    return body_response(request, json.dumps(body).encode(), "application/json", rule)


@router.post("/api/auth/token/refresh")
async def refresh(request: Request) -> Response:
    """RingCX refresh: a live refresh token for a new access token and a *new* refresh token."""
    rule, early = draw_fault(request, "refresh")
    if early is not None:
        return early
    state = sim(request)
    config = state.config
    if config.refresh_uses_token_budget:
        limited = charge(request, "token", "exchange", config.token_budget)
        if limited is not None:
            return limited
    fields = await form_fields(request)
    old = fields.get("refresh_token", "")
    if not old or state.tokens.check(old, "refresh") is not None:
        return Response(config.expired_message, 401, media_type="text/plain")
    state.tokens.revoke(old)
    access = state.tokens.issue("access", config.token_lifetime, config)
    new_refresh = state.tokens.issue("refresh", config.refresh_token_lifetime, config)
    body = _user_details(config, access.value, new_refresh.value)
    return body_response(request, json.dumps(body).encode(), "application/json", rule)


@router.get("/voice/api/v1/admin/accounts")
async def admin_accounts(request: Request) -> Response:
    """RingCX sub-accounts visible to the token."""
    rule, early = draw_fault(request, "admin_accounts")
    if early is not None:
        return early
    denied = authenticate(request)
    if denied is not None:
        return denied
    config = sim(request).config
    body = [
        {
            "accountId": sub,
            "accountName": f"Simulated sub-account {sub}",
            "mainAccountId": config.main_account_id,
        }
        for sub in config.sub_account_ids
    ]
    return body_response(request, json.dumps(body).encode(), "application/json", rule)


@router.get("/voice/api/integration/v1/admin/accounts/{main_account_id}/subaccounts")
async def admin_subaccounts(request: Request, main_account_id: str) -> Response:
    """The main account's sub-accounts with their ``isActive`` flag (SPEC; the WFO_ACCESS role).

    The served sub-accounts are active, ``--inactive-sub-account-ids`` are listed inactive; another main
    account id answers 403, as a token without access to it would.
    """
    rule, early = draw_fault(request, "admin_subaccounts")
    if early is not None:
        return early
    denied = authenticate(request)
    if denied is not None:
        return denied
    config = sim(request).config
    if main_account_id != config.main_account_id:
        return forbidden_response(request, config.forbidden_shape)
    listed = [(sub, True) for sub in config.sub_account_ids]
    listed += [(sub, False) for sub in config.inactive_sub_account_ids]
    body = [
        {"subAccountId": sub, "subAccountName": f"Simulated sub-account {sub}", "isActive": active}
        for sub, active in listed
    ]
    return body_response(request, json.dumps(body).encode(), "application/json", rule)
