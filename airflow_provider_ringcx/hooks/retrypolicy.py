"""The retry policy of one logical request, as an object (issue #13 item 5).

:meth:`HttpClient.send <airflow_provider_ringcx.hooks.client.HttpClient.send>` used to build its tenacity
``Retrying`` from three closures over the settings, the budget and the request's name; the policy could only
be tested through a whole request. :class:`RetryPolicy` holds the same decisions, each in one method, with
the clock, the sleep and the jitter injectable, so that a test can drive it with hand-made
``RetryCallState`` objects and no server:

* **what is retried** (:func:`is_retried`): 429, 500, 502, 503, 504 and transport errors (no status:
  connection refused, reset, read timeout); never 400/401/403/404, and never an error of the token source
  raised inside an attempt (its own request was retried already, see :data:`TOKEN_SOURCE_ERROR`);
* **how long to wait** (:meth:`RetryPolicy.wait`): a 429's ``Retry-After`` as given; else exponential
  backoff from ``backoff_initial_seconds`` (at least ``rate_limit_backoff_seconds`` for a 429 without
  ``Retry-After``), doubled per attempt and capped by ``backoff_max_seconds``, with "equal jitter" (half
  fixed, half random). A 429's wait is written into the request's shared budget
  (:meth:`~airflow_provider_ringcx.hooks.budget.RateBudget.penalize`) so other processes back off too;
* **when to stop** (:meth:`RetryPolicy.stop`): after ``retry_attempts`` attempts, or when the total wait
  would pass ``retry_max_wait_seconds``; a wait longer than the budget's ``defer_over`` does not count
  against that total, because it is not slept in the worker (the caller defers);
* **before each wait** (:meth:`RetryPolicy.before_sleep`): a deferrable caller gets
  :class:`~airflow_provider_ringcx.exceptions.RingCXWaitRequired` for a wait over ``defer_over``; every
  other wait is logged with its reason and its end time in UTC (issue #12 item 13).

The last real error is re-raised (``reraise=True``), never tenacity's ``RetryError``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tenacity import RetryCallState, Retrying, retry_if_exception

from airflow_provider_ringcx.exceptions import RingCXRateLimitedError, RingCXTransientError
from airflow_provider_ringcx.hooks.budget import RateBudget, check_defer, wait_end
from airflow_provider_ringcx.hooks.settings import RingCXSettings

log = logging.getLogger("airflow_provider_ringcx.hooks.client")  # the logger these lines always had

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Set on an error of the token source raised inside an attempt: it was retried by its own request already.
TOKEN_SOURCE_ERROR = "_ringcx_token_source_error"


def is_retried(exc: BaseException) -> bool:
    """Whether an attempt that raised ``exc`` is tried again (module doc)."""
    if not isinstance(exc, RingCXTransientError) or getattr(exc, TOKEN_SOURCE_ERROR, False):
        return False
    return exc.status_code is None or exc.status_code in RETRY_STATUSES


def _error(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome else None


@dataclass(frozen=True)
class RetryPolicy:
    """How one logical request is retried: builds the tenacity ``Retrying`` (see the module doc).

    :param settings: ``retry_attempts``, ``retry_max_wait_seconds`` and the backoff knobs.
    :param what: how log lines name the request, e.g. ``"POST /restapi/oauth/token"``.
    :param budget: the request's shared budget: a 429's wait is recorded in it and its ``defer_over``
        makes long waits defer instead of sleeping; ``None`` for none.
    :param sleep: how waits are slept (injectable for tests).
    :param jitter: ``uniform(low, high)`` of the backoff's random half (injectable for tests).
    :param clock: wall-clock seconds, for the end times in the log lines.
    """

    settings: RingCXSettings
    what: str
    budget: RateBudget | None = None
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    jitter: Callable[[float, float], float] = field(default=random.uniform, compare=False)
    clock: Callable[[], float] = field(default=time.time, compare=False)

    def wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt; a 429's wait is recorded in the budget."""
        exc, settings = _error(state), self.settings
        limited = isinstance(exc, RingCXRateLimitedError)
        if isinstance(exc, RingCXRateLimitedError) and exc.retry_after is not None:
            delay = exc.retry_after
        else:
            base = settings.backoff_initial_seconds
            if limited:
                base = max(base, settings.rate_limit_backoff_seconds)
            ceiling = min(max(settings.backoff_max_seconds, base), base * 2 ** (state.attempt_number - 1))
            delay = ceiling / 2 + self.jitter(0, ceiling / 2)
        if limited and self.budget is not None:
            self.budget.penalize(delay)
        return delay

    def stop(self, state: RetryCallState) -> bool:
        """Whether to give up (and re-raise the last error) instead of waiting ``state.upcoming_sleep``."""
        settings, upcoming = self.settings, state.upcoming_sleep or 0.0
        exhausted = state.attempt_number >= settings.retry_attempts
        defer_over = self.budget.defer_over if self.budget is not None else None
        if defer_over is not None and upcoming > defer_over:
            return exhausted  # a deferrable caller does not sleep this wait in a worker: before_sleep defers
        return exhausted or state.idle_for + upcoming > settings.retry_max_wait_seconds

    def reason(self, exc: BaseException | None) -> str:
        """Why the request waits, for the log line and ``RingCXWaitRequired``."""
        if isinstance(exc, RingCXRateLimitedError):
            source = "Retry-After" if exc.retry_after is not None else "no Retry-After, backoff"
            return f"429 {source} from RingCX ({self.what})"
        return f"backoff after {type(exc).__name__} ({self.what})"

    def before_sleep(self, state: RetryCallState) -> None:
        """Defer a long wait of a deferrable caller; log every other wait with its reason and end time.

        :raises RingCXWaitRequired: the wait is longer than the budget's ``defer_over``.
        """
        exc, delay = _error(state), state.upcoming_sleep or 0.0
        reason = self.reason(exc)
        if self.budget is not None:
            check_defer(delay, reason, self.budget.defer_over, now=self.clock())
        log.warning(
            "%s (attempt %d of %d); retrying in %.2f s, until %s: %s",
            exc,
            state.attempt_number,
            self.settings.retry_attempts,
            delay,
            wait_end(delay, self.clock()).isoformat(timespec="seconds"),
            reason,
        )

    def retrying(self) -> Retrying:
        """A fresh tenacity ``Retrying`` for one logical request."""
        return Retrying(
            retry=retry_if_exception(is_retried),
            wait=self.wait,
            stop=self.stop,
            sleep=self.sleep,
            before_sleep=self.before_sleep,
            reraise=True,
        )
