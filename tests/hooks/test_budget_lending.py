"""The lent reserve and the live marker (issue #14 item 3): decision tables on :func:`decide`, the marker's
life through :class:`RateBudget` on a fake clock, and whole runs showing that history alone now fills the
whole budget while a live request arriving in a history burst waits at most one slot.

Pure: an injected clock, a budget file in ``tmp_path``; nothing sleeps. The same rule on Redis is checked by
``test_budget_redis_rule.py``, with real processes by ``test_budget_processes.py`` and against the
time-scaled simulator by ``test_budget_live_first.py``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from airflow_provider_ringcx.hooks.budget import RateBudget, parse_budget
from airflow_provider_ringcx.hooks.budget_rule import (
    HISTORY,
    LIVE,
    LIVE_WAKE_SECONDS,
    BudgetLimit,
    BudgetState,
    Priority,
    decide,
    marker_slack,
    settle,
    slot_seconds,
)
from airflow_provider_ringcx.hooks.budget_store import FileBudgetStore
from tests.hooks.test_budget import FakeClock

T0 = 1_000_000.0
META = parse_budget("2/60,9/900")


def history(log: list[float], now: float, spec: str = "9/900", marker: float = 0.0):
    return decide(
        BudgetState(log=list(log), live_waiting_until=marker), parse_budget(spec), now, HISTORY, margin=0
    )


# -- lending -----------------------------------------------------------------------------------------------


def test_history_borrows_the_last_slot_when_the_oldest_is_back_within_one_slot():
    eight = [T0 + i for i in range(8)]  # 8 of 9: history's share is full, the reserve is free
    assert history(eight, T0 + 800).admitted  # the oldest ages out at T0 + 900: within 100 s
    refused = history(eight, T0 + 799)
    assert refused.delay == pytest.approx(1)
    assert refused.limit == BudgetLimit(9, 900)
    assert (refused.count, refused.allowed) == (8, 8)
    assert not history([*eight, T0 + 800], T0 + 801).admitted  # the window is full: nothing to lend
    assert history(eight[:7], T0 + 8).admitted  # under the share: no condition


def test_a_larger_reserve_is_lent_slot_by_slot():
    """120/60 keeps 12 and lends each only when the request it stands for is back within 0.5 s."""
    log = [T0 + i * 0.5 for i in range(110)]  # 110 in the window (share 108); the oldest age out at T0 + 60
    now = T0 + 55
    assert not history(log, now, "120/60").admitted  # 110 - 108 = 3 would have to age out by 55.5
    # the 3rd oldest (T0 + 1) ages out at T0 + 61: lent from T0 + 60.5
    assert history(log, now, "120/60").delay == pytest.approx(5.5)
    assert history(log, T0 + 60.5, "120/60").admitted


def test_every_window_must_agree_to_lend():
    eight = [T0 + i * 60 for i in range(8)]
    # 9/900 would lend at T0 + 800 (the oldest is back at T0 + 900), but 2/60 holds a request of 10 s ago
    # that stays past one slot (30 s) of it: wait until T0 + 820
    got = decide(BudgetState(log=[*eight[:7], T0 + 790]), META, T0 + 800, HISTORY, margin=0)
    assert got.limit == BudgetLimit(2, 60)
    assert got.delay == pytest.approx(20)
    # and the other way round: 2/60 is empty, 9/900 cannot lend yet
    got = decide(BudgetState(log=eight), META, T0 + 700, HISTORY, margin=0)
    assert got.limit == BudgetLimit(9, 900)
    assert got.delay == pytest.approx(100)
    assert decide(BudgetState(log=eight), META, T0 + 800, HISTORY, margin=0).admitted


def test_live_is_the_same_rule_without_lending():
    full = [T0 + i for i in range(9)]
    got = decide(BudgetState(log=full), parse_budget("9/900"), T0 + 10, LIVE, margin=0)
    assert got.delay == pytest.approx(890)
    assert (got.count, got.allowed) == (9, 9)
    assert decide(BudgetState(log=full[:8]), parse_budget("9/900"), T0 + 10, LIVE, margin=0).admitted


# -- the marker --------------------------------------------------------------------------------------------


def test_the_marker_holds_history_until_live_is_back():
    assert marker_slack(META) == 100  # the longest slot
    assert marker_slack(parse_budget("120/60")) == LIVE_WAKE_SECONDS  # a 0.5 s slot: the 1 s floor
    held = history([], T0, marker=T0 + 40)
    assert held.held_for_live
    assert held.delay == pytest.approx(LIVE_WAKE_SECONDS)  # it polls, no spin
    assert history([], T0, marker=T0 + 0.3).delay == pytest.approx(0.3)  # never past the marker
    # the windows would admit it at T0 + 25 (before the marker): it retries then, not at the marker
    free_later = [T0 - 35, T0 - 5]
    assert history(free_later, T0, "2/60", marker=T0 + 40).delay == pytest.approx(25)
    assert history(free_later, T0, "2/60", marker=T0 + 40).held_for_live
    assert history([], T0, marker=T0).admitted  # a marker that has lapsed holds nothing


def test_a_refused_live_request_sets_the_marker_and_its_admission_clears_it(tmp_path: Path):
    clock = FakeClock(T0)
    seen: list[float] = []  # the marker while live sleeps

    def sleep(seconds: float) -> None:
        seen.append(backfill.snapshot()["live_waiting_until"])
        clock.sleep(seconds)

    make = lambda priority: RateBudget(  # noqa: E731
        "host|1|metadata",
        parse_budget("9/900"),
        tmp_path,
        clock=clock,
        sleep=sleep,
        margin=0,
        priority=priority,
    )
    live, backfill = make(LIVE), make(HISTORY)
    for _ in range(9):
        backfill.acquire()
    assert clock.now == T0 + 800  # 8 at once, the 9th lent once the first is back within 100 s
    assert live.acquire() == pytest.approx(100)  # the slot history lent
    assert seen[-1] == pytest.approx(T0 + 800 + 100 + 100)  # its wait plus one slot of slack
    assert live.snapshot()["live_waiting_until"] == 0.0  # cleared by live's admission
    assert backfill.acquire() == 0  # the first 8 aged out as live went: history goes on at once


def test_a_history_request_held_by_the_marker_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    clock = FakeClock(T0)
    backfill = RateBudget(
        "host|1|metadata", META, tmp_path, clock=clock, sleep=clock.sleep, margin=0, priority=HISTORY
    )
    assert isinstance(backfill.store, FileBudgetStore)
    with backfill.store.transaction() as state:
        state.live_waiting_until = T0 + 12
    assert backfill.acquire() == pytest.approx(12)  # polls every second until the marker lapses
    assert clock.sleeps == [pytest.approx(1.0)] * 12
    assert backfill.snapshot()["log"] == [T0 + 12]


# -- whole runs: history alone fills the budget; live in a burst waits at most one slot ---------------------


def greedy_run(
    limits: tuple[BudgetLimit, ...],
    until: float,
    live_arrivals: list[float],
    *,
    seed: int,
    backfills: int = 3,
) -> tuple[list[float], list[tuple[float, float]]]:
    """``backfills`` greedy history acquirers and one live acquirer arriving at ``live_arrivals``, each
    retrying at the delay :func:`decide` gives (ties broken at random); history's and live's admissions."""
    rng = random.Random(seed)
    state = BudgetState()
    next_try: dict[str, float] = {f"h{i}": T0 + rng.uniform(0, 1) for i in range(backfills)}
    arrivals = sorted(live_arrivals)
    history_times: list[float] = []
    live: list[tuple[float, float]] = []
    while True:
        if "live" not in next_try and arrivals:
            next_try["live"] = arrivals.pop(0)
            began = next_try["live"]
        now = min(next_try.values())
        if now > until:
            return history_times, live
        who = rng.choice([k for k, t in next_try.items() if t == now])
        priority: Priority = LIVE if who == "live" else HISTORY
        decision = decide(state, limits, now, priority, margin=0)
        settle(state, decision, now)
        if not decision.admitted:
            next_try[who] = now + decision.delay
        elif who == "live":
            live.append((began, now))
            del next_try["live"]
        else:
            history_times.append(now)
            next_try[who] = now


def per_window(times: list[float], seconds: float, start: float, windows: int) -> list[int]:
    return [
        sum(1 for t in times if start + k * seconds <= t < start + (k + 1) * seconds) for k in range(windows)
    ]


@pytest.mark.parametrize("seed", range(3))
def test_history_alone_fills_the_whole_budget(seed):
    """9 of metadata's 9 per 15 minutes once the first window has turned (the static reserve gave 8)."""
    times, _ = greedy_run(META, T0 + 20 * 900, [], seed=seed)
    counts = per_window(times, 900, T0 + 1800, 18)
    assert counts == [9] * 18, counts
    assert len(times) == 20 * 9  # the first window too: its 9th goes at 800 s, once the first is back


