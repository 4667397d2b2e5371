"""The redirect policy of the hook's transport (issue #12 item 7).

requests follows redirects by itself, and that leaks: a 307 keeps the method *and the body*, so a 307 on
``POST /restapi/oauth/token`` re-sends the JWT assertion (and the Basic client credentials when the host
stays the same) to the ``Location``, and a 307 on the exchange POST re-sends the RingCentral token.
``Session.rebuild_auth`` strips ``Authorization`` only when the host changes, never strips a body, and adds
``~/.netrc`` credentials for the new host. So :class:`~airflow_provider_ringcx.hooks.client.HttpClient`
sends every request with ``allow_redirects=False`` and hands a 3xx to :func:`follow_redirects`, which
decides by this policy:

* A request with a body or credentials of its own (every auth request: JWT grant, exchange, refresh; the
  metadata POST) never follows a redirect: a 3xx is a :class:`RingCXRedirectError` naming the redirect's
  host and the setting to fix. It is not retried.
* A GET carrying the bearer token (a recording) may follow up to :data:`MAX_REDIRECTS` hops:

  - to the same origin (scheme, host and port) as ``api_url``: with the token;
  - to any other host: only over https (or plain http to a loopback host, for the tests), and then
    **without** ``Authorization``, cookies or any header but the safe ones (:data:`SAFE_HEADERS`): a
    pre-signed storage URL needs no token, and a foreign host must never see one. Once a hop has left the
    origin, later hops never get the token back.

  Anything else (plain http to another host, a ``user:password@`` target, more hops) is an error naming the
  host. Messages name ``host[:port]`` only, never the ``Location`` with its path and query (a pre-signed URL
  is itself a credential).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from airflow_provider_ringcx.exceptions import RingCXRedirectError
from airflow_provider_ringcx.hooks.urls import is_loopback, origin, safe_host

log = logging.getLogger(__name__)

#: Most redirect hops a recording GET may follow.
MAX_REDIRECTS = 3
#: Statuses that are redirects with a ``Location`` (300, 304 and 305 are not followed).
FOLLOWABLE = frozenset({301, 302, 303, 307, 308})
#: Request arguments that carry a body or credentials of their own: such a request never follows.
_CARRIES_SECRETS = ("data", "json", "files", "auth")
#: The only headers a hop to another host gets (no Authorization, Cookie or Proxy-Authorization).
SAFE_HEADERS = frozenset({"user-agent", "accept", "accept-encoding", "accept-language"})


def may_follow(method: str, kwargs: Mapping[str, Any]) -> bool:
    """Whether a request may follow redirects at all: a GET or HEAD without a body or its own auth."""
    return method.upper() in ("GET", "HEAD") and all(kwargs.get(name) is None for name in _CARRIES_SECRETS)


def _refused(what: str, status: int, target: str | None, problem: str, fix: str) -> RingCXRedirectError:
    where = f" to {safe_host(target)}" if target else ""
    return RingCXRedirectError(
        f"{what} was redirected (HTTP {status}){where}: {problem}; {fix}", status_code=status
    )


def follow_redirects(
    session: requests.Session,
    response: requests.Response,
    *,
    method: str,
    url: str,
    what: str,
    kwargs: Mapping[str, Any],
    timeout: Any,
    trusted_url: str,
    setting: str,
) -> requests.Response:
    """Follow the redirect ``response`` (a 3xx to ``url``) per the policy; return the first non-3xx response.

    :param session: the client's session (same-origin hops use it, so its cookies stay with the origin).
    :param kwargs: the original request's arguments (``headers``, ``stream``...).
    :param trusted_url: the base URL whose origin may receive the token (``api_url``).
    :param setting: the connection field to fix, named in the errors (``api_url`` or ``platform_url``).
    :raises RingCXRedirectError: the policy refuses the redirect (never retried).
    """
    fix = f"set extra {setting} of the connection to the address that answers without a redirect"
    current, credentials = url, True
    for hop in range(MAX_REDIRECTS + 1):
        status = response.status_code
        if not 300 <= status < 400:
            return response
        location = response.headers.get("Location")
        response.close()
        target = urljoin(current, location.strip()) if location and location.strip() else None
        if target is None or status not in FOLLOWABLE:
            raise _refused(what, status, None, "the response is not a redirect with a Location", fix)
        if not may_follow(method, kwargs):
            raise _refused(
                what,
                status,
                target,
                "a request that carries credentials or a body never follows a redirect (it would send the "
                "client secret, JWT or token there)",
                fix,
            )
        if hop == MAX_REDIRECTS:
            raise _refused(what, status, target, f"more than {MAX_REDIRECTS} redirects", fix)
        try:
            parts = urlsplit(target)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise _refused(what, status, None, "the Location is not a valid URL", fix) from None
        if "@" in parts.netloc:
            raise _refused(what, status, target, "the Location carries user:password@ credentials", fix)
        credentials = credentials and origin(target) == origin(trusted_url)
        if not credentials:
            host = parts.hostname or ""
            if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host))):
                raise _refused(
                    what,
                    status,
                    target,
                    "a redirect to another host is followed only over https (and then without the token)",
                    fix,
                )
            log.info("%s: following a redirect to %s without credentials", what, safe_host(target))
        response = _hop(session, method, target, kwargs, timeout, credentials=credentials)
        current = target
    raise AssertionError("unreachable")  # pragma: no cover


def _hop(
    session: requests.Session,
    method: str,
    target: str,
    kwargs: Mapping[str, Any],
    timeout: Any,
    *,
    credentials: bool,
) -> requests.Response:
    """One redirect hop; ``credentials=False`` sends a request built from safe headers only."""
    if credentials:
        same = {name: value for name, value in kwargs.items() if name not in ("params", "allow_redirects")}
        return session.request(method, target, timeout=timeout, allow_redirects=False, **same)
    merged = {**session.headers, **dict(kwargs.get("headers") or {})}
    headers = {name: value for name, value in merged.items() if name.lower() in SAFE_HEADERS}
    # A bare PreparedRequest: Session.prepare_request would add the session's cookies and ~/.netrc auth.
    prepared = requests.Request(method.upper(), target, headers=headers).prepare()
    assert prepared.url is not None
    environment = session.merge_environment_settings(
        prepared.url, {}, bool(kwargs.get("stream", False)), None, None
    )  # proxies, CA bundle, stream: as Session.request would, without cookies or netrc
    return session.send(prepared, timeout=timeout, allow_redirects=False, **environment)
