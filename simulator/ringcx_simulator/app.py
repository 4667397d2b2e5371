"""The FastAPI application: vendor routes, the ``/_sim/`` control API and a stats middleware."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ringcx_simulator import control, summaries, transcripts, vendor_auth, vendor_data
from ringcx_simulator.config import SimConfig
from ringcx_simulator.state import SimState

_ROUTES = (
    ("/_sim/", "control"),
    ("/restapi/oauth/token", "oauth"),
    ("/restapi/v1.0/account/", "account"),
    ("/api/auth/login/rc/accesstoken", "exchange"),
    ("/api/auth/token/refresh", "refresh"),
    ("/voice/api/v1/admin/accounts", "admin_accounts"),
    ("/voice/api/integration/v1/admin/accounts/", "admin_subaccounts"),
)


def route_name(path: str) -> str:
    """The fault/stats route a request path belongs to."""
    for prefix, name in _ROUTES:
        if path.startswith(prefix):
            return name
    if path.startswith(summaries.PREFIX):
        return "summaries"
    if path.startswith("/voice/api/cx/integration/"):
        if path.endswith("/interaction-metadata"):
            return "metadata"
        if "/recordings/" in path:
            return "download"
        if "/transcripts/" in path:
            return "transcripts"
    return "other"


class StatsMiddleware:
    """Counts every response per route and status, and body bytes sent (pure ASGI, streaming-safe)."""

    def __init__(self, app: Any, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_name(scope.get("path", ""))
        status = 0
        sent = 0

        async def counting_send(message: Any) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if route != "control":
                self.state.stats.record(route, status, sent)


def create_app(config: SimConfig | None = None) -> FastAPI:
    """Build the simulator app; its state is at ``app.state.sim``.

    :param config: knobs (defaults: :class:`SimConfig`).
    """
    state = SimState(config or SimConfig())
    app = FastAPI(
        title="RingCX simulator",
        description="Local fake of the RingCentral RingCX recording APIs. Control API under /_sim/.",
        docs_url="/_sim/docs",
        redoc_url=None,
        openapi_url="/_sim/openapi.json",
    )
    app.state.sim = state
    app.include_router(vendor_auth.router)
    app.include_router(vendor_data.router)
    app.include_router(transcripts.router)
    app.include_router(summaries.router)
    app.include_router(control.router)
    app.add_middleware(StatsMiddleware, state=state)
    return app
