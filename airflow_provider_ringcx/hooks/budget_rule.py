"""The pacer's decision, live first: a pure function of the budget state, the time and the request's class.

Storage (:mod:`~airflow_provider_ringcx.hooks.budget_store`, a locked JSON file; later Redis) and waiting
(:class:`~airflow_provider_ringcx.hooks.budget.RateBudget`) live elsewhere, so every backend applies the
same rule by calling :func:`decide` inside its own critical section.

**Live first** (issue #14 item 3). A history backfill shares the sub-account's budgets with the live DAG,
so every request has a class, :data:`LIVE` (the default) or :data:`HISTORY` (a backfill):

* a ``live`` request is admitted when every window of the budget has a free slot
  (``requests in the window < limit``), as before;
* a ``history`` request is admitted only when every window keeps its **reserve** free after it
  (``requests in the window < limit - reserve``), with ``reserve = max(1, ceil(10 % of limit))``, at most
  ``limit - 1`` (:func:`reserve_slots`): 1 slot of metadata's 2/60 s and 9/900 s, 1 of the token's 5/60 s,
  12 of the downloads' 120/60 s;
* a 429's back-off (``blocked_until``) holds both classes alike.

The requests in a window are counted whatever their class, so the log needs no class tag and the state file
is the one older versions read and write (both directions: a worker not yet upgraded still paces correctly).

Why this bounds live's delay by one slot - two invariants, one line of proof each:

1. *History never takes a slot a live request waits for.* Live waits only while some window is full
   (``count >= limit``); then ``count >= limit - reserve`` too, so history is refused. When the slot
   live waits for frees, live finds it free: every history request admitted meanwhile left at least
   ``reserve >= 1`` slots free.
2. *History never holds more than ``limit - reserve`` slots of any window.* The newest history request in a
   window was admitted with at most ``limit - reserve - 1`` requests in the window before it, and every
   older history request in that window is one of them.

So a live request goes at once while live itself has made fewer than ``reserve`` requests in each window
(2.), and otherwise it takes the next slot that frees, which history cannot take (1.): history delays it
by at most that one slot, never by requests history makes while live waits. The live DAG makes one call
per window (plus its rescan), so its window's call finds the reserve. History still gets
``limit - reserve`` slots of every window: 8 of metadata's 9 per 15 minutes.

A budget of one slot per window has no reserve (``limit - 1 = 0``): history would otherwise never run, so
there rule 1 holds but rule 2 does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from airflow_provider_ringcx.exceptions import RingCXConfigError

Priority = Literal["live", "history"]
#: The class of the live DAG's requests: any free slot (the default).
LIVE: Priority = "live"
#: The class of a backfill's requests: only while every window keeps its reserve free.
HISTORY: Priority = "history"
PRIORITIES: tuple[Priority, ...] = (LIVE, HISTORY)
#: The share of each window kept free for live requests (at least one slot, see :func:`reserve_slots`).
HISTORY_RESERVE_FRACTION = 0.10


@dataclass(frozen=True)
class BudgetLimit:
    """At most ``count`` requests in any ``seconds``-long sliding window."""

    count: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds:g}"


@dataclass
class BudgetState:
    """What a backend stores per budget: request times (wall-clock seconds) and the 429 back-off end."""

    log: list[float] = field(default_factory=list)
    blocked_until: float = 0.0


@dataclass(frozen=True)
class Decision:
    """The answer of :func:`decide`.

    :param delay: seconds until the request may go (``<= 0``: now).
    :param limit: the window that decides the wait; ``None`` when the 429 back-off does (or no wait).
    :param count: requests in that window now.
    :param allowed: how many requests of the window this class may fill (``limit.count`` for live,
        ``limit.count - reserve`` for history).
    """

    delay: float
    limit: BudgetLimit | None = None
    count: int = 0
    allowed: int = 0

    @property
    def admitted(self) -> bool:
        """The request may go now."""
        return self.delay <= 0


def check_priority(value: object, *, param: str = "budget_priority") -> Priority:
    """``value`` as a :data:`Priority`.

    :raises RingCXConfigError: it is neither ``"live"`` nor ``"history"``.
    """
    text = str(value).strip().lower() if value is not None else LIVE
    if text not in PRIORITIES:
        raise RingCXConfigError(
            f"{param}={value!r}: use 'live' (the live DAG, the default) or 'history' (a backfill, which "
            "leaves each budget window's reserve to the live DAG)"
        )
    return text  # narrowed to Priority by the membership test


def reserve_slots(limit: BudgetLimit) -> int:
    """Slots of each window of ``limit`` that history leaves free: ``max(1, ceil(10 %))``, at most
    ``count - 1`` (so history always has a slot)."""
    return min(limit.count - 1, max(1, math.ceil(limit.count * HISTORY_RESERVE_FRACTION)))


def allowed_slots(limit: BudgetLimit, priority: Priority) -> int:
    """How many requests of a window of ``limit`` a request of ``priority`` may find and still go."""
    return limit.count if priority == LIVE else limit.count - reserve_slots(limit)


def window_seconds(limit: BudgetLimit, margin: float | None) -> float:
    """The window as the pacer counts it: padded by ``margin`` (default 2 % of it, at most 0.5 s)."""
    return limit.seconds + (margin if margin is not None else min(0.5, limit.seconds * 0.02))


def decide(
    state: BudgetState,
    limits: tuple[BudgetLimit, ...],
    now: float,
    priority: Priority = LIVE,
    *,
    margin: float | None = None,
) -> Decision:
    """Whether a ``priority`` request may go at ``now``, and otherwise how long until it may (module doc).

    Pure: reads ``state``, changes nothing. The caller records ``now`` in ``state.log`` when admitted.

    :param margin: extra seconds per window (see :func:`window_seconds`).
    """
    decision = Decision(delay=state.blocked_until - now)
    for limit in limits:
        seconds = window_seconds(limit, margin)
        allowed = allowed_slots(limit, priority)
        recent = sorted(t for t in state.log if t > now - seconds)
        if len(recent) >= allowed:
            # free when the oldest request that keeps the window at ``allowed`` ages out
            free_at = recent[-allowed] + seconds - now
            if free_at > decision.delay:
                decision = Decision(free_at, limit, len(recent), allowed)
    return decision
