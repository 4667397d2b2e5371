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
  - to any other host **without** ``Authorization``, cookies or any header but the safe ones
    (:data:`SAFE_HEADERS`), and only where :func:`cross_host_problem` finds nothing wrong (issue #12 item
    4, server-side request forgery): the target must be https; plain http only when ``api_url`` itself is
    plain http to a host that may be (a loopback host, or one in ``plain_http_hosts``) and the target is in
    that same set: a loopback target only when ``api_url`` is loopback (the tests' simulator), a
    ``plain_http_hosts`` name when ``api_url`` is loopback or listed (the compose demo). An https target
    that is internal (loopback, private, link-local such as the cloud metadata services at
    169.254.169.254 and ``fd00:ec2::254``, shared or reserved; see
    :func:`~airflow_provider_ringcx.hooks.urls.is_internal`) is refused unless the connection extra
    ``redirect_allowed_hosts`` lists it: a hostile or compromised API must not make the worker fetch from
    local services. Once a hop has left the origin, later hops never get the token back.

  Pre-signed URLs (S3, CloudFront) are followed: an https ``Location`` on a public storage host whose query
  carries the signature is fetched without our ``Authorization`` (the signature is the credential; sending
  the bearer token as well would leak it, and S3 refuses a request with two authorizations). The query is
  sent as given, never logged: messages and log lines name ``host[:port]`` only, never the ``Location``
  with its path and query (a pre-signed URL is itself a credential).

  Anything else (a ``user:password@`` target, more hops) is an error naming the host.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from airflow_provider_ringcx.exceptions import RingCXRedirectError
from airflow_provider_ringcx.hooks.urls import is_internal, is_loopback, origin, plain_http_allowed, safe_host

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


def cross_host_problem(
    target: str,
    trusted_url: str,
    *,
    plain_http_hosts: tuple[str, ...] = (),
    allowed_hosts: tuple[str, ...] = (),
) -> str | None:
    """Why a hop to ``target`` (another origin than ``trusted_url``) may not be followed, or ``None``.

    :param target: the absolute ``Location``.
    :param trusted_url: ``api_url``: decides whether plain http may be followed at all.
    :param plain_http_hosts: the connection's ``plain_http_hosts``.
    :param allowed_hosts: the connection's ``redirect_allowed_hosts`` (internal hosts allowed over https).
    """
    parts, trusted = urlsplit(target), urlsplit(trusted_url)
    host = (parts.hostname or "").lower().rstrip(".")
    trusted_host = (trusted.hostname or "").lower().rstrip(".")
    if parts.scheme == "http":
        if trusted.scheme != "http" or not plain_http_allowed(trusted_host, plain_http_hosts):
            return (
                "a redirect to another host is followed only over https (and then without the token); plain "
                "http only when api_url itself is plain http to a loopback host or one in plain_http_hosts"
            )
        loopback_from_afar = is_loopback(host) and not is_loopback(trusted_host)
        if loopback_from_afar or not plain_http_allowed(host, plain_http_hosts):
            return (
                "plain http is followed only to the hosts api_url may use over plain http (loopback when "
                "api_url is loopback, names in plain_http_hosts)"
            )
        return None
    if parts.scheme != "https":
        return "a redirect to another host is followed only over https"
    if is_internal(host) and host not in allowed_hosts and host.strip("[]") not in allowed_hosts:
        return (
            "it is a loopback, private or link-local address (cloud metadata services live there), which a "
            "redirect must not reach; if recordings really are served from it, list it in the connection "
            "extra redirect_allowed_hosts"
        )
    return None


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
    plain_http_hosts: tuple[str, ...] = (),
    allowed_hosts: tuple[str, ...] = (),
) -> requests.Response:
    """Follow the redirect ``response`` (a 3xx to ``url``) per the policy; return the first non-3xx response.

    :param session: the client's session (same-origin hops use it, so its cookies stay with the origin).
    :param kwargs: the original request's arguments (``headers``, ``stream``...).
    :param trusted_url: the base URL whose origin may receive the token (``api_url``).
    :param setting: the connection field to fix, named in the errors (``api_url`` or ``platform_url``).
    :param plain_http_hosts: the connection's ``plain_http_hosts`` (see :func:`cross_host_problem`).
    :param allowed_hosts: the connection's ``redirect_allowed_hosts``.
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
            problem = cross_host_problem(
                target, trusted_url, plain_http_hosts=plain_http_hosts, allowed_hosts=allowed_hosts
            )
            if problem:
                raise _refused(what, status, target, problem, fix)
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
