"""RingCX token lifecycle.

auth_mode ``jwt`` (default):

1. RingCentral JWT grant: ``POST {platform_url}/restapi/oauth/token`` with HTTP Basic client credentials and
   ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``; the RC access token lives ~1 h.
2. RingCX exchange: ``POST {api_url}/api/auth/login/rc/accesstoken?includeRefresh=true`` with the form
   ``rcAccessToken``/``rcTokenType=Bearer``; the RingCX token lives ~5 min. Its expiry is read from the
   (unverified) JWT ``exp`` claim when the token is a JWT, else assumed 300 s after issue.
3. Ahead of expiry (``refresh_margin_seconds``) the token is refreshed with
   ``POST {api_url}/api/auth/token/refresh`` (form ``refresh_token``/``rcTokenType=Bearer``), storing the
   rotated refresh token; if the refresh fails the token is exchanged again (with a new RC token when
   that one has expired or is rejected).

Exchanges and refreshes are paced by the shared token budget (5/60 s by default). auth_mode ``token`` sends a
permanent RingCX API token as the bearer token, with no exchange. Every secret is registered with Airflow's
secret masker when it is read or issued, and no token ever appears in a repr, log line or error.

The task processes of a host share one RingCX access token (issue 14 item 4): a token that is not fresh in
this process is looked up in the host's token cache (:mod:`~airflow_provider_ringcx.hooks.tokencache`,
beside the budget files) under the cache's lock, and only when that one is not fresh either is it renewed
(refreshed with this process's refresh token if it has one, else exchanged) and stored for the others. A
token answered 401 is evicted before the new exchange. So tasks that start together make one exchange, and a
backfill makes about one per token lifetime instead of one per task. Extra ``exchange_cache`` false turns
this off.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from airflow_provider_ringcx import jsonutil
from airflow_provider_ringcx.exceptions import (
    RingCXAuthError,
    RingCXBadPayloadError,
    RingCXBadRequestError,
    RingCXError,
    RingCXForbiddenError,
    RingCXNotFoundError,
)
from airflow_provider_ringcx.hooks.budget import RateBudget
from airflow_provider_ringcx.hooks.client import HttpClient
from airflow_provider_ringcx.hooks.masking import response_secret as _secret
from airflow_provider_ringcx.hooks.settings import RingCXSettings
from airflow_provider_ringcx.hooks.tokencache import TokenCache

log = logging.getLogger(__name__)

RC_TOKEN_PATH = "/restapi/oauth/token"
EXCHANGE_PATH = "/api/auth/login/rc/accesstoken"
REFRESH_PATH = "/api/auth/token/refresh"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_RINGCX_TTL = 300.0
DEFAULT_RC_TTL = 3600.0


@dataclass
class _Token:
    value: str = field(repr=False)
    expires_at: float
    refresh: str | None = field(default=None, repr=False)

    def fresh(self, now: float, margin: float) -> bool:
        return now < self.expires_at - margin


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of an unverified JWT, or ``None`` if the token is not a JWT with one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = jsonutil.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = payload.get("exp") if isinstance(payload, dict) else None
        return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None
    except (ValueError, TypeError):
        return None


class TokenManager:
    """Issues, caches and renews the bearer token of one hook (thread-safe).

    :param settings: the connection settings.
    :param http: the transport (its own retries apply to the auth endpoints).
    :param budget: the shared token-exchange budget; the host's token cache lives beside its state
        (``<budget dir>/token-cache``, see :mod:`~airflow_provider_ringcx.hooks.tokencache`).
    :param clock: wall-clock seconds, injectable for tests.

    ``cache`` (attribute): the host's shared entry of this connection, ``None`` when it is off. The counters
    ``exchanges``, ``refreshes`` and ``reused`` (tokens taken from the cache) are this manager's own.
    """

    def __init__(
        self,
        settings: RingCXSettings,
        http: HttpClient,
        budget: RateBudget,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.http = http
        self.budget = budget
        self._clock = clock
        self._lock = threading.RLock()
        self._rc: _Token | None = None
        self._cx: _Token | None = None
        self.cache = TokenCache.for_settings(settings, budget.state_dir)
        self.exchanges = 0
        self.refreshes = 0
        self.reused = 0

    def __repr__(self) -> str:
        state = "cached" if self._cx else "empty"
        return f"TokenManager(auth_mode={self.settings.auth_mode!r}, token={state})"

    def token(self) -> str:
        """A RingCX bearer token valid for at least the refresh margin."""
        if self.settings.auth_mode == "token":
            assert self.settings.api_token
            return self.settings.api_token
        with self._lock:
            now = self._clock()
            margin = self.settings.refresh_margin_seconds
            if self._cx is not None and self._cx.fresh(now, margin):
                return self._cx.value
            if self.cache is None:
                self._cx = self._renew()
                return self._cx.value
            with self.cache.locked():  # one process renews; the others wait here, then reuse its token
                token = self._adopt(self.cache)
                if token is None:
                    token = self._renew()
                    self.cache.store(token.value, token.expires_at)
                self._cx = token
                return token.value

    def reauthenticate(self, rejected: str) -> None:
        """Drop ``rejected`` (answered 401) and exchange a new token (not a refresh: the session may be dead).

        :raises RingCXAuthError: auth_mode ``token`` (a permanent token cannot be renewed).
        """
        if self.settings.auth_mode == "token":
            raise RingCXAuthError(
                f"connection {self.settings.conn_id!r}: RingCX rejected the permanent API token (HTTP 401); "
                "create a new token and update extra api_token",
                status_code=401,
            )
        with self._lock:
            if self._cx is not None and self._cx.value != rejected:
                return  # another thread already replaced it
            self._cx = None
            if self.cache is None:
                self._cx = self._exchange()
                return
            with self.cache.locked():
                token = self._adopt(self.cache, rejected=rejected)  # another process replaced it already?
                if token is None:
                    self.cache.evict(rejected)  # no other task may present it
                    token = self._exchange()
                    self.cache.store(token.value, token.expires_at)
                self._cx = token

    def _renew(self) -> _Token:
        """Refresh with this process's refresh token if it has one, else (or if that fails) exchange."""
        if self._cx is not None and self._cx.refresh:
            try:
                return self._refresh(self._cx.refresh)
            except RingCXError as err:
                log.info("RingCX token refresh failed (%s); exchanging a new token", err)
        return self._exchange()

    def _adopt(self, cache: TokenCache, *, rejected: str | None = None) -> _Token | None:
        """The cached token if fresh (and not ``rejected``), else ``None``; call with the cache locked."""
        cached = cache.load()
        now = self._clock()
        if (
            cached is None
            or cached.value == rejected
            or now >= cached.expires_at - self.settings.refresh_margin_seconds
        ):
            return None
        value = _secret(cached.value)  # a token this task never saw: masked before anything can log it
        assert value is not None
        refresh = self._cx.refresh if self._cx is not None else None  # this process's session, if any
        self.reused += 1
        log.info(
            "reusing the RingCX token another task of this host obtained (expires in %.0f s)",
            cached.expires_at - now,
        )
        return _Token(value, cached.expires_at, refresh)

    # -- the three calls ----------------------------------------------------------------------------------

    def _rc_token(self, *, force: bool = False) -> str:
        now = self._clock()
        if not force and self._rc is not None and self._rc.fresh(now, self.settings.refresh_margin_seconds):
            return self._rc.value
        settings = self.settings
        assert settings.client_id
        assert settings.client_secret
        assert settings.jwt
        response = self._send(
            "POST",
            settings.platform_url + RC_TOKEN_PATH,
            what=f"RingCentral JWT grant (POST {RC_TOKEN_PATH})",
            auth=(settings.client_id, settings.client_secret),
            data={"grant_type": JWT_GRANT, "assertion": settings.jwt},
            headers={"Accept": "application/json"},
        )
        body = self._json(response, "RingCentral JWT grant")
        value = _secret(body.get("access_token"))
        if value is None:
            raise RingCXAuthError(
                f"RingCentral JWT grant (POST {RC_TOKEN_PATH}) returned no access_token; check platform_url"
            )
        # The RingCentral refresh token is never used (a new JWT grant is cheaper) nor kept, so it is not
        # registered with the masker either: one value fewer sent to the supervisor (issue #12 item 10).
        ttl = body.get("expires_in")
        ttl = float(ttl) if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) else DEFAULT_RC_TTL
        self._rc = _Token(value, now + ttl)
        log.info("obtained a RingCentral access token (valid %.0f s)", ttl)
        return value

    def _exchange(self) -> _Token:
        cached = self._rc is not None and self._rc.fresh(self._clock(), self.settings.refresh_margin_seconds)
        try:
            return self._exchange_with(self._rc_token())
        except RingCXAuthError:
            if not cached:
                raise
            log.info("RingCX refused the RingCentral token; requesting a new one and exchanging again")
            return self._exchange_with(self._rc_token(force=True))

    def _exchange_with(self, rc_token: str) -> _Token:
        issued = self._clock()
        response = self._send(
            "POST",
            self.settings.api_url + EXCHANGE_PATH,
            what=f"RingCX token exchange (POST {EXCHANGE_PATH})",
            budget=self.budget,
            params={"includeRefresh": "true"},
            data={"rcAccessToken": rc_token, "rcTokenType": "Bearer"},
            headers={"Accept": "application/json"},
        )
        self.exchanges += 1
        token = self._ringcx_token(response, "RingCX token exchange", issued)
        log.info(
            "exchanged the RingCentral token for a RingCX token (expires in %.0f s)",
            token.expires_at - issued,
        )
        return token

    def _refresh(self, refresh_token: str) -> _Token:
        issued = self._clock()
        response = self._send(
            "POST",
            self.settings.api_url + REFRESH_PATH,
            what=f"RingCX token refresh (POST {REFRESH_PATH})",
            budget=self.budget,
            data={"refresh_token": refresh_token, "rcTokenType": "Bearer"},
            headers={"Accept": "application/json"},
        )
        self.refreshes += 1
        token = self._ringcx_token(response, "RingCX token refresh", issued)
        if token.refresh is None:
            token.refresh = refresh_token  # not rotated: keep using the one we have
        log.info("refreshed the RingCX token (expires in %.0f s)", token.expires_at - issued)
        return token

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send an auth request; a 400/403/404 from an auth endpoint is an authentication failure."""
        try:
            return self.http.send(method, url, **kwargs)
        except (RingCXBadRequestError, RingCXForbiddenError, RingCXNotFoundError) as err:
            raise RingCXAuthError(str(err), status_code=err.status_code) from None

    def _ringcx_token(self, response: requests.Response, what: str, issued: float) -> _Token:
        body = self._json(response, what)
        value = _secret(body.get("accessToken"))
        if value is None:
            raise RingCXAuthError(f"{what} returned no accessToken; check api_url and the RingCX user")
        refresh = _secret(body.get("refreshToken"))
        expires_at = jwt_expiry(value) or issued + DEFAULT_RINGCX_TTL
        return _Token(value, expires_at, refresh)

    @staticmethod
    def _json(response: requests.Response, what: str) -> dict[str, Any]:
        try:
            body = jsonutil.loads(response.content)  # depth-checked, NaN never a float
        except ValueError:
            body = None
        finally:
            response.close()
        if not isinstance(body, dict):
            raise RingCXBadPayloadError(
                f"{what} did not return a JSON object (Content-Type "
                f"{response.headers.get('Content-Type', 'missing')!r}); check that platform_url and api_url "
                "point at RingCentral and RingCX, not at a proxy or login page"
            )
        return body
