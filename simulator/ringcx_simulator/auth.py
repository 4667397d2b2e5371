"""Token store: RingCentral tokens, RingCX access/refresh tokens and the permanent API token.

Lifetimes are simulated seconds on the budget clock (so ``time_scale`` shortens them). RingCX access tokens
are JWT-looking (``header.payload.signature`` with a real-epoch ``exp``) or opaque, per ``token_format``;
refresh tokens and RingCentral tokens are opaque. Every issued value is remembered so tests can scan logs
for leaks (``GET /_sim/stats``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from ringcx_simulator.clock import SimClock
from ringcx_simulator.config import SimConfig

TokenKind = Literal["rc_access", "rc_refresh", "access", "refresh"]


@dataclass
class IssuedToken:
    value: str
    kind: TokenKind
    expires_at: float  # simulated seconds on the budget clock
    revoked: bool = False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenStore:
    """Issue, validate, rotate, expire and revoke tokens (thread-safe)."""

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, IssuedToken] = {}
        self._order: list[str] = []
        self._key = secrets.token_bytes(32)

    def issue(self, kind: TokenKind, lifetime: float, config: SimConfig) -> IssuedToken:
        """Create a token of ``kind`` valid for ``lifetime`` simulated seconds."""
        if kind == "access" and config.token_format == "jwt":
            value = self._jwt(lifetime, config)
        elif kind in ("rc_access", "rc_refresh"):
            value = "U0lNMDFQMDFQQVMwMXxBQUF" + _b64(secrets.token_bytes(48))
        else:
            value = (
                f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(8)}"
            )
        token = IssuedToken(value, kind, self._clock.elapsed() + lifetime)
        with self._lock:
            self._tokens[value] = token
            self._order.append(value)
        return token

    def _jwt(self, lifetime: float, config: SimConfig) -> str:
        now = time.time()
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {
            "iss": "ringcx-simulator",
            "sub": config.client_id,
            "accountId": config.main_account_id,
            "iat": int(now),
            "exp": int(self._clock.real_epoch_after(lifetime)),
            "jti": secrets.token_hex(8),
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"

    def check(self, value: str, kind: TokenKind) -> str | None:
        """``None`` for a live token of ``kind``, else ``"unknown"``, ``"revoked"`` or ``"expired"``."""
        with self._lock:
            token = self._tokens.get(value)
        if token is None or token.kind != kind:
            return "unknown"
        if token.revoked:
            return "revoked"
        if self._clock.elapsed() >= token.expires_at:
            return "expired"
        return None

    def expire(self, value: str) -> bool:
        """Expire one token now (early-expiry fault). Returns whether it existed."""
        with self._lock:
            token = self._tokens.get(value)
            if token is None:
                return False
            token.expires_at = min(token.expires_at, self._clock.elapsed())
            return True

    def revoke(self, value: str) -> None:
        with self._lock:
            token = self._tokens.get(value)
            if token is not None:
                token.revoked = True

    def revoke_all(self) -> int:
        with self._lock:
            live = [t for t in self._tokens.values() if not t.revoked]
            for token in live:
                token.revoked = True
            return len(live)

    def issued(self) -> list[dict[str, object]]:
        """Every token ever issued, oldest first: ``{"kind", "token", "live"}``."""
        now = self._clock.elapsed()
        with self._lock:
            tokens = [self._tokens[v] for v in self._order]
        return [
            {"kind": t.kind, "token": t.value, "live": not t.revoked and now < t.expires_at} for t in tokens
        ]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (case-insensitive scheme), else ``None``."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(user, password)`` of an HTTP Basic header, else ``None``."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
