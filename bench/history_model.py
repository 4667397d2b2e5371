"""The arithmetic of the history bench (``bench.history``): calls, the vendor's floor, the projection.

Pure functions, so the figures the bench prints are unit-tested (``tests/bench/test_history_model.py``)
without starting Airflow. All durations are simulated seconds (the simulator's budget clock) unless named
``real``.

Why project from the pace between days, not from the run's total: a short run starts with the budget's
windows empty, so its first day is cheaper than any later one, while its start-up and its last day's
downloads and report are paid once per backfill, not per day. So the projection is
``fixed + days x per_day``, with ``per_day`` the median time between consecutive days' metadata fetches
finishing (the steady state) and ``fixed`` what the run took beyond ``days x per_day``.
"""

from __future__ import annotations

import itertools
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

DAY = 86400.0
MAX_WINDOW = 10800  # seconds: the vendor's largest timeInterval (connection extra max_window_seconds)
META_BUDGET = ((2, 60.0), (9, 900.0))  # the vendor's metadata budget
LONG_WINDOW = META_BUDGET[-1]  # what sets the long-run pace: 9 calls per 900 s
PROJECTED_DAYS = 30
WITHIN = 1.2  # the projection must be within this factor of the floor
#: The hook's budget windows are this many real seconds longer than the simulator's (scheduling jitter
#: between a slot and its request reaching the server; at time_scale 15 it is 4.5 simulated seconds).
PAD_REAL = 0.3
#: The hook's INFO line for a budget wait (``hooks.budget.announce_wait``; waits over 5 s are logged).
WAIT_LINE = re.compile(r"waiting ([0-9.]+) s, until")


def calls_for(range_seconds: float, window_seconds: float = MAX_WINDOW) -> int:
    """Metadata calls a range needs: ``ceil(range / window)``."""
    return math.ceil(range_seconds / window_seconds)


def floor_seconds(
    days: float, window_seconds: float = MAX_WINDOW, budget: tuple[int, float] = LONG_WINDOW
) -> float:
    """The vendor's floor for ``days`` of history: its calls at the budget's long-run pace (9 per 900 s).
    30 days: 240 calls, 24,000 s (6.7 h)."""
    count, seconds = budget
    return calls_for(days * DAY, window_seconds) * seconds / count


def shared_floor_seconds(
    days: float,
    live_calls_per_window: float,
    window_seconds: float = MAX_WINDOW,
    budget: tuple[int, float] = LONG_WINDOW,
) -> float:
    """The floor for ``days`` of history while the live DAG shares the sub-account's budget: history's calls
    at what the budget leaves over, ``count - live calls per budget window`` per window (live first takes
    its calls whatever history does). The live DAG's one call per 15-minute window leaves 8 of 9 per 900 s:
    30 days take 240 calls in 27,000 s (7.5 h).

    :raises ValueError: live alone uses the whole budget.
    """
    count, seconds = budget
    left = count - live_calls_per_window
    if left <= 0:
        raise ValueError(f"live makes {live_calls_per_window:g} calls per {seconds:g} s: none is left over")
    return calls_for(days * DAY, window_seconds) * seconds / left


def slot_seconds(budget: tuple[int, float] = LONG_WINDOW) -> float:
    """One budget slot of the long metadata window: 900 s / 9 = 100 seconds."""
    count, seconds = budget
    return seconds / count


@dataclass(frozen=True)
class Projection:
    """A measured backfill and what it projects to.

    :param days: days of history the run archived.
    :param total: the run, backfill created to last run finished.
    :param per_day: the steady state per day (:func:`steady_per_day`).
    """

    days: int
    total: float
    per_day: float

    @property
    def fixed(self) -> float:
        """What the run took beyond ``days x per_day`` (start-up, the last day's downloads; may be < 0)."""
        return self.total - self.days * self.per_day

    def projected(self, days: int = PROJECTED_DAYS) -> float:
        """``fixed + days x per_day``."""
        return self.fixed + days * self.per_day

    def naive(self, days: int = PROJECTED_DAYS) -> float:
        """``total / days measured x days``."""
        return self.total / self.days * days

    def ratio(self, days: int = PROJECTED_DAYS, floor: float | None = None) -> float:
        """The projection over ``floor`` (default: the vendor's floor for ``days``, history alone)."""
        return self.projected(days) / (floor if floor is not None else floor_seconds(days))


def steady_per_day(finished: Sequence[float]) -> float:
    """The median gap between consecutive days' metadata fetches finishing (in any order).

    :raises ValueError: fewer than two days.
    """
    ends = sorted(finished)
    if len(ends) < 2:
        raise ValueError("the pace between days needs at least two days")
    return float(statistics.median(b - a for a, b in itertools.pairwise(ends)))


def logged_waits(log_text: str) -> float:
    """Real seconds of budget waits a task's log announces (each over 5 s; shorter ones are not logged)."""
    return sum(float(match.group(1)) for match in WAIT_LINE.finditer(log_text))


def duration(seconds: float) -> str:
    """``45 s``, ``12.5 min``, ``6.7 h`` or ``3.4 d``."""
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min"
    if abs(seconds) < 2 * DAY:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY:.1f} d"


def scaled(limits: Sequence[tuple[int, float]], scale: float, pad: float = 0.0) -> str:
    """A budget in real seconds at ``time_scale``, each window ``pad`` real seconds longer:
    ``((2, 60), (9, 900))`` at 15 is ``"2/4,9/60"``."""
    return ",".join(f"{count}/{seconds / scale + pad:g}" for count, seconds in limits)
