"""Fault injection over real sockets: statuses, 429 bursts, resets, truncation, stalls, bad payloads."""

from __future__ import annotations

import json
import socket
import time
from email.utils import parsedate_to_datetime

import pytest
import requests

from tests.simulator.helpers import (
    WINDOW,
    bearer,
    exchange,
    get_recording,
    login,
    post_metadata,
    rc_token,
    validate,
)


@pytest.fixture
def segment(simulator):
    """A recorded segment of ~320 KB (10 s stereo), injected so sizes are known."""
    simulator.control.add_segments(
        [
            {
                "dialogId": "dlg-1",
                "segmentId": "seg-1",
                "segmentEndTimeMs": "2026-03-02T14:30:00Z",
                "segmentDurationMs": 10000,
            }
        ]
    )
    return ("dlg-1", "seg-1", 44 + 10000 * 32)


def _raw_get(sim, path: str, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", sim.server.port), timeout=10)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(request.encode())
    return sock


def _read_all(sock: socket.socket) -> tuple[bytes, BaseException | None]:
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError as exc:
        return bytes(data), exc
    finally:
        sock.close()
    return bytes(data), None


def test_scripted_status_then_recovery(simulator, token):
    simulator.control.set_faults([{"route": "metadata", "kind": "status", "status": 503, "times": 2}])
    responses = [post_metadata(simulator, token) for _ in range(3)]
    assert [r.status_code for r in responses] == [503, 503, 200]
    validate(responses[0].json(), "Errors")
    assert simulator.control.faults()[0]["times"] == 0
    assert simulator.control.stats()["faults"] == {"status": 2}


def test_probabilistic_faults_are_seeded(make_simulator):
    def run() -> list[int]:
        sim = make_simulator(fault_seed=7, faults=[{"route": "metadata", "kind": "status", "status": 500,
                                                   "probability": 0.5}])  # fmt: skip
        token = login(sim.url)["accessToken"]
        body = {**WINDOW, "timeInterval": 60}
        return [post_metadata(sim, token, body).status_code for _ in range(30)]

    first = run()
    assert 5 <= first.count(500) <= 25
    assert set(first) == {200, 500}
    assert run() == first


def test_rate_limit_burst_with_retry_after_variants(simulator, token):
    simulator.control.set_faults(
        [
            {"route": "metadata", "kind": "rate_limit", "times": 1, "retry_after_seconds": 7},
            {"route": "metadata", "kind": "rate_limit", "times": 1, "retry_after": False},
            {
                "route": "metadata",
                "kind": "rate_limit",
                "times": 1,
                "retry_after": "date",
                "retry_after_seconds": 60,
            },
        ]
    )
    first, second, third, fourth = (post_metadata(simulator, token) for _ in range(4))
    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert second.status_code == 429
    assert "Retry-After" not in second.headers
    assert third.status_code == 429
    assert parsedate_to_datetime(third.headers["Retry-After"]).timestamp() > time.time() + 30
    assert fourth.status_code == 200


def test_reset_mid_body_is_a_tcp_reset(simulator, token, segment):
    dialog, seg, size = segment
    simulator.control.set_faults([{"route": "download", "kind": "reset", "after_bytes": 100_000, "times": 1}])
    data, error = _read_all(_raw_get(simulator, simulator.recording_path(dialog, seg), token))
    assert isinstance(error, ConnectionResetError)
    assert len(data) < size
    assert get_recording(simulator, token, dialog, seg).status_code == 200  # only once


def test_reset_seen_by_requests(simulator, token, segment):
    dialog, seg, _ = segment
    simulator.control.set_faults([{"route": "download", "kind": "reset", "after_bytes": 50_000, "times": 1}])
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get_recording(simulator, token, dialog, seg)


def test_truncated_body_is_shorter_than_content_length(simulator, token, segment):
    dialog, seg, size = segment
    simulator.control.set_faults(
        [{"route": "download", "kind": "truncate", "after_bytes": 100_000, "times": 1}]
    )
    data, error = _read_all(_raw_get(simulator, simulator.recording_path(dialog, seg), token))
    assert error is None  # a clean close (FIN) ...
    head, _, body = data.partition(b"\r\n\r\n")
    assert f"content-length: {size}".encode() in head.lower()
    assert len(body) == 100_000  # ... after fewer bytes than announced


def test_stalled_read(simulator, token, segment):
    dialog, seg, size = segment
    simulator.control.set_faults(
        [{"route": "download", "kind": "stall", "after_bytes": 1000, "stall_seconds": 0.6}]
    )
    started = time.monotonic()
    response = get_recording(simulator, token, dialog, seg)
    assert time.monotonic() - started >= 0.6
    assert len(response.content) == size
    with pytest.raises(requests.exceptions.ConnectionError):  # urllib3 ReadTimeoutError mid-body
        get_recording(simulator, token, dialog, seg, timeout=(5, 0.2)).content  # noqa: B018


def test_early_token_expiry(simulator, token):
    simulator.control.set_faults([{"route": "metadata", "kind": "expire_token", "times": 1}])
    first = post_metadata(simulator, token)
    assert (first.status_code, first.text) == (401, "Jwt is expired")
    assert post_metadata(simulator, token).status_code == 401  # the token is really dead now
    assert post_metadata(simulator, login(simulator.url)["accessToken"]).status_code == 200


def test_revoke_tokens_revokes_every_issued_token(simulator, token):
    rc_access = rc_token(simulator.url).json()["access_token"]
    simulator.control.set_faults([{"route": "metadata", "kind": "revoke_tokens", "times": 1}])
    first = post_metadata(simulator, token)
    assert (first.status_code, first.text) == (401, "Jwt is expired")
    assert post_metadata(simulator, token).status_code == 401  # the RingCX token is revoked
    assert exchange(simulator.url, rc_access).status_code == 401  # and so is the RingCentral one
    assert not any(t["live"] for t in simulator.control.stats()["tokens_issued"])
    assert simulator.control.stats()["faults"] == {"revoke_tokens": 1}
    assert post_metadata(simulator, login(simulator.url)["accessToken"]).status_code == 200


def test_html_page_with_status_200(simulator, token):
    simulator.control.set_faults([{"route": "metadata", "kind": "html200", "times": 1}])
    response = post_metadata(simulator, token)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert b"<html>" in response.content


def test_malformed_json_and_json_object(simulator, token):
    simulator.control.set_faults(
        [
            {"route": "metadata", "kind": "malformed_json", "times": 1},
            {"route": "metadata", "kind": "json_object", "times": 1},
        ]
    )
    malformed = post_metadata(simulator, token)
    assert malformed.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.content)
    wrapped = post_metadata(simulator, token).json()
    assert isinstance(wrapped, dict)
    assert isinstance(wrapped["data"], list)


