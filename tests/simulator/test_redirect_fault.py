"""The ``redirect`` fault (issue #12 item 7): a 3xx with a Location on another host, per route."""

from __future__ import annotations

import pytest
import requests

from ringcx_simulator.faults import FaultRule


def test_redirect_answers_307_with_the_location_plus_the_request_path_and_query(simulator):
    simulator.control.set_faults(
        [{"route": "exchange", "kind": "redirect", "location": "http://127.0.0.2:9/", "times": 1}]
    )
    response = requests.post(
        simulator.url + "/api/auth/login/rc/accesstoken?includeRefresh=true",
        data={"rcAccessToken": "x", "rcTokenType": "Bearer"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 307
    assert (
        response.headers["Location"] == "http://127.0.0.2:9/api/auth/login/rc/accesstoken?includeRefresh=true"
    )
    assert simulator.control.stats()["requests"]["exchange"] == {"307": 1}


def test_redirect_uses_a_3xx_status_when_given(simulator):
    simulator.control.set_faults(
        [{"route": "oauth", "kind": "redirect", "status": 302, "location": "https://elsewhere.example"}]
    )
    response = requests.post(simulator.url + "/restapi/oauth/token", allow_redirects=False, timeout=10)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://elsewhere.example/restapi/oauth/token"


@pytest.mark.parametrize("location", [None, "", "ftp://x", "127.0.0.2:80"])
def test_redirect_needs_an_http_location(location):
    rule = {"route": "download", "kind": "redirect"}
    if location is not None:
        rule["location"] = location
    with pytest.raises(ValueError, match="location"):
        FaultRule.from_dict(rule)
