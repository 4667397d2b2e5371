"""Token lifecycle against the simulator: JWT grant, exchange, refresh, expiry mid-run, 401 handling."""

from __future__ import annotations

import time

import pytest

from airflow_provider_ringcx.exceptions import RingCXAuthError
from tests.hooks.helpers import OffsetClock, past_hour


def counts(sim, route: str) -> dict[str, int]:
    return sim.control.stats()["requests"].get(route, {})


def test_jwt_grant_then_exchange_and_cached(simulator, connect):
    hook = connect(simulator)
    first = hook.tokens.token()
    for _ in range(5):
        assert hook.tokens.token() == first
    assert counts(simulator, "oauth") == {"200": 1}
    assert counts(simulator, "exchange") == {"200": 1}
    assert hook.tokens.exchanges == 1


def test_token_expiring_mid_run_is_refreshed_ahead_of_expiry(make_simulator, connect):
    """Tokens live 2 real seconds (120 simulated s at time scale 60); a 7 s run needs several renewals. The
    margin (1 s) covers a loaded machine's delay between the hook's expiry check and the server's (0.3 s
    did not: a clean-clone CI run beside other work saw a 401)."""
    sim = make_simulator(time_scale=60, token_lifetime=120)
    hook = connect(sim, refresh_margin_seconds=1.0)
    start, end = past_hour()
    records = [r for r in hook.iter_interaction_metadata(start, end) if r.has_recording][:40]
    deadline = time.monotonic() + 7
    downloads = 0
    while time.monotonic() < deadline:
        record = records[downloads % len(records)]
        with hook.stream_recording(*record.key) as stream:
            stream.read()
            assert stream.complete
        downloads += 1
        time.sleep(0.05)
    stats = sim.control.stats()["requests"]
    assert hook.tokens.refreshes >= 2, stats  # renewed ahead of expiry...
    assert "401" not in stats.get("download", {}), stats  # ...so no request ever saw an expired token
    assert stats["refresh"].get("200", 0) == hook.tokens.refreshes
    assert hook.tokens.exchanges == 1  # the rotated refresh token was stored and worked every time


def test_token_expired_server_side_gets_one_reauth_and_retry(simulator, connect):
    hook = connect(simulator)
    start, end = past_hour()
    hook.tokens.token()
    simulator.control.set_faults([{"route": "metadata", "kind": "expire_token", "times": 1}])
    records = list(hook.iter_interaction_metadata(start, end))
    assert len(records) > 100
    stats = simulator.control.stats()["requests"]
    assert stats["metadata"] == {"401": 1, "200": 1}
    assert hook.tokens.exchanges == 2


def test_revoked_tokens_get_a_new_rc_token_and_exchange(simulator, connect):
    hook = connect(simulator)
    hook.tokens.token()
    simulator.control.revoke()  # RC and RingCX tokens all dead
    start, end = past_hour()
    assert sum(1 for _ in hook.iter_interaction_metadata(start, end)) > 100
    stats = simulator.control.stats()["requests"]
    assert stats["oauth"] == {"200": 2}
    assert stats["exchange"]["200"] == 2


def test_second_401_is_a_clear_auth_error(simulator, connect):
    hook = connect(simulator)
    simulator.control.set_faults([{"route": "metadata", "kind": "expire_token", "times": 2}])
    start, end = past_hour()
    with pytest.raises(RingCXAuthError, match="freshly issued token was rejected as well") as info:
        list(hook.iter_interaction_metadata(start, end))
    assert info.value.status_code == 401
    assert simulator.control.stats()["requests"]["metadata"] == {"401": 2}  # exactly one retry


def test_wrong_client_secret_is_an_auth_error_without_secrets(simulator, connect):
    hook = connect(simulator, password="wrong-client-secret-value")
    with pytest.raises(RingCXAuthError) as info:
        hook.tokens.token()
    message = str(info.value)
    assert "RingCentral JWT grant" in message
    assert "wrong-client-secret-value" not in message
    assert simulator.config.jwt not in message
    assert "exchange" not in simulator.control.stats()["requests"]


def test_wrong_jwt_is_an_auth_error(simulator, connect):
    hook = connect(simulator, jwt_token="not-the-right-jwt-assertion")
    with pytest.raises(RingCXAuthError) as info:
        hook.tokens.token()
    assert "not-the-right-jwt-assertion" not in str(info.value)


def test_permanent_api_token_mode(simulator, connect):
    hook = connect(simulator, auth_mode="token", api_token=simulator.config.api_token)
    start, end = past_hour()
    assert sum(1 for _ in hook.iter_interaction_metadata(start, end)) > 100
    stats = simulator.control.stats()["requests"]
    assert "exchange" not in stats
    assert "oauth" not in stats


def test_rejected_api_token_is_not_retried(simulator, connect):
    hook = connect(simulator, auth_mode="token", api_token="aws80:revoked-permanent-token")
    start, end = past_hour()
    with pytest.raises(RingCXAuthError, match="api_token") as info:
        list(hook.iter_interaction_metadata(start, end))
    assert "revoked-permanent-token" not in str(info.value)
    assert simulator.control.stats()["requests"]["metadata"] == {"401": 1}


def test_exchange_5xx_is_retried(simulator, connect):
    simulator.control.set_faults([{"route": "exchange", "kind": "status", "status": 503, "times": 2}])
    hook = connect(simulator, clock=OffsetClock())
    assert hook.tokens.token()
    assert simulator.control.stats()["requests"]["exchange"] == {"503": 2, "200": 1}


def test_exchanges_are_paced_by_the_token_budget(simulator, connect):
    clock = OffsetClock()
    hook = connect(simulator, clock=clock, exchange_budget="2/60")
    started = clock()
    for _ in range(3):
        hook.tokens.reauthenticate(hook.tokens.token())
    # 1 + 3 exchanges under 2/60 s: the third and fourth each waited for the window (on the fake clock)
    assert hook.tokens.exchanges == 4
    assert clock.sleeps
    assert clock() - started >= 60  # real time + waits: the waits alone can fall short by the calls' time
