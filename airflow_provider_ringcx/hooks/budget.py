"""Client-side request budgets shared by every process on the host.

RingCX limits interaction-metadata to a few calls per minute *and* per quarter hour per sub-account, the
token exchange to 5 per minute and downloads to 120 per minute. Several Airflow tasks may call the API at
once (mapped tasks, parallel DAG runs under the LocalExecutor), each in its own process, so a per-process
limiter is not enough: :class:`RateBudget` keeps one sliding-window log of request times per
(API host, sub-account, endpoint) in a small JSON file, read and written under an exclusive ``fcntl.flock``.
``acquire()`` records a request only when every window of the budget has a free slot, and otherwise sleeps
until the oldest request of the full window ages out. ``penalize(seconds)`` records a 429's ``Retry-After``
in the same file, so every process backs off, not only the one that was throttled.

Live first (issue #14 item 3): each budget has a class, ``priority="live"`` (the default) or ``"history"``
(a backfill, :class:`~airflow_provider_ringcx.hooks.ringcx.RingCXHook`'s ``budget_priority``). History
borrows a window's reserve (at least one slot, 10 % of a large window) only when the slot comes back within
one slot interval, and a refused live request marks the budget so that history takes no slot it waits for:
history never delays the live DAG by more than one slot, and alone it uses the whole budget. The rule and
its proof are in :mod:`~airflow_provider_ringcx.hooks.budget_rule` (a pure function, shared by every
storage backend); the file is :mod:`~airflow_provider_ringcx.hooks.budget_store`.

No wait is silent (issue #12 item 13): :func:`announce_wait` logs every wait over :data:`LOG_WAIT_SECONDS`
at INFO with its reason (which budget is full, or whose ``Retry-After``), its length and its end time in UTC.
A caller that would rather release its worker than sleep sets ``defer_over`` (the metadata operator does,
:data:`DEFER_WAIT_SECONDS` by default): a longer wait then raises
:class:`~airflow_provider_ringcx.exceptions.RingCXWaitRequired` with its end time instead, and the caller
defers until then. Nothing is recorded for a deferred request, and the state lives in the file, so the
resumed task simply acquires again. A deferral throws away what the task fetched so far, so the caller may
stop deferring once a request has succeeded: :meth:`RateBudget.succeeded` calls its ``on_success``
(the metadata operator's rule, see :mod:`~airflow_provider_ringcx.operators.metadata`).

The files live in one directory that every Airflow process of a host (CLI, API server, scheduler, triggerer,
workers) must agree on, so :func:`default_budget_dir` resolves it in one place, in this order:

1. the Airflow option ``[ringcx] budget_dir`` (``airflow.cfg``, or ``AIRFLOW__RINGCX__BUDGET_DIR``), declared
   with the provider's other settings in :mod:`~airflow_provider_ringcx.provider_info`;
2. the deprecated environment variable ``RINGCX_BUDGET_DIR`` (read before the option existed; a warning is
   logged once per process);
3. ``<tempdir>/airflow-provider-ringcx-budgets``.

Workers on different hosts do not share the directory. For them, ``[ringcx] budget_backend = redis`` (with
``budget_redis_url`` or ``budget_redis_conn_id``) keeps every budget in Redis instead, with the same rule and
the same shared 429 back-off (:mod:`~airflow_provider_ringcx.hooks.budget_redis`); :func:`make_store`
chooses the backend. ``file`` stays the default: one host needs no server.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXRateLimitedError, RingCXWaitRequired
from airflow_provider_ringcx.hooks.budget_rule import (
    LIVE,
    BudgetLimit,
    Decision,
    Priority,
    check_priority,
    history_pacing,
    reserve_slots,
    slot_seconds,
    window_seconds,
)
from airflow_provider_ringcx.hooks.budget_store import BudgetStore, FileBudgetStore

__all__ = ["BudgetLimit", "RateBudget", "default_budget_dir", "format_budget", "parse_budget"]

log = logging.getLogger(__name__)

#: The Airflow config section of this provider, and its budget directory option (:func:`default_budget_dir`).
CONFIG_SECTION = "ringcx"
BUDGET_DIR_OPTION = "budget_dir"
#: ``[ringcx] budget_backend``: where the budgets live, one of :data:`BACKENDS` (:func:`make_store`).
BUDGET_BACKEND_OPTION = "budget_backend"
BACKENDS = ("file", "redis")
#: ``[ringcx] budget_redis_url`` / ``budget_redis_conn_id``: the Redis of ``budget_backend = redis``.
BUDGET_REDIS_URL_OPTION = "budget_redis_url"
BUDGET_REDIS_CONN_OPTION = "budget_redis_conn_id"
#: Deprecated: the environment variable that named the budget directory before ``[ringcx] budget_dir``.
BUDGET_DIR_ENV = "RINGCX_BUDGET_DIR"
_BUDGET_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*$")
#: Waits longer than this are logged at INFO (with reason and end time); shorter ones at DEBUG.
LOG_WAIT_SECONDS = 5.0
#: Default threshold over which a deferrable caller defers instead of sleeping (about 2 minutes).
DEFER_WAIT_SECONDS = 120.0


def wait_end(seconds: float, now: float | None = None) -> datetime:
    """The aware UTC moment a wait of ``seconds`` starting at ``now`` (default: the wall clock) ends."""
    return datetime.fromtimestamp((time.time() if now is None else now) + seconds, timezone.utc)


def announce_wait(
    seconds: float, reason: str, *, now: float | None = None, logger: logging.Logger | None = None
) -> None:
    """Log a wait: at INFO when it is longer than :data:`LOG_WAIT_SECONDS`, else at DEBUG.

    :param seconds: how long the wait is.
    :param reason: what is waited for, e.g. ``"metadata 9/900s budget full"``.
    :param now: when the wait starts (wall-clock seconds; default now).
    """
    level = logging.INFO if seconds > LOG_WAIT_SECONDS else logging.DEBUG
    until = wait_end(seconds, now).isoformat(timespec="seconds")
    (logger or log).log(level, "waiting %.1f s, until %s: %s", seconds, until, reason)


def check_defer(seconds: float, reason: str, defer_over: float | None, *, now: float | None = None) -> None:
    """Raise :class:`RingCXWaitRequired` when deferral is on (``defer_over``) and the wait is longer.

    :raises RingCXWaitRequired: ``seconds > defer_over``.
    """
    if defer_over is None or seconds <= defer_over:
        return
    until = wait_end(seconds, now)
    raise RingCXWaitRequired(
        f"{reason}: the next request may go at {until.isoformat(timespec='seconds')} ({seconds:.0f} s from "
        f"now, more than the {defer_over:g} s a deferrable task sleeps); the task defers until then - "
        "outside a deferrable operator, retry after that time",
        until=until,
        reason=reason,
    )


def parse_budget(text: str, *, field: str = "budget") -> tuple[BudgetLimit, ...]:
    """Parse ``"COUNT/SECONDS[,COUNT/SECONDS...]"``; ``"off"`` gives no limit (empty tuple).

    :param text: the budget string, e.g. ``"2/60,9/900"``.
    :param field: the connection field name, quoted in the error.
    :raises RingCXConfigError: the string is malformed or a count/period is not positive.
    """
    if text.strip().lower() in ("off", "none", "unlimited"):
        return ()
    limits = []
    for part in text.split(","):
        match = _BUDGET_RE.match(part)
        if not match:
            raise RingCXConfigError(
                f"connection extra {field}={text!r} is not a budget: write COUNT/SECONDS pairs separated "
                "by commas (e.g. '2/60,9/900'), or 'off' to disable client-side pacing"
            )
        count, seconds = int(match.group(1)), float(match.group(2))
        if count < 1 or seconds <= 0:
            raise RingCXConfigError(
                f"connection extra {field}={text!r}: each COUNT and SECONDS must be positive "
                f"(got {part.strip()!r})"
            )
        limits.append(BudgetLimit(count, seconds))
    return tuple(limits)


def pacing_seconds(limits: tuple[BudgetLimit, ...], calls: int, priority: Priority = LIVE) -> float:
    """The least time ``calls`` requests of ``priority`` take under ``limits``, from an empty budget.

    Live: each window admits ``count`` requests, so the last one goes ``(calls - 1) // count`` whole
    windows after the first; the slowest limit decides. History borrows the reserve only when it is back
    within a slot, so its pace is simulated
    (:func:`~airflow_provider_ringcx.hooks.budget_rule.history_pacing`).
    """
    if calls <= 1:
        return 0.0
    if priority != LIVE:
        return history_pacing(limits, calls)
    return max((((calls - 1) // limit.count) * limit.seconds for limit in limits), default=0.0)


def format_budget(limits: tuple[BudgetLimit, ...]) -> str:
    """Inverse of :func:`parse_budget`."""
    return ",".join(str(limit) for limit in limits) or "off"


def _airflow_option(section: str, key: str) -> str | None:
    """An Airflow config option (``airflow.cfg`` or ``AIRFLOW__SECTION__KEY``), ``None`` when unset or empty.

    The Task SDK's parser is the one task code should read (``airflow.sdk.configuration``); the core parser is
    the fallback for an Airflow without it. Both read the same file and environment.
    """
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - an Airflow 3 whose Task SDK has no parser of its own
        from airflow.configuration import conf
    value = conf.get(section, key, fallback=None)
    return (value.strip() or None) if isinstance(value, str) else None


@functools.cache
def _warn_legacy_env(value: str, option: str | None) -> None:
    """Log once per process (and value) that ``RINGCX_BUDGET_DIR`` is deprecated, or ignored."""
    env_form = f"AIRFLOW__{CONFIG_SECTION.upper()}__{BUDGET_DIR_OPTION.upper()}"
    if option is None:
        log.warning(
            "%s=%s is deprecated: set [%s] %s in airflow.cfg or %s instead (every Airflow process of the "
            "host must see the same value)",
            BUDGET_DIR_ENV,
            value,
            CONFIG_SECTION,
            BUDGET_DIR_OPTION,
            env_form,
        )
    elif Path(option) != Path(value):
        log.warning(
            "%s=%s is ignored: [%s] %s (or %s) is set to %s and wins; unset %s",
            BUDGET_DIR_ENV,
            value,
            CONFIG_SECTION,
            BUDGET_DIR_OPTION,
            env_form,
            option,
            BUDGET_DIR_ENV,
        )


def default_budget_dir() -> Path:
    """The shared budget directory: ``[ringcx] budget_dir``, else ``$RINGCX_BUDGET_DIR`` (deprecated), else a
    temp dir (the order is explained in the module docstring).

    Read on every call (it is a few dictionary lookups), so a test or a process that changes the
    environment sees the new value.
    """
    option = _airflow_option(CONFIG_SECTION, BUDGET_DIR_OPTION)
    legacy = os.environ.get(BUDGET_DIR_ENV, "").strip() or None
    if legacy is not None:
        _warn_legacy_env(legacy, option)
    configured = option or legacy
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "airflow-provider-ringcx-budgets"


def budget_backend() -> str:
    """``[ringcx] budget_backend``: ``"file"`` (the default) or ``"redis"``.

    :raises RingCXConfigError: another value.
    """
    value = (_airflow_option(CONFIG_SECTION, BUDGET_BACKEND_OPTION) or "file").lower()
    if value not in BACKENDS:
        raise RingCXConfigError(
            f"[{CONFIG_SECTION}] {BUDGET_BACKEND_OPTION} = {value!r}: use 'file' (one host: a locked file "
            f"per budget in [{CONFIG_SECTION}] {BUDGET_DIR_OPTION}) or 'redis' (every host shares the "
            f"budgets; set [{CONFIG_SECTION}] {BUDGET_REDIS_URL_OPTION} or {BUDGET_REDIS_CONN_OPTION})"
        )
    return value


def make_store(name: str, state_dir: Path, *, horizon: float, clock: Callable[[], float]) -> BudgetStore:
    """The store of budget ``name`` in the configured backend (:func:`budget_backend`), read on every call.

    :raises RingCXConfigError: the backend is unknown, or ``redis`` without a usable URL or connection.
    """
    if budget_backend() == "redis":
        from airflow_provider_ringcx.hooks.budget_redis import RedisBudgetStore, configured_redis_url

        return RedisBudgetStore(name, configured_redis_url(), horizon=horizon, clock=clock)
    return FileBudgetStore(name, state_dir, horizon=horizon, clock=clock)


class RateBudget:
    """A sliding-window request budget shared through a locked state file, or Redis (:func:`make_store`).

    :param name: the key of the budget, e.g. ``"ringcx.ringcentral.com|99999999|metadata"``.
    :param limits: the windows; an empty tuple means unlimited (a 429 penalty still applies).
    :param state_dir: where the state files live (default :func:`default_budget_dir`).
    :param clock: wall-clock seconds (shared across processes, so ``time.time`` not ``monotonic``).
    :param sleep: how to wait (injectable for tests).
    :param margin: extra seconds added to every window (default 2 % of it, at most 0.5 s), so that network
        jitter between acquiring a slot and the request reaching the server cannot squeeze two windows.
    :param defer_over: a wait longer than this raises :class:`RingCXWaitRequired` instead of sleeping
        (``None``: always sleep). The attribute may be set later by the caller.
    :param priority: ``"live"`` (default) or ``"history"``: a history request borrows a window's reserve
        only when it is back for live ones within a slot (:mod:`~airflow_provider_ringcx.hooks.budget_rule`).
    :param store: where the state lives (default: the configured backend, :func:`make_store`). The token
        cache stays in ``state_dir`` with either backend.

    ``on_success`` (attribute, default ``None``): called by :meth:`succeeded` when a request this budget
    admitted was answered 2xx.
    """

    def __init__(
        self,
        name: str,
        limits: tuple[BudgetLimit, ...],
        state_dir: str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        margin: float | None = None,
        defer_over: float | None = None,
        priority: Priority = LIVE,
        store: BudgetStore | None = None,
    ) -> None:
        self.name = name
        self.margin = margin
        self.defer_over = defer_over
        self.priority = check_priority(priority, param="priority")
        self.on_success: Callable[[], None] | None = None
        self.last_acquired: float | None = None
        self.limits = tuple(limits)
        self.state_dir = Path(state_dir) if state_dir is not None else default_budget_dir()
        self._sleep = sleep
        self.store = store or make_store(name, self.state_dir, horizon=self.horizon, clock=clock)
        #: the state file (``None`` with another backend)
        self.path = self.store.path if isinstance(self.store, FileBudgetStore) else None

    def __repr__(self) -> str:
        extra = "" if self.priority == LIVE else f", priority={self.priority!r}"
        return f"RateBudget({self.name!r}, {format_budget(self.limits)!r}{extra})"

    @property
    def horizon(self) -> float:
        """The longest window: older entries are irrelevant and pruned."""
        return max((window_seconds(limit, self.margin) for limit in self.limits), default=0.0)

    def acquire(self, max_wait: float | None = None) -> float:
        """Block until every window has a free slot (for this budget's class), then record one request.

        :param max_wait: give up when the wait would exceed this many seconds in total.
        :return: the seconds spent waiting.
        :raises RingCXRateLimitedError: ``max_wait`` would be exceeded.
        :raises RingCXWaitRequired: ``defer_over`` is set and the wait is longer (nothing is recorded).
        """
        waited = 0.0
        while True:
            decision, now = self.store.try_acquire(self.limits, self.priority, margin=self.margin)
            if decision.admitted:
                self.last_acquired = now
                return waited
            delay, reason = decision.delay, self._reason(decision)
            if max_wait is not None and waited + delay > max_wait:
                raise RingCXRateLimitedError(
                    f"client-side budget {self.name} ({format_budget(self.limits)}) has no free slot for "
                    f"{delay:.1f} s, more than the allowed wait; retry later",
                    status_code=None,
                    retry_after=delay,
                )
            check_defer(delay, reason, self.defer_over, now=now)
            announce_wait(delay, reason, now=now)
            self._sleep(delay)
            waited += delay

    def succeeded(self) -> None:
        """A request this budget admitted was answered 2xx: call ``on_success`` (if set)."""
        if self.on_success is not None:
            self.on_success()

    def penalize(self, seconds: float) -> None:
        """Block every process using this budget, of either class, for ``seconds`` (a 429's
        ``Retry-After``)."""
        if seconds <= 0:
            return
        self.store.penalize(seconds)
        log.info("budget %s: vendor asked to back off %.1f s; all processes will wait", self.name, seconds)

    def reset(self) -> None:
        """Forget every recorded request and penalty (tests and operators' manual reset)."""
        self.store.reset()

    def snapshot(self) -> dict[str, Any]:
        """A copy of the current state (request times and penalty), for tests and diagnostics."""
        state = self.store.snapshot()
        return {
            "log": list(state.log),
            "blocked_until": state.blocked_until,
            "live_waiting_until": state.live_waiting_until,
        }

    @property
    def endpoint(self) -> str:
        """The last part of the key (``metadata``, ``download``, ``exchange``), for messages."""
        return self.name.rsplit("|", 1)[-1]

    def _reason(self, decision: Decision) -> str:
        """Why ``decision`` waits: which window is full (for history: at its share), or the 429 back-off."""
        limit = decision.limit
        if decision.held_for_live:
            until = wait_end(0, decision.live_waiting_until).isoformat(timespec="seconds")
            return (
                f"{self.endpoint} budget held for a live request that waits for a slot (at most until "
                f"{until}; history takes no slot a live request waits for, {self.name})"
            )
        if limit is None:
            return f"{self.endpoint} budget blocked: RingCX answered 429 with Retry-After ({self.name})"
        recent = f"{decision.count} requests in the last {limit.seconds:g} s"
        if decision.allowed < limit.count:
            return (
                f"{self.endpoint} {limit.count}/{limit.seconds:g}s budget at the history share ({recent}; "
                f"history borrows the last {reserve_slots(limit)} slot(s) only when they are back for live "
                f"requests within {slot_seconds(limit):g} s, {self.name})"
            )
        return f"{self.endpoint} {limit.count}/{limit.seconds:g}s budget full ({recent}, {self.name})"
