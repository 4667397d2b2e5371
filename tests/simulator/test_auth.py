"""Auth over HTTP: RingCentral JWT grant, account lookups, RingCX exchange, refresh, expiry, API token."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests

from tests.simulator.helpers import (
    JWT_GRANT,
    SMALL,
    WINDOW,
    bearer,
    exchange,
    login,
    post_metadata,
    rc_token,
    validate,
)


def test_jwt_grant_returns_rc_token_shape(simulator):
    response = rc_token(simulator.url)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token_expires_in"] == 604800
    assert body["scope"] == "ReadAccounts"
    assert {"access_token", "refresh_token", "owner_id", "endpoint_id"} <= set(body)


def test_wrong_client_secret_is_401_and_wrong_assertion_is_400(simulator):
    bad_client = rc_token(simulator.url, secret="nope")
    assert bad_client.status_code == 401
    assert bad_client.json()["error"] == "invalid_client"
    assert "nope" not in bad_client.text
    bad_jwt = rc_token(simulator.url, assertion="forged")
    assert bad_jwt.status_code == 400
    assert bad_jwt.json()["error"] == "invalid_grant"


def test_missing_basic_auth_and_unknown_grant_are_rejected(simulator):
    no_auth = requests.post(simulator.url + "/restapi/oauth/token", data={"grant_type": JWT_GRANT}, timeout=5)
    assert no_auth.status_code == 401
    password = requests.post(
        simulator.url + "/restapi/oauth/token",
        auth=("sim-client-id", "sim-client-secret"),
        data={"grant_type": "password", "username": "u", "password": "p"},
        timeout=5,
    )
    assert password.status_code == 400
    assert password.json()["error"] == "unsupported_grant_type"


def test_rc_refresh_grant_rotates(simulator):
    first = rc_token(simulator.url).json()
    again = requests.post(
        simulator.url + "/restapi/oauth/token",
        auth=("sim-client-id", "sim-client-secret"),
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        timeout=5,
    )
    assert again.status_code == 200
    reused = requests.post(
        simulator.url + "/restapi/oauth/token",
        auth=("sim-client-id", "sim-client-secret"),
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        timeout=5,
    )
    assert reused.status_code == 400


def test_account_lookup_needs_the_rc_token(simulator):
    rc = rc_token(simulator.url).json()["access_token"]
    ok = requests.get(simulator.url + "/restapi/v1.0/account/~", headers=bearer(rc), timeout=5)
    assert ok.status_code == 200
    assert ok.json()["id"] == "980634004"
    ringcx = login(simulator.url)["accessToken"]
    wrong = requests.get(simulator.url + "/restapi/v1.0/account/~", headers=bearer(ringcx), timeout=5)
    assert wrong.status_code == 401


def test_admin_accounts_lists_sub_accounts(make_simulator):
    sim = make_simulator(sub_account_ids="99999999,88888888")
    token = login(sim.url)["accessToken"]
    response = requests.get(sim.url + "/voice/api/v1/admin/accounts", headers=bearer(token), timeout=5)
    assert response.status_code == 200
    assert [a["accountId"] for a in response.json()] == ["99999999", "88888888"]
    assert all(a["mainAccountId"] == "99990000" for a in response.json())


def test_exchange_matches_vendor_schema_with_and_without_refresh(simulator):
    rc = rc_token(simulator.url).json()["access_token"]
    with_refresh = exchange(simulator.url, rc)
    assert with_refresh.status_code == 200
    body = with_refresh.json()
    validate(body, "AccessTokenUserDetails")
    assert body["tokenType"] == "Bearer"
    assert body["refreshToken"]
    assert body["agentDetails"][0]["accountId"] == "99999999"
    assert body["mainAccountId"] == "99990000"
    without = exchange(simulator.url, rc, include_refresh=False).json()
    validate(without, "AccessTokenUserDetails")
    assert "refreshToken" not in without


def test_exchange_accepts_query_parameters(simulator):
    rc = rc_token(simulator.url).json()["access_token"]
    response = requests.post(
        simulator.url + "/api/auth/login/rc/accesstoken",
        params={"includeRefresh": "true", "rcAccessToken": rc, "rcTokenType": "Bearer"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["refreshToken"]


def test_exchange_rejects_unknown_rc_token(simulator):
    response = exchange(simulator.url, "not-a-token")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/plain")


def test_unknown_token_gets_plain_text_jwt_is_expired(simulator):
    response = post_metadata(simulator, "bogus")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Jwt is expired"


def test_missing_authorization_is_401(simulator):
    response = requests.post(simulator.url + simulator.metadata_path(), json=WINDOW, timeout=5)
    assert response.status_code == 401


def test_expired_message_variant(make_simulator):
    sim = make_simulator(expired_message="JWT is expired.")
    assert post_metadata(sim, "bogus").text == "JWT is expired."


def test_token_expires_after_scaled_lifetime(make_simulator):
    # 300 simulated seconds at time_scale 300 = 1 real second.
    sim = make_simulator(time_scale=300)
    token = login(sim.url)["accessToken"]
    assert post_metadata(sim, token, SMALL).status_code == 200
    time.sleep(1.05)
    expired = post_metadata(sim, token, SMALL)
    assert expired.status_code == 401
    assert expired.text == "Jwt is expired"


def test_token_lifetime_knob(make_simulator):
    sim = make_simulator(token_lifetime=3600, time_scale=1000)  # 3.6 real seconds
    token = login(sim.url)["accessToken"]
    time.sleep(0.4)
    assert post_metadata(sim, token).status_code == 200


def _jwt_payload(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_jwt_token_format_carries_scaled_exp(make_simulator):
    sim = make_simulator(time_scale=10)
    token = login(sim.url)["accessToken"]
    assert token.count(".") == 2
    exp = _jwt_payload(token)["exp"]
    assert abs(exp - (time.time() + 30)) <= 2  # 300 s lifetime / scale 10


def test_opaque_token_format(make_simulator):
    sim = make_simulator(token_format="opaque")
    token = login(sim.url)["accessToken"]
    assert "." not in token
    assert post_metadata(sim, token).status_code == 200


def test_refresh_rotates_refresh_token(simulator):
    first = login(simulator.url)
    response = requests.post(
        simulator.url + "/api/auth/token/refresh",
        data={"refresh_token": first["refreshToken"], "rcTokenType": "Bearer"},
        timeout=5,
    )
    assert response.status_code == 200
    second = response.json()
    validate(second, "AccessTokenUserDetails")
    assert second["refreshToken"] != first["refreshToken"]
    assert post_metadata(simulator, second["accessToken"]).status_code == 200
    reused = requests.post(
        simulator.url + "/api/auth/token/refresh", data={"refresh_token": first["refreshToken"]}, timeout=5
    )
    assert reused.status_code == 401
    assert reused.text == "Jwt is expired"


@pytest.mark.parametrize("uses_budget", [False, True])
def test_exchange_budget_5_per_minute(make_simulator, uses_budget):
    sim = make_simulator(token_budget="5/60", time_scale=60, refresh_uses_token_budget=uses_budget)
    rc = rc_token(sim.url).json()["access_token"]
    statuses = [exchange(sim.url, rc).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    limited = exchange(sim.url, rc)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    refresh = requests.post(
        sim.url + "/api/auth/token/refresh", data={"refresh_token": "whatever"}, timeout=5
    ).status_code
    assert refresh == (429 if uses_budget else 401)
    time.sleep(1.05)  # one simulated minute at time_scale 60
    assert exchange(sim.url, rc).status_code == 200


def test_permanent_api_token_is_accepted(make_simulator):
    sim = make_simulator(api_token="aws80:perm-token")
    assert post_metadata(sim, "aws80:perm-token").status_code == 200
    disabled = make_simulator(api_token="")
    assert post_metadata(disabled, "").status_code == 401


def test_revoke_kills_every_issued_token(simulator):
    session = login(simulator.url)
    assert simulator.control.revoke() >= 3
    assert post_metadata(simulator, session["accessToken"]).status_code == 401
    refresh = requests.post(
        simulator.url + "/api/auth/token/refresh", data={"refresh_token": session["refreshToken"]}, timeout=5
    )
    assert refresh.status_code == 401
    assert post_metadata(simulator, simulator.config.api_token).status_code == 200


def test_stats_list_issued_tokens(simulator):
    session = login(simulator.url)
    issued = {t["token"] for t in simulator.control.stats()["tokens_issued"]}
    assert session["accessToken"] in issued
    assert session["refreshToken"] in issued
