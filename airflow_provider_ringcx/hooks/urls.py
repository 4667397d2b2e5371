"""Which URLs may receive credentials, and how to print a URL safely (issue #12, items 7 and 8).

``platform_url`` receives the client secret and the JWT, ``api_url`` the RingCentral token and every RingCX
token. Both must therefore be ``https``: plain ``http`` is accepted only for loopback hosts (127.0.0.0/8,
``::1``, ``localhost``: the bundled simulator in tests) and for host names the connection lists in
``plain_http_hosts`` (the docker-compose demo's ``simulator`` service). A URL with ``user:password@`` is
refused, and no message quotes that part: :func:`without_userinfo` prints a URL without it.

The redirect policy of :mod:`~airflow_provider_ringcx.hooks.redirects` uses :func:`origin`,
:func:`safe_host`, :func:`plain_http_allowed` and :func:`is_internal` from here, so "same host", "loopback"
and "may be reached over plain http" mean the same thing for the configured URLs and for redirect targets.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 literal (without brackets)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, without brackets) is this machine: 127.0.0.0/8, ::1."""
    host = host.lower().rstrip(".")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http_allowed(host: str, plain_http_hosts: tuple[str, ...] = ()) -> bool:
    """Whether ``host`` may be reached over plain http: a loopback host or one in ``plain_http_hosts``."""
    return is_loopback(host) or host.lower().rstrip(".") in plain_http_hosts


def is_internal(host: str) -> bool:
    """Whether ``host`` is an address a hostile redirect must not reach (server-side request forgery).

    True for loopback names and for every IP literal that is not a global unicast address: loopback,
    private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with the cloud metadata service
    169.254.169.254, fe80::/10), shared (100.64/10), multicast, reserved and unspecified, IPv4-mapped IPv6
    included; the AWS IPv6 metadata address ``fd00:ec2::254`` is private. Host names are not resolved: a DNS
    answer can change between this check and the connection, so names are judged by the scheme rule and
    the network's egress policy, not here.
    """
    host = host.lower().rstrip(".")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def without_userinfo(parts: SplitResult) -> str:
    """The URL of ``parts`` without ``user:password@``, query and fragment (safe to print)."""
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=netloc, query="", fragment="").geturl()


def safe_host(url: str) -> str:
    """``host[:port]`` of ``url`` for messages: never a userinfo part, a path or a query."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "an unparseable address"
    host = parts.hostname or "no host"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port is not None else host


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the port defaulted from the scheme (for same-origin checks)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower().rstrip("."), port or _DEFAULT_PORTS.get(scheme)


def base_url_problem(text: str, example: str, plain_http_hosts: tuple[str, ...] = ()) -> str | None:
    """Why ``text`` may not be a credential-receiving base URL, or ``None`` if it may.

    :param text: the URL as configured.
    :param example: the fix to suggest, e.g. ``"write an https base URL such as 'https://...'"``.
    :param plain_http_hosts: host names that may be reached over plain http.
    :return: a problem sentence that never contains a userinfo part.
    """
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return f"is not a valid URL; {example}"
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        return (
            f"({without_userinfo(parts)!r} with a user:password@ part) carries credentials in the URL; "
            f"remove them: {example}, and keep the client id and secret in login and password"
        )
    shown = without_userinfo(parts)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment:
        return f"is {shown!r}; {example} (an http(s) base URL, no query)"
    if not (HOST_NAME.match(host) or is_ip(host)) or port == 0:
        return f"is {shown!r}, whose host is not a valid name or address; {example}"
    if parts.scheme == "http" and not plain_http_allowed(host, plain_http_hosts):
        return (
            f"is {shown!r}: plain http would send the client secret, JWT and tokens unencrypted to "
            f"{host!r}; use https (http is accepted only for loopback hosts - 127.0.0.0/8, ::1, "
            "localhost - and for host names listed in extra plain_http_hosts)"
        )
    return None
