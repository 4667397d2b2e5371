"""HTTP transport of the hook: one ``requests.Session``, timeouts, retries and typed errors.

Retry policy (tenacity, built by :class:`~airflow_provider_ringcx.hooks.retrypolicy.RetryPolicy`): 429
(waiting ``Retry-After`` in seconds or as an HTTP date, else exponential backoff with jitter of at least
``rate_limit_backoff_seconds``), 500/502/503/504, connection errors and read timeouts are retried;
400/401/403/404 never are. Retries stop at ``retry_attempts`` attempts or when the total wait would exceed
``retry_max_wait_seconds``; the last real error is raised, never ``RetryError``. A 429 wait is written into
the shared :class:`~airflow_provider_ringcx.hooks.budget.RateBudget` so that other processes back off too.
A 401 on an authenticated call triggers exactly one forced re-authentication and one retry
(:meth:`HttpClient.send_authenticated`).

Budget first, token second (issue #12 item 12): the bearer token is taken from the token source inside each
attempt, *after* the budget admitted it, so a call that waited minutes for the budget never presents a
token that expired during the wait (which cost a 401 and a re-exchange before).

Where the token goes (``token_in``): ``Authorization: Bearer`` for every endpoint but the AI summaries, which
take it as the cookie ``access_token`` (``../shared/ringcx-api.md`` section 3). The cookie is passed per
request (``cookies=``), never stored in the session's jar, so it goes to the configured ``api_url`` host only:
a redirect to another host is sent without cookies (:mod:`~airflow_provider_ringcx.hooks.redirects`).

Redirects (item 7): every request is sent with ``allow_redirects=False`` and a 3xx goes through the policy
of :mod:`~airflow_provider_ringcx.hooks.redirects`, never through requests' own redirect handling.

Error messages quote the status, the method and path, and a sanitised vendor message; never a response
body verbatim, a header, or anything that looks like a token.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from airflow_provider_ringcx import __version__, jsonutil
from airflow_provider_ringcx.exceptions import (
    RingCXAuthError,
    RingCXBadRequestError,
    RingCXError,
    RingCXForbiddenError,
    RingCXNotFoundError,
    RingCXRateLimitedError,
    RingCXServerError,
    RingCXTransientError,
)
from airflow_provider_ringcx.hooks.budget import RateBudget
from airflow_provider_ringcx.hooks.redirects import follow_redirects
from airflow_provider_ringcx.hooks.retrypolicy import TOKEN_SOURCE_ERROR, RetryPolicy
from airflow_provider_ringcx.hooks.settings import RingCXSettings

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-ringcx/{__version__} (+python-requests)"
_TOKENISH = re.compile(r"[A-Za-z0-9_\-.~+/=:]{24,}")
_BODY_PEEK = 64 * 1024
#: ``token_in`` values: the ``Authorization: Bearer`` header (default), or the ``access_token`` cookie.
BEARER, COOKIE = "bearer", "cookie"


class TokenSource(Protocol):
    """What :meth:`HttpClient.send_authenticated` needs from the token manager."""

    def token(self) -> str:
        """A currently valid bearer token."""
        ...

    def reauthenticate(self, rejected: str) -> None:
        """Forget ``rejected`` (a token the API answered 401 to) and obtain a new one."""
        ...


def sanitize(text: str, limit: int = 200) -> str:
    """Shorten a vendor message and blank out anything that looks like a token or secret."""
    text = _TOKENISH.sub("[redacted]", " ".join(str(text).split()))
    return text if len(text) <= limit else text[:limit] + "..."


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; ``None`` if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = datetime.now(timezone.utc).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


def _read_error_body(response: requests.Response) -> bytes:
    try:
        return next(response.iter_content(_BODY_PEEK), b"")
    except (requests.RequestException, OSError):
        return b""
    finally:
        response.close()


def vendor_message(response: requests.Response) -> tuple[str, list[dict[str, Any]]]:
    """The sanitised vendor message of an error response and its ``validationErrors``.

    Understands the ``Errors`` body (``generalMessage``/``developerMessage``/``validationErrors``), the
    ``access.denied.exception`` variant, RingCentral OAuth errors and plain-text 401s; else the reason.
    """
    body = _read_error_body(response)
    content_type = response.headers.get("Content-Type", "").lower()
    reason = response.reason or "no reason given"
    try:
        data = jsonutil.loads(body) if body.strip()[:1] in (b"{", b"[") else None  # depth-checked
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        parts = [
            str(data[key])
            for key in (
                "errorCode",
                "generalMessage",
                "developerMessage",
                "error",
                "error_description",
                "message",
            )
            if data.get(key)
        ]
        validation = []
        for item in data.get("validationErrors") or []:
            if isinstance(item, Mapping):
                validation.append(
                    {
                        "attributeName": sanitize(str(item.get("attributeName", ""))),
                        "message": sanitize(str(item.get("message", ""))),
                    }
                )
        if validation:
            parts.append("; ".join(f"{v['attributeName']}: {v['message']}" for v in validation))
        if parts:
            return sanitize(" - ".join(dict.fromkeys(parts)), 400), validation
    if "html" in content_type or body.lstrip()[:1] == b"<":
        return f"{reason} (an HTML page)", []
    text = body.decode("utf-8", "replace").strip()
    if text and len(text) <= 200 and "text/plain" in content_type:
        return sanitize(text), []
    return reason, []


def error_for(response: requests.Response, what: str) -> RingCXError:
    """Map a non-2xx response to the typed error callers handle (consumes and closes the response)."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    message, validation = vendor_message(response)
    head = f"{what} failed with HTTP {status}: {message}"
    if status == 400:
        return RingCXBadRequestError(
            f"{head}; the request was rejected as invalid - check the connection settings and the window",
            validation_errors=validation,
        )
    if status == 401:
        return RingCXAuthError(
            f"{head}; check the client id/secret, JWT or API token of the connection", status_code=401
        )
    if status == 403:
        return RingCXForbiddenError(
            f"{head}; the RingCX user needs READ on Account, the account needs WEM access and recording "
            "access must be activated by RingCentral",
            status_code=403,
        )
    if status == 404:
        return RingCXNotFoundError(f"{head}; unknown id, or not processed yet", status_code=404)
    if status == 429:
        return RingCXRateLimitedError(
            f"{head}; RingCX throttled the request - lower the connection's budget or wait",
            retry_after=retry_after,
        )
    if status >= 500:
        return RingCXServerError(f"{head}; RingCX had a server error - retry later", status_code=status)
    return RingCXError(f"{head}; unexpected status", status_code=status)


