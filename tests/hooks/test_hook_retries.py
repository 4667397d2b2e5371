"""Retry policy against the simulator: 429 storms (Retry-After seconds, HTTP date, none), 5xx bursts,
connection errors and timeouts; 400/403/404 never retried; typed errors, never RetryError."""

from __future__ import annotations

import pytest
from tenacity import RetryError

from airflow_provider_ringcx.exceptions import (
    RingCXBadRequestError,
    RingCXForbiddenError,
    RingCXNotFoundError,
    RingCXRateLimitedError,
    RingCXServerError,
    RingCXTransientError,
)
from airflow_provider_ringcx.hooks.client import USER_AGENT, parse_retry_after
from tests.fixtures.ports import free_port
from tests.hooks.helpers import OffsetClock, past_hour

WINDOW = past_hour()


def metadata_stats(sim) -> dict[str, int]:
    return sim.control.stats()["requests"].get("metadata", {})


def run(hook) -> int:
    return sum(1 for _ in hook.iter_interaction_metadata(*WINDOW))


def test_429_storm_with_retry_after_seconds_is_honoured(simulator, connect):
    clock = OffsetClock()
    hook = connect(simulator, clock=clock)
    hook.tokens.token()
    simulator.control.set_faults(
        [
            {
                "route": "metadata",
                "kind": "rate_limit",
                "times": 3,
                "retry_after": True,
                "retry_after_seconds": 7,
            }
        ]
    )
    assert run(hook) > 100
    assert metadata_stats(simulator) == {"429": 3, "200": 1}
    assert clock.sleeps[:3] == [7.0, 7.0, 7.0]


def test_429_with_http_date_retry_after(simulator, connect):
    clock = OffsetClock()
    hook = connect(simulator, clock=clock)
    hook.tokens.token()
    simulator.control.set_faults(
        [
            {
                "route": "metadata",
                "kind": "rate_limit",
                "times": 2,
                "retry_after": "date",
                "retry_after_seconds": 9,
            }
        ]
    )
    assert run(hook) > 100
    assert metadata_stats(simulator) == {"429": 2, "200": 1}
    assert all(7.0 <= s <= 9.5 for s in clock.sleeps[:2]), clock.sleeps  # HTTP dates have 1 s resolution


def test_429_without_retry_after_backs_off_exponentially_with_jitter(simulator, connect):
    clock = OffsetClock()
    hook = connect(
        simulator, clock=clock, retry_attempts=5, rate_limit_backoff_seconds=2, backoff_max_seconds=100
    )
    hook.tokens.token()
    simulator.control.set_faults(
        [{"route": "metadata", "kind": "rate_limit", "times": 4, "retry_after": False}]
    )
    assert run(hook) > 100
    waits = clock.sleeps[:4]
    for n, wait in enumerate(waits):
        ceiling = 2 * 2**n
        assert ceiling / 2 <= wait <= ceiling, waits
    assert len(set(waits)) == 4


def test_429_past_the_attempt_bound_raises_rate_limited(simulator, connect):
    clock = OffsetClock()
    hook = connect(simulator, clock=clock, retry_attempts=3)
    hook.tokens.token()
    simulator.control.set_faults([{"route": "metadata", "kind": "rate_limit", "retry_after_seconds": 1}])
    with pytest.raises(RingCXRateLimitedError) as info:
        run(hook)
    assert not isinstance(info.value, RetryError)
    assert info.value.retry_after == 1
    assert info.value.retryable
    assert metadata_stats(simulator) == {"429": 3}


def test_429_past_the_total_wait_bound_stops_early(simulator, connect):
    clock = OffsetClock()
    hook = connect(simulator, clock=clock, retry_attempts=10, retry_max_wait_seconds=30)
    hook.tokens.token()
    simulator.control.set_faults([{"route": "metadata", "kind": "rate_limit", "retry_after_seconds": 100}])
    with pytest.raises(RingCXRateLimitedError) as info:
        run(hook)
    assert info.value.retry_after == 100
    assert metadata_stats(simulator) == {"429": 1}
    assert clock.sleeps == []


def test_429_penalty_is_shared_with_other_hooks(simulator, connect):
    clock = OffsetClock()
    first = connect(simulator, clock=clock)
    first.tokens.token()
    simulator.control.set_faults(
        [{"route": "metadata", "kind": "rate_limit", "times": 1, "retry_after_seconds": 12}]
    )
    run(first)  # penalised the shared budget at real time T: blocked until T + 12
    assert clock.sleeps[0] == 12
    other_clock = OffsetClock()  # real time: the other hook starts right after the 429
    second = connect(simulator, clock=other_clock, conn_id="ringcx_other")  # same host + sub-account
    second.tokens.token()
    run(second)
    assert other_clock.sleeps, "the other hook did not wait for the shared penalty"
    assert 9 <= other_clock.sleeps[0] <= 12.01


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_bursts_are_retried(simulator, connect, status):
    hook = connect(simulator, clock=OffsetClock())
    simulator.control.set_faults([{"route": "metadata", "kind": "status", "status": status, "times": 3}])
    assert run(hook) > 100
    assert metadata_stats(simulator) == {str(status): 3, "200": 1}


