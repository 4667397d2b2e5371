"""Redirects never carry credentials to another host (issue #12 item 7).

The simulator's ``redirect`` fault answers 307 with a ``Location`` on the capture server (127.0.0.2, another
port: another host). Auth requests and the metadata POST must refuse the redirect with a typed error naming
the host, so the capture server receives nothing; a recording GET may follow it, but only without the token.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_ringcx.exceptions import RingCXRedirectError
from airflow_provider_ringcx.hooks.redirects import MAX_REDIRECTS
from tests.hooks.helpers import OffsetClock, past_hour


def _secrets(sim) -> list[str]:
    """Every credential a client of ``sim`` may hold: the JWT, the client secret and all issued tokens."""
    tokens = [str(item["token"]) for item in sim.control.stats()["tokens_issued"]]
    assert tokens, "the client obtained no token: nothing to look for"
    return [sim.config.jwt, sim.config.client_secret, *tokens]


def _counts(sim, route: str) -> dict[str, int]:
    return sim.control.stats()["requests"].get(route, {})


def _redirect(sim, route: str, location: str, **rule) -> None:
    sim.control.set_faults([{"route": route, "kind": "redirect", "location": location, **rule}])


def _inject(sim) -> tuple[str, str]:
    _, end = past_hour()
    sim.control.add_segments(
        [
            {
                "dialogId": "dlg-redirect",
                "segmentId": "seg-redirect",
                "segmentEndTimeMs": (end - timedelta(minutes=30)).isoformat(),
                "segmentDurationMs": 3000,
            }
        ]
    )
    return "dlg-redirect", "seg-redirect"


def _read(hook, dialog_id: str, segment_id: str) -> bytes:
    with hook.stream_recording(dialog_id, segment_id) as stream:
        data = stream.read()
        assert stream.complete
        return data


def test_plain_requests_would_send_the_jwt_to_the_redirect_host(simulator, capture_server):
    """The attack is real: requests' own redirect handling re-sends the form body (the JWT) on a 307."""
    _redirect(simulator, "oauth", capture_server.url)
    config = simulator.config
    requests.post(
        simulator.url + "/restapi/oauth/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": config.jwt},
        auth=(config.client_id, config.client_secret),
        timeout=10,
    )
    assert capture_server.seen(config.jwt)


@pytest.mark.parametrize(("route", "setting"), [("oauth", "platform_url"), ("exchange", "api_url")])
def test_an_auth_redirect_is_refused_naming_the_host_and_nothing_reaches_it(
    simulator, connect, capture_server, route, setting
):
    _redirect(simulator, route, capture_server.url)
    hook = connect(simulator)
    with pytest.raises(RingCXRedirectError) as info:
        hook.tokens.token()
    message = str(info.value)
    assert urlsplit(capture_server.url).netloc in message  # the host, and the setting to fix
    assert f"extra {setting}" in message
    assert f"{capture_server.url}/" not in message  # never the Location's path or query
    assert "includeRefresh" not in message
    assert "http://127.0.0.2" not in message
    assert info.value.retryable is False
    assert capture_server.requests == []
    assert _counts(simulator, route) == {"307": 1}  # refused at once, not retried


def test_a_refresh_redirect_is_refused_and_the_client_exchanges_again(simulator, connect, capture_server):
    clock = OffsetClock()
    hook = connect(simulator, clock=clock)
    hook.tokens.token()
    _redirect(simulator, "refresh", capture_server.url)
    clock.offset += 290  # past the refresh margin: the next token() refreshes
    assert hook.tokens.token()
    assert _counts(simulator, "refresh") == {"307": 1}
    assert _counts(simulator, "exchange") == {"200": 2}
    assert capture_server.requests == []


def test_a_metadata_redirect_is_refused_and_nothing_reaches_the_other_host(
    simulator, connect, capture_server
):
    hook = connect(simulator)
    hook.tokens.token()
    _redirect(simulator, "metadata", capture_server.url)
    with pytest.raises(RingCXRedirectError, match=r"127\.0\.0\.2") as info:
        list(hook.iter_interaction_metadata(*past_hour()))
    assert "extra api_url" in str(info.value)
    assert capture_server.requests == []
    assert _counts(simulator, "metadata") == {"307": 1}


def test_a_recording_redirected_to_another_host_is_fetched_without_the_token(
    simulator, connect, capture_server
):
    ids = _inject(simulator)
    hook = connect(simulator)
    capture_server.payload = _read(hook, *ids)  # the real WAV, so the redirected download verifies
    _redirect(simulator, "download", capture_server.url)
    assert _read(hook, *ids) == capture_server.payload
    (got,) = capture_server.requests
    assert got.method == "GET"
    assert got.path == simulator.recording_path(*ids)
    names = {name.lower() for name in got.headers}
    assert "authorization" not in names
    assert "cookie" not in names
    for secret in _secrets(simulator):
        assert secret not in got.raw
    assert _counts(simulator, "download") == {"200": 1, "307": 1}


def test_a_recording_redirect_to_the_same_origin_keeps_the_token(simulator, connect):
    ids = _inject(simulator)
    hook = connect(simulator)
    _redirect(simulator, "download", simulator.url, times=2)
    assert _read(hook, *ids)
    assert _counts(simulator, "download") == {"307": 2, "200": 1}


def test_a_recording_redirect_loop_stops_after_the_hop_limit(simulator, connect):
    ids = _inject(simulator)
    hook = connect(simulator)
    _redirect(simulator, "download", simulator.url)
    with pytest.raises(RingCXRedirectError, match=f"more than {MAX_REDIRECTS} redirects"):
        _read(hook, *ids)
    assert _counts(simulator, "download") == {"307": MAX_REDIRECTS + 1}


@pytest.mark.parametrize(
    "location",
    ["http://198.51.100.7:8080", "http://recordings.example.com", "https://user:pw@recordings.example.com"],
)
def test_a_recording_redirect_to_plain_http_or_userinfo_is_refused(simulator, connect, location):
    ids = _inject(simulator)
    hook = connect(simulator)
    _redirect(simulator, "download", location)
    with pytest.raises(RingCXRedirectError) as info:
        _read(hook, *ids)
    message = str(info.value)
    assert urlsplit(location).hostname in message
    assert "pw" not in message.replace("https", "")
    assert simulator.recording_path(*ids) not in message
