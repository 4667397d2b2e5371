"""The AI summary fetch through the real hook against the simulator (real HTTP on 127.0.0.1).

The simulator's summary route is strict about the credential: no ``access_token`` cookie is a 401 and an
``Authorization`` header is a 400, so every successful fetch here proves the cookie was sent and Bearer was
not; the headers the session really sent are also read back from requests' response hook (a real
``PreparedRequest``, nothing mocked). A redirect to another host (the capture server, 127.0.0.2) gets no
cookie and no token.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from airflow_provider_ringcx.exceptions import RingCXAuthError, RingCXForbiddenError
from airflow_provider_ringcx.hooks.summaries import SummaryClient, parse_summary_kinds, summary_path
from airflow_provider_ringcx.hooks.transcripts import TranscriptClient
from airflow_provider_ringcx.transfers.summaries import summary_problem
from tests.fixtures.landing import WINDOW

EARLY, LATER = "2026-03-02T14:30:00Z", "2026-03-02T16:00:00Z"


def _segment(simulator: Any, **config: Any) -> dict[str, Any]:
    """A recorded ground-truth segment of the window with ``hasTranscript``."""
    simulator.control.patch_config(now=LATER, summary_missing_share=0.0, summary_late_share=0.0, **config)
    truth = simulator.control.ground_truth(*WINDOW, sha256=False)
    return next(t for t in truth if t["hasTranscript"] and t["hasRecording"] and not t["restricted"])


def _sent_headers(client: Any, part: str) -> list[dict[str, str]]:
    """The headers of every request to a URL holding ``part``, as the session really sent them (requests'
    response hook; the token exchange's requests go through the same session and are left out)."""
    seen: list[dict[str, str]] = []

    def record(response: requests.Response, **_: Any) -> None:
        if part in str(response.request.url):
            seen.append(dict(response.request.headers))

    client.http.session.hooks["response"].append(record)
    return seen


def _tokens(simulator: Any) -> list[str]:
    return [str(item["token"]) for item in simulator.control.stats()["tokens_issued"]]


def test_a_summary_is_fetched_with_the_cookie_and_never_a_bearer_token(simulator: Any, hook: Any) -> None:
    segment = _segment(simulator)
    client = SummaryClient(hook)
    seen = _sent_headers(client, "/summary/")
    for kind in ("agent", "auto"):
        fetched = client.fetch(segment["segmentId"], kind)
        assert fetched is not None
        document = json.loads(fetched.body)
        assert document["segmentId"] == segment["segmentId"]
        assert document["summaryType"] == kind.upper()
        assert fetched.path == summary_path("99999999", segment["segmentId"], kind)
        assert summary_problem(fetched.body) is None
    assert len(seen) == 2
    (token,) = set(_tokens(simulator)) & {h["Cookie"].split("access_token=", 1)[1] for h in seen}
    for headers in seen:
        assert "Authorization" not in headers  # never Bearer for this endpoint
    assert token not in repr(client)
    assert simulator.control.stats()["requests"]["summaries"] == {"200": 2}


def test_the_transcript_endpoint_still_gets_bearer_and_no_cookie(simulator: Any, hook: Any) -> None:
    simulator.control.patch_config(now=LATER, transcript_missing_share=0.0, transcript_late_share=0.0)
    truth = simulator.control.ground_truth(*WINDOW, sha256=False)
    segment = next(t for t in truth if t["hasTranscript"] and t["hasRecording"] and not t["restricted"])
    client = TranscriptClient(hook)
    seen = _sent_headers(client, "/transcripts/")
    assert client.fetch(segment["dialogId"], segment["segmentId"]) is not None
    (headers,) = seen
    assert headers["Authorization"].startswith("Bearer ")
    assert "Cookie" not in headers


def test_a_bearer_token_is_refused_by_the_summary_route(simulator: Any, hook: Any) -> None:
    """The simulator's own check (what makes the cookie test above meaningful), with plain requests."""
    segment = _segment(simulator)
    url = simulator.url + summary_path("99999999", segment["segmentId"], "agent")
    token = hook.tokens.token()
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 400
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, cookies={"access_token": token}, timeout=10).status_code == 200