@pytest.mark.parametrize("seed", range(4))
def test_live_in_a_history_burst_waits_at_most_one_slot(seed):
    """The live DAG's one call per 15 minutes, at a random moment of each, beside three greedy backfills:
    every live call waits at most one slot (100 s), the budget is never exceeded, and together they use
    it all (history takes the 8 slots live leaves)."""
    rng = random.Random(seed)
    arrivals = [T0 + k * 900 + rng.uniform(0, 900) for k in range(1, 20)]
    times, live = greedy_run(META, T0 + 21 * 900, arrivals, seed=seed)
    waits = [admitted - began for began, admitted in live]
    assert len(live) == len(arrivals)
    assert max(waits) <= slot_seconds(META[1]) + 1e-9, waits
    assert any(w > 0 for w in waits)  # history did borrow the reserve live came for
    stamps = sorted(times + [t for _, t in live])
    for limit in META:
        for i, t in enumerate(stamps):
            assert sum(1 for u in stamps[i:] if u < t + limit.seconds) <= limit.count, (limit, t)
    # the whole budget in the steady state: 9 per 900 s of live and history together
    assert sum(per_window(stamps, 900, T0 + 1800, 18)) >= 18 * 9 - 1


def test_history_pacing_reaches_the_vendor_floor():
    """A month of history at 8 calls a day, alone from an empty budget: 240 calls take 23,900 s, under the
    vendor's floor of 240 x 100 s (the static reserve needed 240 / 8 x 900 = 27,000 s)."""
    from airflow_provider_ringcx.hooks.budget import pacing_seconds

    assert pacing_seconds(META, 240, HISTORY) == 23_900
    assert pacing_seconds(META, 240, LIVE) == 23_400  # live's lower bound, (240 - 1) // 9 windows