def test_non_wav_body(simulator, token, segment):
    dialog, seg, _ = segment
    simulator.control.set_faults([{"route": "download", "kind": "non_wav", "times": 1}])
    response = get_recording(simulator, token, dialog, seg)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert not response.content.startswith(b"RIFF")


def test_stream_faults_on_metadata(simulator, token):
    simulator.control.set_faults([{"route": "metadata", "kind": "truncate", "after_bytes": 100, "times": 1}])
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        post_metadata(simulator, token)


def test_match_and_skip_target_requests(simulator, token, segment):
    dialog, seg, _ = segment
    truth = simulator.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T14:10:00Z", sha256=False)
    other = next(t for t in truth if t["hasRecording"])
    simulator.control.set_faults(
        [{"route": "download", "kind": "status", "status": 500, "match": seg, "skip": 1}]
    )
    assert get_recording(simulator, token, dialog, seg).status_code == 200  # skipped
    assert get_recording(simulator, token, dialog, seg).status_code == 500
    assert get_recording(simulator, token, other["dialogId"], other["segmentId"]).status_code == 200


@pytest.mark.parametrize("route", ["oauth", "exchange", "refresh", "any"])
def test_auth_routes_take_faults(simulator, route):
    rc = rc_token(simulator.url).json()["access_token"]
    session = exchange(simulator.url, rc).json()
    simulator.control.set_faults([{"route": route, "kind": "status", "status": 502, "times": 1}])
    if route in ("oauth", "any"):
        assert rc_token(simulator.url).status_code == 502
    elif route == "exchange":
        assert exchange(simulator.url, rc).status_code == 502
    else:
        response = requests.post(
            simulator.url + "/api/auth/token/refresh",
            data={"refresh_token": session["refreshToken"]},
            timeout=5,
        )
        assert response.status_code == 502


def test_admin_accounts_fault(simulator, token):
    simulator.control.set_faults([{"route": "admin_accounts", "kind": "json_object", "times": 1}])
    response = requests.get(simulator.url + "/voice/api/v1/admin/accounts", headers=bearer(token), timeout=5)
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize(
    "rule",
    [
        {"route": "nowhere", "kind": "status"},
        {"route": "metadata", "kind": "explode"},
        {"route": "metadata", "kind": "status", "probability": 2},
        {"route": "metadata", "kind": "status", "colour": "red"},
    ],
)
def test_bad_rules_are_rejected(simulator, rule):
    response = requests.post(simulator.url + "/_sim/faults", json=[rule], timeout=5)
    assert response.status_code == 400


def test_clear_faults_and_stats_per_kind(simulator, token):
    simulator.control.set_faults([{"route": "any", "kind": "html200"}])
    post_metadata(simulator, token)
    post_metadata(simulator, token)
    simulator.control.clear_faults()
    assert post_metadata(simulator, token).headers["content-type"] == "application/json"
    stats = simulator.control.stats()
    assert stats["faults"] == {"html200": 2}
    assert stats["requests"]["metadata"] == {"200": 3}
