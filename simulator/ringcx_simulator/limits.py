"""Per-sub-account sliding-window rate limits, measured on the simulated (scaled) clock.

A budget is a list of ``(count, seconds)`` limits (``"2/60,9/900"``); a request is admitted only if every
limit has room, and only admitted requests are logged (a 429 does not use up budget). On refusal the
caller gets the simulated seconds until the oldest blocking entry leaves its window.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from email.utils import formatdate

from ringcx_simulator.clock import SimClock
from ringcx_simulator.config import RetryAfterMode, parse_budget


class SlidingWindowLimiter:
    """One budget (possibly several limits) for one key.

    :param limits: ``[(count, window_seconds)]`` in simulated seconds; empty means unlimited.
    """

    def __init__(self, limits: list[tuple[int, float]]) -> None:
        self.limits = limits
        horizon = max((window for _, window in limits), default=0.0)
        self._horizon = horizon
        self._log: deque[float] = deque()

    def acquire(self, now: float) -> float:
        """Admit a request at simulated time ``now``; return 0.0 if admitted, else the wait in sim seconds."""
        while self._log and self._log[0] <= now - self._horizon:
            self._log.popleft()
        wait = 0.0
        for count, window in self.limits:
            inside = [t for t in self._log if t > now - window]
            if len(inside) >= count:
                wait = max(wait, inside[-count] + window - now)
        if wait > 0:
            return wait
        self._log.append(now)
        return 0.0


class Budgets:
    """All budgets of the simulator, keyed by ``(name, sub_account)``; rebuilt when their spec changes."""

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._limiters: dict[tuple[str, str], tuple[str, SlidingWindowLimiter]] = {}

    def acquire(self, name: str, key: str, spec: str) -> float:
        """Charge one request to budget ``name`` for ``key``.

        :param spec: the current budget string (``"off"`` admits everything).
        :return: 0.0 when admitted, else simulated seconds to wait.
        """
        with self._lock:
            entry = self._limiters.get((name, key))
            if entry is None or entry[0] != spec:
                entry = (spec, SlidingWindowLimiter(parse_budget(spec)))
                self._limiters[(name, key)] = entry
            return entry[1].acquire(self._clock.elapsed())

    def reset(self) -> None:
        with self._lock:
            self._limiters.clear()


def retry_after_header(wait_simulated: float, clock: SimClock, mode: RetryAfterMode) -> dict[str, str]:
    """The ``Retry-After`` header for a 429, in real seconds (at least 1), an HTTP-date, or nothing."""
    if mode == "off":
        return {}
    real = max(1, math.ceil(clock.to_real(wait_simulated)))
    if mode == "date":
        return {"Retry-After": formatdate(time.time() + real, usegmt=True)}
    return {"Retry-After": str(real)}