def test_404_is_pending_and_a_late_summary_arrives_later(simulator: Any, hook: Any) -> None:
    segment = _segment(simulator)
    simulator.control.patch_config(summary_variants=[f"{segment['segmentId']}=late"], now=EARLY)
    client = SummaryClient(hook)
    assert client.fetch(segment["segmentId"], "agent") is None  # not ready yet: None, never an error
    simulator.control.patch_config(now="2026-03-02T18:00:00Z")  # past summary_delay after the end
    assert client.fetch(segment["segmentId"], "agent") is not None
    simulator.control.patch_config(summary_variants=[f"{segment['segmentId']}=missing"])
    assert client.fetch(segment["segmentId"], "auto") is None  # missing: 404 forever
    assert simulator.control.stats()["requests"]["summaries"] == {"404": 2, "200": 1}


def test_403_access_denied_shape_is_forbidden_and_names_no_token(simulator: Any, hook: Any) -> None:
    segment = _segment(simulator)
    simulator.control.patch_config(restricted_ids=[segment["segmentId"]])
    with pytest.raises(RingCXForbiddenError) as caught:
        SummaryClient(hook).fetch(segment["segmentId"], "auto")
    message = str(caught.value)
    assert "access.denied.exception" in message
    assert "HTTP 403" in message
    assert segment["segmentId"] in message
    for token in _tokens(simulator):
        assert token not in message


def test_a_rejected_cookie_gets_one_reauthentication_then_a_clear_error(simulator: Any, hook: Any) -> None:
    segment = _segment(simulator)
    simulator.control.set_faults([{"route": "summaries", "kind": "expire_token", "times": 1}])
    assert SummaryClient(hook).fetch(segment["segmentId"], "agent") is not None  # 401, re-auth, 200
    simulator.control.set_faults([{"route": "summaries", "kind": "status", "status": 401}])
    with pytest.raises(RingCXAuthError) as caught:
        SummaryClient(hook).fetch(segment["segmentId"], "agent")
    for token in _tokens(simulator):
        assert token not in str(caught.value)


@pytest.mark.parametrize(
    ("variant", "problem"),
    [("malformed", "is not JSON"), ("html", "HTML"), ("array", "a JSON array, not an object")],
)
def test_a_hostile_body_is_returned_as_sent_and_refused_clearly(
    simulator: Any, hook: Any, variant: str, problem: str
) -> None:
    segment = _segment(simulator)
    simulator.control.patch_config(summary_variants=[f"{segment['segmentId']}={variant}"])
    fetched = SummaryClient(hook).fetch(segment["segmentId"], "agent")
    assert fetched is not None  # the transport hands over the bytes with their SHA-256 ...
    assert problem in (summary_problem(fetched.body) or "")  # ... and the check refuses them, saying why


def test_a_redirect_to_another_host_carries_no_cookie_and_no_token(
    simulator: Any, hook: Any, capture_server: Any
) -> None:
    segment = _segment(simulator)
    capture_server.payload, capture_server.content_type = b'{"summary": "elsewhere"}', "application/json"
    location = capture_server.url
    simulator.control.set_faults([{"route": "summaries", "kind": "redirect", "location": location}])
    fetched = SummaryClient(hook).fetch(segment["segmentId"], "agent")
    assert fetched is not None
    assert fetched.body == capture_server.payload
    (got,) = capture_server.requests
    assert {name.lower() for name in got.headers}.isdisjoint({"cookie", "authorization"})
    for token in _tokens(simulator):
        assert token not in got.raw


@pytest.mark.parametrize(
    ("value", "kinds"),
    [
        (False, ()), (None, ()), ("", ()), ("false", ()), ("none", ()), ("agent", ("agent",)),
        ("AUTO", ("auto",)), ("both", ("agent", "auto")), (True, ("agent", "auto")),
        (["auto", "agent"], ("agent", "auto")), ("auto,agent", ("agent", "auto")), (("agent",), ("agent",)),
    ],
)  # fmt: skip
def test_include_summaries_values(value: Any, kinds: tuple[str, ...]) -> None:
    assert parse_summary_kinds(value) == kinds


@pytest.mark.parametrize("value", ["yes please", ["agent", "human"], 3, {"agent": True}])
def test_include_summaries_refuses_anything_else_naming_the_choices(value: Any) -> None:
    with pytest.raises(ValueError, match="'agent', 'auto', 'both'"):
        parse_summary_kinds(value)
