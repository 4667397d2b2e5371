"""RetryPolicy on its own (issue #13 item 5): no server, a scripted attempt function, an injected clock.

The policy's only peer is tenacity, which runs for real here; the attempts raise the typed errors that
``HttpClient._attempt`` raises for those answers (the wire side is covered by test_hook_retries.py against
the simulator). The budget is a real :class:`RateBudget` on a temp directory with the same fake clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from tenacity import RetryError

from airflow_provider_ringcx.exceptions import (
    RingCXError,
    RingCXNotFoundError,
    RingCXRateLimitedError,
    RingCXServerError,
    RingCXTransientError,
    RingCXWaitRequired,
)
from airflow_provider_ringcx.hooks.budget import RateBudget
from airflow_provider_ringcx.hooks.retrypolicy import TOKEN_SOURCE_ERROR, RetryPolicy, is_retried
from airflow_provider_ringcx.hooks.settings import RingCXSettings

T0 = 1_800_000_000.0  # a fixed wall clock: 2027-01-15T08:00:00Z


class FakeClock:
    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def settings(**extra: Any) -> RingCXSettings:
    values = {
        "rc_account_id": "1",
        "sub_account_id": "2",
        "jwt_token": "not-a-real-jwt",
        "retry_attempts": 4,
        "retry_max_wait_seconds": 100,
        "backoff_initial_seconds": 1,
        "backoff_max_seconds": 10,
        "rate_limit_backoff_seconds": 5,
        **extra,
    }
    return RingCXSettings.from_values(conn_id="c", client_id="id", client_secret="s", extra=values)


def run(policy: RetryPolicy, errors: list[BaseException | None]) -> int:
    """Drive ``policy.retrying()``: attempt i raises ``errors[i]`` (``None``: succeeds); return attempts."""
    attempts = 0
    for attempt in policy.retrying():
        with attempt:
            error = errors[attempts]
            attempts += 1
            if error is not None:
                raise error
            return attempts
    raise AssertionError("unreachable")


def policy(clock: FakeClock, budget: RateBudget | None = None, **knobs: Any) -> RetryPolicy:
    high: Callable[[float, float], float] = lambda low, high: high  # noqa: E731 - the top of the jitter
    return RetryPolicy(settings(**knobs), "GET /x", budget, sleep=clock.sleep, jitter=high, clock=clock)


def limited(retry_after: float | None) -> RingCXRateLimitedError:
    return RingCXRateLimitedError("GET /x failed with HTTP 429", retry_after=retry_after)


def test_retry_after_is_waited_as_given_and_shared_through_the_budget(tmp_path: Path) -> None:
    clock = FakeClock()
    budget = RateBudget("h|2|metadata", (), tmp_path, clock=clock, sleep=clock.sleep)
    assert run(policy(clock, budget), [limited(7), limited(3), None]) == 3
    assert clock.sleeps == [7, 3]
    assert budget.snapshot()["blocked_until"] == T0 + 7 + 3  # the second penalty, from its own moment


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    clock = FakeClock()
    server = RingCXServerError("boom", status_code=503)
    assert run(policy(clock, retry_attempts=6), [server] * 5 + [None]) == 6
    assert clock.sleeps == [1, 2, 4, 8, 10]  # initial 1 s doubling, capped by backoff_max_seconds


def test_jitter_keeps_the_lower_half_fixed() -> None:
    clock = FakeClock()
    low = RetryPolicy(settings(), "GET /x", sleep=clock.sleep, jitter=lambda a, b: a, clock=clock)
    run(low, [RingCXServerError("boom", status_code=500)] * 3 + [None])
    assert clock.sleeps == [0.5, 1, 2]


def test_429_without_retry_after_backs_off_at_least_rate_limit_backoff() -> None:
    clock = FakeClock()
    run(policy(clock), [limited(None), limited(None), None])
    assert clock.sleeps == [5, 10]  # from rate_limit_backoff_seconds (5), not backoff_initial (1)


def test_stops_at_retry_attempts_with_the_last_typed_error() -> None:
    clock = FakeClock()
    errors: list[BaseException | None] = [RingCXServerError(f"boom {i}", status_code=502) for i in range(4)]
    with pytest.raises(RingCXServerError, match="boom 3") as info:
        run(policy(clock), errors)
    assert not isinstance(info.value, RetryError)
    assert len(clock.sleeps) == 3


def test_stops_when_the_total_wait_would_pass_retry_max_wait() -> None:
    clock = FakeClock()
    with pytest.raises(RingCXRateLimitedError):
        run(policy(clock, retry_max_wait_seconds=20), [limited(15), limited(15), None])
    assert clock.sleeps == [15]  # 15 + 15 > 20: no second wait


@pytest.mark.parametrize(
    "error",
    [
        RingCXNotFoundError("404", status_code=404),
        RingCXError("400", status_code=400),
        ValueError("not a RingCX error"),
    ],
)
def test_errors_that_are_never_retried(error: BaseException) -> None:
    clock = FakeClock()
    with pytest.raises(type(error)):
        run(policy(clock), [error, None])
    assert clock.sleeps == []


def test_a_token_source_error_is_not_retried_again() -> None:
    error = RingCXTransientError("token exchange failed")
    assert is_retried(error)
    setattr(error, TOKEN_SOURCE_ERROR, True)
    assert not is_retried(error)


def test_a_long_wait_of_a_deferrable_caller_raises_wait_required_at_its_end(tmp_path: Path) -> None:
    clock = FakeClock()
    budget = RateBudget("h|2|metadata", (), tmp_path, clock=clock, sleep=clock.sleep, defer_over=60)
    with pytest.raises(RingCXWaitRequired) as info:
        # 600 s is over retry_max_wait_seconds (100) too: it must defer, not give up
        run(policy(clock, budget), [limited(600), None])
    assert info.value.until == datetime.fromtimestamp(T0 + 600, timezone.utc)
    assert "429 Retry-After from RingCX (GET /x)" in info.value.reason
    assert clock.sleeps == []
    budget.defer_over = None  # a caller that sleeps: the same wait is over the total and gives up
    with pytest.raises(RingCXRateLimitedError):
        run(policy(clock, budget), [limited(600), None])


def test_each_wait_is_logged_with_reason_and_end_time(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    caplog.set_level(logging.WARNING, logger="airflow_provider_ringcx.hooks.client")
    run(policy(clock), [limited(30), None])
    (line,) = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert "attempt 1 of 4" in line
    assert "retrying in 30.00 s, until 2027-01-15T08:00:30+00:00" in line
    assert line.endswith("429 Retry-After from RingCX (GET /x)")