class HttpClient:
    """Sends requests with pacing, retries and typed errors.

    :param settings: timeouts and retry knobs.
    :param sleep: how retries wait (injectable for tests).
    """

    def __init__(self, settings: RingCXSettings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.timeout = (settings.connect_timeout, settings.read_timeout)

    def __repr__(self) -> str:
        return f"HttpClient(api_url={self.settings.api_url!r})"

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        what: str | None = None,
        budget: RateBudget | None = None,
        check: Callable[[requests.Response], None] | None = None,
        tokens: TokenSource | None = None,
        token_in: str = BEARER,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one logical request, retried per the policy; return the 2xx response.

        :param tokens: when given, each attempt takes a bearer token from it after the budget admitted the
            attempt (module doc); prefer :meth:`send_authenticated`, which adds the one re-authentication.
        :param token_in: :data:`BEARER` (the ``Authorization`` header) or :data:`COOKIE` (``access_token``).

        :param what: how errors name the request (default ``METHOD /path``).
        :param budget: acquired before every attempt; a 429 wait is written into it, and a 2xx answer is
            reported to it (:meth:`~airflow_provider_ringcx.hooks.budget.RateBudget.succeeded`).
        :param check: called on a 2xx response inside the attempt (e.g. to peek at the body); a transient
            error it raises is retried like a failed request.
        :param kwargs: passed to ``requests.Session.request`` (``headers``, ``json``, ``stream``...).
        :raises RingCXError: the typed error of the last attempt.
        """
        what = what or f"{method} {urlsplit(url).path}"
        retrying = RetryPolicy(self.settings, what, budget, sleep=self._sleep).retrying()
        for attempt in retrying:
            with attempt:
                if budget is not None:
                    budget.acquire()
                response = self._attempt(method, url, what, self._authorized(kwargs, tokens, token_in))
                if check is not None:
                    try:
                        check(response)
                    except BaseException:
                        response.close()
                        raise
                if budget is not None:
                    budget.succeeded()
                return response
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    @staticmethod
    def _authorized(kwargs: dict[str, Any], tokens: TokenSource | None, token_in: str) -> dict[str, Any]:
        """``kwargs`` with the token from ``tokens`` (taken now: after the budget wait) where ``token_in``
        says: the ``Authorization: Bearer`` header, or the ``access_token`` cookie of this request only."""
        if tokens is None:
            return kwargs
        if token_in not in (BEARER, COOKIE):
            raise ValueError(f"token_in must be {BEARER!r} or {COOKIE!r}, not {token_in!r}")
        try:
            token = tokens.token()
        except RingCXError as err:
            setattr(err, TOKEN_SOURCE_ERROR, True)  # its own request was retried; never again here
            raise
        if token_in == COOKIE:
            return {**kwargs, "cookies": {**dict(kwargs.get("cookies") or {}), "access_token": token}}
        return {
            **kwargs,
            "headers": {**dict(kwargs.get("headers") or {}), "Authorization": f"Bearer {token}"},
        }

    def _setting_of(self, url: str) -> str:
        """The connection field a URL comes from (named by redirect errors)."""
        platform, api = self.settings.platform_url, self.settings.api_url
        if url.startswith(platform) and (
            not url.startswith(api) or urlsplit(url).path.startswith("/restapi/")
        ):
            return "platform_url"
        return "api_url"

    def _attempt(self, method: str, url: str, what: str, kwargs: dict[str, Any]) -> requests.Response:
        try:
            response = self.session.request(
                method, url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
            if 300 <= response.status_code < 400:
                response = follow_redirects(
                    self.session,
                    response,
                    method=method,
                    url=url,
                    what=what,
                    kwargs=kwargs,
                    timeout=self.timeout,
                    trusted_url=self.settings.api_url,
                    setting=self._setting_of(url),
                    plain_http_hosts=self.settings.plain_http_hosts,
                    allowed_hosts=self.settings.redirect_allowed_hosts,
                )
        except requests.exceptions.Timeout as err:
            raise RingCXTransientError(
                f"{what} timed out ({type(err).__name__}); RingCX is slow or unreachable - retry later"
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as err:
            raise RingCXTransientError(
                f"{what} failed: {type(err).__name__} talking to {urlsplit(url).netloc}; check the network "
                "and the API URL of the connection"
            ) from None
        if response.status_code >= 400:
            raise error_for(response, what)
        return response

    def send_authenticated(
        self, method: str, url: str, tokens: TokenSource, **kwargs: Any
    ) -> requests.Response:
        """:meth:`send` with the token (``token_in``: bearer or cookie); a 401 gets one forced
        re-authentication and one retry.

        :raises RingCXAuthError: the retry was answered 401 too (``retryable``: the token was new).
        """
        used = _UsedToken(tokens)
        for round_ in (1, 2):
            try:
                return self.send(method, url, tokens=used, **kwargs)
            except RingCXAuthError as err:
                if getattr(err, TOKEN_SOURCE_ERROR, False) or used.last is None:
                    raise  # obtaining a token failed: no request was answered 401
                if round_ == 2:
                    # The credentials just minted this token, so its rejection is not a credentials
                    # problem (wrong secrets fail in reauthenticate): a token expired or revoked again
                    # under the request. Another attempt with a new token may succeed.
                    failure = RingCXAuthError(
                        f"{err}; a freshly issued token was rejected as well", status_code=401
                    )
                    failure.retryable = True
                    raise failure from None
                log.info("RingCX answered 401; re-authenticating once and retrying")
            tokens.reauthenticate(used.last)
        raise AssertionError("unreachable")  # pragma: no cover


class _UsedToken:
    """A token source that remembers the token it handed out last (the one a 401 rejected)."""

    def __init__(self, tokens: TokenSource) -> None:
        self.tokens = tokens
        self.last: str | None = None

    def token(self) -> str:
        self.last = self.tokens.token()
        return self.last

    def reauthenticate(self, rejected: str) -> None:
        self.tokens.reauthenticate(rejected)
