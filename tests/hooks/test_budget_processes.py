"""Live first across real processes: one live and three history processes share a 3-per-2-s budget file.

Every live request that finds live under the reserve goes within one slot interval (2/3 s: history may have
borrowed the reserve, but only a slot that is back within one slot), every other one by the time a slot
first frees after it arrives (the live marker keeps history off it); every history request leaves the
window back at its share one slot later; the merged request times never exceed the budget. The waits are
the budget's own (real sleeping is what the processes share); nothing is mocked. This module imports only
the pacer, so each spawned process starts quickly (the simulator end-to-end test is in
``test_budget_live_first.py``).
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest

from airflow_provider_ringcx.hooks.budget import RateBudget, parse_budget
from airflow_provider_ringcx.hooks.budget_rule import HISTORY, LIVE, reserve_slots

pytestmark = pytest.mark.integration  # real processes

NAME = "127.0.0.1:1|99999999|metadata"
SPEC = "3/2"
LIMIT = parse_budget(SPEC)[0]
WINDOW = LIMIT.seconds + min(0.5, LIMIT.seconds * 0.02)  # as the pacer counts it (default margin)
SLOT = LIMIT.seconds / LIMIT.count  # one slot interval
#: how late a process may see its slot (scheduling and the lock, on a loaded 2-core machine)
TOLERANCE = 0.5
#: live's schedule: (offset from the start, requests at once); a single request after a single one finds
#: live under the reserve, the burst of two (the window and its rescan) makes the second wait for a slot
LIVE_PLAN = ((0.3, 1), (2.9, 1), (5.5, 1), (8.1, 2))
RUN_SECONDS = 10.5


def _live(state_dir: str, go: Any, start: Any, ready: Any, out: Any) -> None:  # pragma: no cover - child
    budget = RateBudget(NAME, parse_budget(SPEC), state_dir, priority=LIVE)
    ready.put("live")
    go.wait(60)
    records = []
    for offset, burst in LIVE_PLAN:
        time.sleep(max(0.0, start.value + offset - time.time()))  # the live DAG's schedule
        for _ in range(burst):
            began = time.time()
            budget.acquire()
            records.append((began, budget.last_acquired))
    out.put((LIVE, records))


def _history(state_dir: str, go: Any, start: Any, ready: Any, out: Any) -> None:  # pragma: no cover - child
    budget = RateBudget(NAME, parse_budget(SPEC), state_dir, priority=HISTORY)
    ready.put("history")
    go.wait(60)
    records = []
    while time.time() < start.value + RUN_SECONDS:
        began = time.time()
        budget.acquire()  # greedy: a backfill always has more to fetch
        records.append((began, budget.last_acquired))
    out.put((HISTORY, records))


def first_free(stamps: list[float], at: float) -> float:
    """When a request arriving at ``at`` finds a free slot if no request is admitted after ``at``."""
    recent = sorted(t for t in stamps if at - WINDOW < t <= at)
    return at if len(recent) < LIMIT.count else recent[-LIMIT.count] + WINDOW


def test_live_waits_at_most_one_slot_across_processes(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    go, start, ready, out = ctx.Event(), ctx.Value("d", 0.0), ctx.Queue(), ctx.Queue()
    args = (str(tmp_path), go, start, ready, out)
    procs = [ctx.Process(target=_live, args=args)] + [
        ctx.Process(target=_history, args=args) for _ in range(3)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    start.value = time.time() + 0.2
    go.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    live = next(records for cls, records in results if cls == LIVE)
    history = [t for cls, records in results if cls == HISTORY for _, t in records]
    stamps = sorted([t for _, t in live] + history)
    assert len(live) == sum(n for _, n in LIVE_PLAN)
    assert len(history) >= 8, "history made too little progress to test anything"

    # the budget itself: no window of 2 s holds more than 3 requests, of either class
    for i, t in enumerate(stamps):
        assert sum(1 for u in stamps[i:] if u < t + LIMIT.seconds) <= LIMIT.count, (t, stamps)
    # history borrows the reserve only back within a slot: fewer than 3 - 1 earlier requests are still in
    # the window one slot after it (the pacer's own times, so no tolerance)
    allowed = LIMIT.count - reserve_slots(LIMIT)
    for h in history:
        assert sum(1 for u in stamps if h + SLOT - WINDOW < u < h) < allowed, (h, stamps)
    lent = [h for h in history if sum(1 for u in stamps if h - WINDOW < u < h) >= allowed]
    assert lent, "history never borrowed the reserve: the run tests nothing new"
    # live: within a slot while live is under the reserve, else by the first slot that frees
    immediate = 0
    for began, admitted in live:
        own = sum(1 for _, t in live if began - WINDOW < t < began)
        if own < reserve_slots(LIMIT):
            immediate += 1
            assert admitted - began <= SLOT + TOLERANCE, (began, admitted, stamps)
        else:
            # a history request that took the lock within TOLERANCE of live's arrival counts as earlier
            earlier = [t for t in stamps if t < began + TOLERANCE and t != admitted]
            assert admitted <= first_free(earlier, began + TOLERANCE) + TOLERANCE, (began, admitted, stamps)
    assert immediate >= 4
    waits = ", ".join(f"{admitted - began:.3f}" for began, admitted in live)
    print(f"live waits (s): {waits}; history requests: {len(history)}, {len(lent)} lent")  # shown with -rP
