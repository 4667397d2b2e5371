"""Cross-host recording redirects cannot reach local services (issue #12 item 4, SSRF).

Over real HTTP: the simulator's ``redirect`` fault answers a recording GET with a 307 whose ``Location`` is
on the capture server (127.0.0.2) or an internal address. A plain-http hop to a loopback host is followed
only when ``api_url`` itself is loopback; https hops to internal addresses (cloud metadata, private ranges,
loopback) only when ``redirect_allowed_hosts`` lists them; pre-signed https URLs elsewhere are followed
without the token, and their signature never reaches a log line or an error.
"""

from __future__ import annotations

import logging
import socket
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from airflow_provider_ringcx.exceptions import RingCXRedirectError, RingCXTransientError
from airflow_provider_ringcx.hooks.redirects import cross_host_problem
from tests.fixtures.ports import free_port
from tests.hooks.helpers import past_hour

SIGNATURE = "X-Amz-Signature=5b1e0c4f9d2a7e3b8c6d1f0a2e4b6c8d0f1a3c5e7b9d2f4a6c8e0b1d3f5a7c9e"
PRESIGNED_QUERY = f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20260302&{SIGNATURE}"


def _inject(sim) -> tuple[str, str]:
    _, end = past_hour()
    sim.control.add_segments(
        [
            {
                "dialogId": "dlg-ssrf",
                "segmentId": "seg-ssrf",
                "segmentEndTimeMs": (end - timedelta(minutes=30)).isoformat(),
                "segmentDurationMs": 3000,
            }
        ]
    )
    return "dlg-ssrf", "seg-ssrf"


def _read(hook, ids: tuple[str, str]) -> bytes:
    with hook.stream_recording(*ids) as stream:
        return stream.read()


def _redirect(sim, location: str) -> None:
    sim.control.set_faults([{"route": "download", "kind": "redirect", "location": location}])


def _host_name_on_loopback() -> str:
    """This machine's host name, when it resolves to a loopback address but is not itself loopback (the
    stand-in for a compose service name such as ``simulator``)."""
    name = socket.gethostname().lower()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        address = ""
    if not address.startswith("127.") or name in ("localhost", "localhost.localdomain"):
        pytest.skip(f"host name {name!r} does not resolve to a loopback address")
    return name


def test_plain_http_to_loopback_is_refused_when_api_url_is_not_loopback(
    simulator, connect, capture_server
) -> None:
    """The SSRF path: a demo-style connection (plain http to a named host in plain_http_hosts) is told to
    fetch from http://127.0.0.2:PORT/ - a local service from the worker's point of view."""
    name = _host_name_on_loopback()
    url = simulator.url.replace("127.0.0.1", name)
    ids = _inject(simulator)
    hook = connect(simulator, api_url=url, platform_url=url, plain_http_hosts=name)
    _read(hook, ids)  # the connection works without the redirect
    _redirect(simulator, capture_server.url)
    with pytest.raises(RingCXRedirectError) as info:
        _read(hook, ids)
    message = str(info.value)
    assert urlsplit(capture_server.url).netloc in message
    assert "plain http is followed only" in message
    assert capture_server.requests == []  # the local service was never reached


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254",  # the cloud metadata service (plain http, not loopback)
        "https://169.254.169.254",
        "https://[fd00:ec2::254]",  # the AWS IPv6 metadata address
        "https://[::ffff:169.254.169.254]",  # IPv4-mapped
        "https://10.20.30.40:8443",  # a private range
        "https://100.100.100.200",  # shared address space (another cloud's metadata service)
        "https://127.0.0.3:8443",  # loopback over https
    ],
)
def test_a_redirect_to_an_internal_address_is_refused(simulator, connect, location) -> None:
    ids = _inject(simulator)
    hook = connect(simulator)
    _redirect(simulator, location)
    with pytest.raises(RingCXRedirectError) as info:
        _read(hook, ids)
    message = str(info.value)
    assert urlsplit(location).hostname in message
    assert "redirect_allowed_hosts" in message or "plain http" in message
    assert simulator.recording_path(*ids) not in message


def test_an_internal_host_listed_in_redirect_allowed_hosts_is_followed(simulator, connect) -> None:
    """Listed, the hop is attempted: nothing listens there, so the download fails as a transport error
    (retried), not as a refused redirect."""
    ids = _inject(simulator)
    hook = connect(simulator, redirect_allowed_hosts="127.0.0.3", connect_timeout=2)
    _redirect(simulator, f"https://127.0.0.3:{free_port()}")
    with pytest.raises(RingCXTransientError) as info:
        _read(hook, ids)
    assert not isinstance(info.value, RingCXRedirectError)


def test_a_presigned_url_is_followed_without_the_token_and_its_signature_is_never_logged(
    simulator, connect, capture_server, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="airflow_provider_ringcx")
    ids = _inject(simulator)
    hook = connect(simulator)
    capture_server.payload = _read(hook, ids)
    _redirect(simulator, f"{capture_server.url}?{PRESIGNED_QUERY}")
    assert _read(hook, ids) == capture_server.payload
    (got,) = capture_server.requests
    assert got.path == f"{simulator.recording_path(*ids)}?{PRESIGNED_QUERY}"  # the signature as given
    assert "authorization" not in {name.lower() for name in got.headers}
    ours = [r for r in caplog.records if r.name.startswith("airflow_provider_ringcx")]
    assert any("following a redirect to 127.0.0.2" in r.getMessage() for r in ours)
    assert not any(SIGNATURE in r.getMessage() or "X-Amz" in r.getMessage() for r in ours)


HTTPS_API = "https://ringcx.ringcentral.com"
LOOPBACK_API = "http://127.0.0.1:8080"
DEMO_API = "http://simulator:8080"


@pytest.mark.parametrize(
    ("target", "api_url", "allowed", "ok"),
    [
        ("https://bucket.s3.us-east-1.amazonaws.com/k?X-Amz-Signature=x", HTTPS_API, (), True),
        ("https://d111111abcdef8.cloudfront.net/k?Signature=x", HTTPS_API, (), True),
        ("http://recordings.example.com/k", HTTPS_API, (), False),  # plain http from an https API
        ("http://127.0.0.1:9000/", HTTPS_API, (), False),  # the SSRF path of issue #12 item 4
        ("http://127.0.0.2:9000/", LOOPBACK_API, (), True),  # the tests' simulator and capture server
        ("http://simulator:9000/", DEMO_API, (), True),  # the compose demo: same plain-http set
        ("http://127.0.0.1:9000/", DEMO_API, (), False),  # loopback is not the demo's set
        ("http://169.254.169.254/latest/meta-data/", LOOPBACK_API, (), False),
        ("https://169.254.169.254/", HTTPS_API, (), False),
        ("https://[fd00:ec2::254]/", HTTPS_API, (), False),
        ("https://192.168.1.10/", HTTPS_API, (), False),
        ("https://192.168.1.10/", HTTPS_API, ("192.168.1.10",), True),
        ("https://minio.internal/", HTTPS_API, (), True),  # names are not resolved (module doc)
        ("https://localhost/", HTTPS_API, (), False),
        ("ftp://recordings.example.com/", HTTPS_API, (), False),
    ],
)
def test_cross_host_rule(target: str, api_url: str, allowed: tuple[str, ...], ok: bool) -> None:
    problem = cross_host_problem(target, api_url, plain_http_hosts=("simulator",), allowed_hosts=allowed)
    assert (problem is None) is ok, problem
