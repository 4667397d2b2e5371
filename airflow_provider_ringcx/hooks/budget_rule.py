"""The pacer's decision, live first: a pure function of the budget state, the time and the request's class.

Storage (:mod:`~airflow_provider_ringcx.hooks.budget_store`, a locked JSON file;
:mod:`~airflow_provider_ringcx.hooks.budget_redis`, a Lua script) and waiting
(:class:`~airflow_provider_ringcx.hooks.budget.RateBudget`) live elsewhere, so every backend applies the
same rule: :func:`decide` inside its own critical section, then :func:`settle` (the Lua script mirrors both).

**Live first, with a lent reserve** (issue #14 item 3). A history backfill shares the sub-account's budgets
with the live DAG, so every request has a class, :data:`LIVE` (the default) or :data:`HISTORY` (a backfill).
Each window of ``limit`` requests per ``seconds`` has a **reserve** of ``r = max(1, ceil(10 % of limit))``
slots, at most ``limit - 1`` (:func:`reserve_slots`: 1 of metadata's 2/60 s and 9/900 s, 1 of the token's
5/60 s, 12 of the downloads' 120/60 s), a **share** ``A = limit - r`` and a **slot** ``s = seconds / limit``
(:func:`slot_seconds`: 30 s of 2/60 s, 100 s of 9/900 s). With ``n(t)`` the requests in the window at ``t``
(whatever their class: the log needs no class tag):

* a ``live`` request goes when every window has a free slot (``n(now) < limit``); when it must wait
  ``delay``, it records the **live marker** ``live_waiting_until = now + delay + slack``
  (``slack = max(1 s, the budget's longest slot)``, :func:`marker_slack`), and a live admission clears it;
* a ``history`` request goes when the marker is not in the future and every window has a free slot now
  *and* will be back within its share one slot from now: ``n(now) < limit`` and ``n'(now + s) < A``, where
  ``n'(now + s)`` counts the requests already made that are still in the window at ``now + s``. So history
  fills its share ``A`` freely and **borrows** the reserve only when the slot it borrows comes back within
  one slot (for ``r = 1``: the oldest request of the window ages out within ``s``). While the marker holds,
  history retries no later than the marker, no sooner than :data:`LIVE_WAKE_SECONDS`, and no sooner than
  the windows would admit it (it need not sleep past a live admission that clears the marker);
* a 429's back-off (``blocked_until``) holds both classes alike.

Live is the same rule with ``A = limit`` and ``s = 0`` (:func:`window_terms`); the old static reserve was
``s = 0`` for history too, which capped history at ``A`` of every window (8 of metadata's 9 per 15 minutes)
even when no live request ever came.

Why history delays a live request by at most one slot - three invariants, one line of proof each:

1. *The budget holds.* Either class goes only with ``n(now) < limit`` in every window.
2. *History takes no slot a live request waits for.* A live request refused at ``t`` with ``delay`` sets the
   marker past ``t + delay`` (by ``slack``, which covers its wake-up), and history is refused while the
   marker is in the future, so the slot it wakes up for is still free unless another live request took it.
3. *A history request made at ``b`` is back within its share by ``b + s``:* it was admitted with fewer than
   ``A`` requests still in the window at ``b + s``; with itself, at most ``A`` - in every window, since every
   window had to agree.

So a live request arriving at ``t``, with ``b`` history's last admission before it, finds a free slot in
every window by ``max(t, b + s)`` (3.: at most ``A`` requests made up to ``b``; after ``b`` only live ones,
2.), i.e. within one slot (the longest of its windows: 100 s of metadata), unless live itself has made
``r`` or more requests since ``b``; then it takes the next slot that frees, which history cannot take (2.).
If it wakes after the marker lapses (a deferred task resumed late), history may have taken that slot, but
only one that is back within a slot (3.): it re-marks and waits at most one slot more. With several live
requests waiting at once, the first admission clears the marker and the others re-mark on their retry; in
between, history can take only a second slot that freed meanwhile, again back within one slot (3.).

History alone now reaches the whole budget: 9 of metadata's 9 per 15 minutes (from an empty budget 8 calls
in 210 s, the 9th at 800 s once the first is back within a slot; 240 calls in 23,900 s against the vendor's
floor of 24,000 s, :func:`history_pacing`), where the static reserve gave it 8.

A budget of one slot per window has no reserve (``limit - 1 = 0``): history would otherwise never run, so
there the classes differ only by the marker.

**State.** ``live_waiting_until`` is stored next to the log and the back-off (the file's JSON field, Redis's
``:live`` key). A state without it reads as ``0`` (no live request waiting), and older readers ignore it,
so files work in both directions; a worker not yet upgraded does not set it, and its live requests then
get invariants 1 and 3 only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from airflow_provider_ringcx.exceptions import RingCXConfigError

Priority = Literal["live", "history"]
#: The class of the live DAG's requests: any free slot (the default).
LIVE: Priority = "live"
#: The class of a backfill's requests: its share freely, the reserve only when it is back within a slot.
HISTORY: Priority = "history"
PRIORITIES: tuple[Priority, ...] = (LIVE, HISTORY)
#: The share of each window kept for live requests (at least one slot, see :func:`reserve_slots`).
HISTORY_RESERVE_FRACTION = 0.10
#: Seconds a woken live request may take to reach the budget (the least marker slack), and the least wait
#: of a history request held by the marker (so it does not spin while the live request wakes up).
LIVE_WAKE_SECONDS = 1.0


@dataclass(frozen=True)
class BudgetLimit:
    """At most ``count`` requests in any ``seconds``-long sliding window."""

    count: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds:g}"


@dataclass
class BudgetState:
    """What a backend stores per budget: request times (wall-clock seconds), the 429 back-off end, and
    until when a refused live request is expected back (the live marker; ``0``: none waits)."""

    log: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    live_waiting_until: float = 0.0


@dataclass(frozen=True)
class Decision:
    """The answer of :func:`decide`.

    :param delay: seconds until the request may go (``<= 0``: now).
    :param limit: the window that decides the wait; ``None`` when the 429 back-off or the marker does.
    :param count: requests in that window now.
    :param allowed: the share of the window this class may hold one slot from now (``limit.count`` for
        live, ``limit.count - reserve`` for history).
    :param held_for_live: a history request waits because a live request does (the marker).
    :param live_waiting_until: the marker after this request (what :func:`settle` stores).
    """

    delay: float
    limit: BudgetLimit | None = None
    count: int = 0
    allowed: int = 0
    held_for_live: bool = False
    live_waiting_until: float = 0.0

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
            "borrows a budget window's reserve only when it is back for the live DAG within one slot)"
        )
    return text  # narrowed to Priority by the membership test


def reserve_slots(limit: BudgetLimit) -> int:
    """Slots of each window of ``limit`` that history only borrows: ``max(1, ceil(10 %))``, at most
    ``count - 1`` (so history always has a share)."""
    return min(limit.count - 1, max(1, math.ceil(limit.count * HISTORY_RESERVE_FRACTION)))


def allowed_slots(limit: BudgetLimit, priority: Priority) -> int:
    """The share ``A`` of a window of ``limit`` a request of ``priority`` may leave held one slot later."""
    return limit.count if priority == LIVE else limit.count - reserve_slots(limit)


def slot_seconds(limit: BudgetLimit) -> float:
    """One slot of ``limit``: ``seconds / count`` (100 s of 9/900 s)."""
    return limit.seconds / limit.count


def lend_seconds(limit: BudgetLimit, priority: Priority) -> float:
    """How soon a borrowed reserve slot must be back: one slot for history, ``0`` for live (no lending)."""
    return slot_seconds(limit) if priority == HISTORY and reserve_slots(limit) else 0.0


def marker_slack(limits: tuple[BudgetLimit, ...]) -> float:
    """How long past its wait a refused live request holds history off: the budget's longest slot, at
    least :data:`LIVE_WAKE_SECONDS` (a woken or resumed task, e.g. a deferral, needs time to come back;
    it costs history nothing when live comes back sooner, as its admission clears the marker)."""
    return max([LIVE_WAKE_SECONDS, *(slot_seconds(limit) for limit in limits)])


def window_seconds(limit: BudgetLimit, margin: float | None) -> float:
    """The window as the pacer counts it: padded by ``margin`` (default 2 % of it, at most 0.5 s)."""
    return limit.seconds + (margin if margin is not None else min(0.5, limit.seconds * 0.02))


def window_terms(
    limit: BudgetLimit, priority: Priority, margin: float | None
) -> tuple[float, int, int, float]:
    """What :func:`decide` (and the Lua script) needs of a window: its padded seconds, its count, the share
    ``A`` and how soon that share must be back (:func:`lend_seconds`)."""
    return (
        window_seconds(limit, margin),
        limit.count,
        allowed_slots(limit, priority),
        lend_seconds(limit, priority),
    )


def decide(
    state: BudgetState,
    limits: tuple[BudgetLimit, ...],
    now: float,
    priority: Priority = LIVE,
    *,
    margin: float | None = None,
) -> Decision:
    """Whether a ``priority`` request may go at ``now``, and otherwise how long until it may (module doc).

    Pure: reads ``state``, changes nothing; :func:`settle` applies the decision.

    :param margin: extra seconds per window (see :func:`window_seconds`).
    """
    delay, which, count, allowed = state.blocked_until - now, None, 0, 0
    for limit in limits:
        seconds, slots, keep, lend = window_terms(limit, priority, margin)
        recent = sorted(t for t in state.log if t > now - seconds)
        # a free slot now (the ``slots``-th newest ages out), and the share back within ``lend`` (the
        # ``keep``-th newest ages out by then); for live both are the same test
        for k, back in ((slots, 0.0), (keep, lend)):
            if len(recent) >= k:
                at = recent[-k] + seconds - back - now
                if at > delay:
                    delay, which, count, allowed = at, limit, len(recent), keep
    marker = state.live_waiting_until if state.live_waiting_until > now else 0.0
    if priority == HISTORY:
        if marker and delay < marker - now:
            # retry by the marker, or when the windows would admit it (live's admission may clear it first)
            wait = min(marker - now, max(delay, LIVE_WAKE_SECONDS))
            return Decision(wait, which, count, allowed, True, marker)
        return Decision(delay, which, count, allowed, False, marker)
    marker = 0.0 if delay <= 0 else max(marker, now + delay + marker_slack(limits))
    return Decision(delay, which, count, allowed, False, marker)


def settle(state: BudgetState, decision: Decision, now: float) -> None:
    """Apply ``decision`` (taken at ``now``) to ``state``: record the request when admitted, store the
    marker. The store calls it in the same critical section as :func:`decide`."""
    if decision.admitted:
        state.log.append(now)
    state.live_waiting_until = decision.live_waiting_until


def history_pacing(limits: tuple[BudgetLimit, ...], calls: int) -> float:
    """The least time ``calls`` history requests take alone from an empty budget (a greedy run of
    :func:`decide` on a fake clock, unpadded): 2/60 s and 9/900 s admit 8 in 210 s, the 9th at 800 s."""
    state, now = BudgetState(), 0.0
    horizon = max((limit.seconds for limit in limits), default=0.0)
    for _ in range(calls):
        while (decision := decide(state, limits, now, HISTORY, margin=0.0)).delay > 0:
            now += decision.delay
        state.log = [t for t in state.log if t > now - horizon] + [now]
    return now