def test_5xx_past_the_bound_raises_server_error(simulator, connect):
    hook = connect(simulator, clock=OffsetClock(), retry_attempts=2)
    simulator.control.set_faults([{"route": "metadata", "kind": "status", "status": 500}])
    with pytest.raises(RingCXServerError, match="HTTP 500"):
        run(hook)
    assert metadata_stats(simulator) == {"500": 2}


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, RingCXBadRequestError), (403, RingCXForbiddenError), (404, RingCXNotFoundError)],
)
def test_400_403_404_are_never_retried(simulator, connect, status, error):
    hook = connect(simulator, clock=OffsetClock())
    simulator.control.set_faults([{"route": "metadata", "kind": "status", "status": status, "times": 1}])
    with pytest.raises(error) as info:
        run(hook)
    assert info.value.status_code == status
    assert metadata_stats(simulator) == {str(status): 1}


def test_vendor_validation_errors_are_reported(make_simulator, connect):
    sim = make_simulator(max_interval=600)  # an older deployment: timeInterval above 600 is invalid
    hook = connect(sim, clock=OffsetClock(), max_window_seconds=3600)
    with pytest.raises(RingCXBadRequestError, match="timeInterval") as info:
        run(hook)
    assert info.value.validation_errors
    assert info.value.validation_errors[0]["attributeName"] == "timeInterval"


def test_connection_refused_is_retried_then_transient(simulator, connect):
    clock = OffsetClock()
    hook = connect(simulator, clock=clock, api_url=f"http://127.0.0.1:{free_port()}", auth_mode="token",
                   api_token="aws80:whatever-token")  # fmt: skip
    with pytest.raises(RingCXTransientError, match="ConnectionError") as info:
        run(hook)
    assert info.value.retryable
    assert len(clock.sleeps) == 3  # 4 attempts


def test_read_timeout_is_retried(simulator, connect):
    hook = connect(simulator, clock=OffsetClock(), read_timeout=0.3)
    hook.tokens.token()
    simulator.control.set_faults(
        [{"route": "metadata", "kind": "stall", "stall_seconds": 1.5, "after_bytes": 0, "times": 1}]
    )
    assert run(hook) > 100


def test_metadata_reset_mid_body_fetches_the_window_again(simulator, connect):
    hook = connect(simulator, clock=OffsetClock())
    truth = simulator.control.ground_truth(*WINDOW, sha256=False)
    simulator.control.set_faults([{"route": "metadata", "kind": "reset", "after_bytes": 100_000, "times": 1}])
    records = list(hook.iter_interaction_metadata(*WINDOW))
    assert len(records) == len({r.key for r in records}) == len(truth)
    assert metadata_stats(simulator) == {"200": 2}


def test_user_agent_is_not_a_browser(simulator, connect):
    hook = connect(simulator)
    assert hook.http.session.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("airflow-provider-ringcx/")
    assert "Mozilla" not in USER_AGENT


def test_parse_retry_after():
    assert parse_retry_after("3") == 3
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490) == 0


# -- issue #12 item 13: Retry-After waits are announced; a deferrable caller gets RingCXWaitRequired -------


def test_retry_after_wait_is_logged_at_info_with_reason_and_end(simulator, connect, caplog):
    import logging
    import time
    from datetime import datetime

    caplog.set_level(logging.INFO, logger="airflow_provider_ringcx.hooks.client")
    hook = connect(simulator, clock=OffsetClock())
    hook.tokens.token()
    simulator.control.set_faults(
        [{"route": "metadata", "kind": "rate_limit", "times": 1, "retry_after": True,
          "retry_after_seconds": 7}]
    )  # fmt: skip
    before = time.time()
    assert run(hook) > 100
    (line,) = [r.getMessage() for r in caplog.records if "429 Retry-After from RingCX" in r.getMessage()]
    assert "retrying in 7.00 s, until " in line
    assert "interaction-metadata" in line
    until = datetime.fromisoformat(line.split(", until ")[1].split(": ")[0]).timestamp()
    assert before + 6 <= until <= time.time() + 8


def test_long_retry_after_defers_a_deferrable_caller(make_simulator, connect):
    from airflow_provider_ringcx.exceptions import RingCXWaitRequired

    # the simulator's own budget: one metadata call per 15 minutes; the client does not pace (budget off)
    sim = make_simulator(metadata_budget="1/900")
    clock = OffsetClock()
    hook = connect(sim, clock=clock, retry_max_wait_seconds=60)
    hook.metadata.budget.defer_over = 120
    assert run(hook) > 100
    start = clock()
    with pytest.raises(RingCXWaitRequired, match="429 Retry-After from RingCX") as info:
        sum(1 for _ in hook.iter_interaction_metadata(*past_hour(2)))
    wait = info.value.until.timestamp() - start
    assert 800 <= wait <= 901, wait  # deferred although over retry_max_wait_seconds: no worker sleeps it
    assert clock.sleeps == []
    # the wait is in the shared budget file: whoever runs next (the resumed task) waits for the rest
    assert hook.metadata.budget.snapshot()["blocked_until"] >= info.value.until.timestamp() - 1
