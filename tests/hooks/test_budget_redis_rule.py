"""One rule, two backends: the same table of cases through ``decide``, the file store and the Redis store.

The Redis store's Lua script mirrors :func:`~airflow_provider_ringcx.hooks.budget_rule.decide`'s arithmetic
(``budget_redis``'s module docstring says why), so each case seeds the same state into a budget file and a
real ``redis-server`` and requires the very same :class:`Decision` (delays compared exactly, not
approximately) and the same recording. Then whole runs through :class:`RateBudget` on an injected clock
(live and history interleaved, a 429 back-off, a reset) must sleep the same sleeps on both backends.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from airflow_provider_ringcx.hooks.budget import RateBudget, parse_budget
from airflow_provider_ringcx.hooks.budget_redis import RedisBudgetStore
from airflow_provider_ringcx.hooks.budget_rule import (
    HISTORY,
    LIVE,
    BudgetLimit,
    BudgetState,
    Decision,
    Priority,
    decide,
    reserve_slots,
    window_seconds,
)
from airflow_provider_ringcx.hooks.budget_store import FileBudgetStore
from tests.hooks.test_budget import FakeClock

NOW = 1_700_000_000.25
NAME = "127.0.0.1:8765|99999999|metadata"


@dataclass(frozen=True)
class Case:
    spec: str
    log: tuple[float, ...] = ()  # offsets from NOW
    blocked: float | None = None  # offset from NOW of blocked_until
    priority: Priority = LIVE
    margin: float | None = 0.0
    marker: float | None = None  # offset from NOW of live_waiting_until


CASES: dict[str, Case] = {
    "empty": Case("2/60"),
    "one free slot": Case("2/60", (-30,)),
    "full: the oldest ages out": Case("2/60", (-50, -10)),
    "an entry exactly one window old is out": Case("2/60", (-60, -10)),
    "an entry just inside the window is in": Case("2/60", (-59.999999, -10)),
    "older than every window": Case("2/60,9/900", (-1000, -950, -901)),
    "history: the reserve of 2/60 is its second slot": Case("2/60", (-30,), priority=HISTORY),
    "history: 3/2 under its share": Case("3/2", (-1.5,), priority=HISTORY),
    "history: 3/2 at its share": Case("3/2", (-1.5, -0.5), priority=HISTORY),
    "live takes the reserve history leaves": Case("3/2", (-1.5, -0.5)),
    "the 15-minute window decides": Case("2/60,9/900", (-890, -700, -600, -500, -400, -300, -200, -100, -5)),
    "both full: the later free slot wins": Case("2/60,9/900", (-880, *range(-800, -100, 100), -40, -20)),
    "history share of 120/60 (reserve 12)": Case(
        "120/60", tuple(-59 + i * 0.45 for i in range(108)), None, HISTORY
    ),
    "live finds 120/60 with 108": Case("120/60", tuple(-59 + i * 0.45 for i in range(108))),
    "a 429 back-off past the window wins": Case("2/60", (-50, -10), blocked=90),
    "a window past the back-off wins": Case("2/60", (-50, -10), blocked=3),
    "a back-off in the past is over": Case("2/60", (-30,), blocked=-1),
    "a back-off holds history alike": Case("3/2", (), blocked=0.5, priority=HISTORY),
    "no limits: only the back-off": Case("off", (), blocked=7.5),
    "no limits, no back-off": Case("off"),
    "the default margin pads 60 s by 0.5": Case("2/60", (-60.2, -10), margin=None),
    "an explicit margin": Case("2/60", (-61.5, -1), margin=2.0),
    "a skewed host's future entries count": Case("2/60", (2.5, 4.0)),
    "two requests at one instant": Case("2/60", (-20, -20)),
    "a tie between windows: the first decides": Case("2/60,3/90", (-80, -50, -10)),
    "a tie with the back-off: the back-off decides": Case("2/60", (-50, -10), blocked=10),
    "history borrows the 3/2 reserve back within a slot": Case("3/2", (-1.5, -0.5), priority=HISTORY),
    "history may not borrow the 2/60 reserve yet": Case("2/60", (-20,), priority=HISTORY),
    "history borrows 9/900 when the oldest is back in 100 s": Case(
        "2/60,9/900", (-850, *range(-700, 0, 100)), priority=HISTORY
    ),
    "history: the short window refuses the loan": Case(
        "2/60,9/900", (-850, *range(-700, -100, 100), -10), priority=HISTORY
    ),
    "the marker holds history (windows free)": Case("2/60", (), priority=HISTORY, marker=40),
    "the marker holds history briefly (wake-up)": Case("2/60", (), priority=HISTORY, marker=0.25),
    "held: retry when the window frees, before the marker": Case(
        "2/60", (-59.5, -20), priority=HISTORY, marker=15
    ),
    "a window past the marker decides": Case("2/60", (-30, -20), priority=HISTORY, marker=5),
    "a lapsed marker is no marker": Case("2/60", (), priority=HISTORY, marker=-1),
    "a refused live request sets the marker": Case("2/60,9/900", (-50, -10)),
    "a refused live request extends the marker": Case("2/60", (-50, -10), marker=20),
    "a refused live request keeps a later marker": Case("2/60", (-50, -10), marker=500),
    "a live admission clears the marker": Case("2/60", (-50,), marker=30),
    "a 429 back-off sets the marker past it": Case("2/60", (), blocked=7.5),
}


def seed_file(store: FileBudgetStore, state: BudgetState) -> None:
    with store.transaction() as current:
        current.log, current.blocked_until = list(state.log), state.blocked_until
        current.live_waiting_until = state.live_waiting_until


def seed_redis(store: RedisBudgetStore, url: str, state: BudgetState) -> None:
    client = redis.Redis.from_url(url)
    client.delete(store.log_key, store.blocked_key, store.live_key)
    if state.log:
        client.zadd(store.log_key, {f"seed-{i}": t for i, t in enumerate(state.log)})
    if state.blocked_until:
        client.set(store.blocked_key, repr(state.blocked_until))
    if state.live_waiting_until:
        client.set(store.live_key, repr(state.live_waiting_until))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_same_case_decides_the_same_on_both_backends(case: Case, tmp_path: Path, redis_url: str) -> None:
    limits = parse_budget(case.spec)
    state = BudgetState(
        [NOW + t for t in case.log],
        NOW + case.blocked if case.blocked is not None else 0.0,
        NOW + case.marker if case.marker is not None else 0.0,
    )
    horizon = max((window_seconds(limit, case.margin) for limit in limits), default=0.0)
    expected = decide(
        BudgetState(list(state.log), state.blocked_until, state.live_waiting_until),
        limits,
        NOW,
        case.priority,
        margin=case.margin,
    )

    file_store = FileBudgetStore(NAME, tmp_path, horizon=horizon, clock=lambda: NOW)
    redis_store = RedisBudgetStore(NAME, redis_url, horizon=horizon, clock=lambda: NOW)
    seed_file(file_store, state)
    seed_redis(redis_store, redis_url, state)
    on_file = file_store.try_acquire(limits, case.priority, margin=case.margin)
    on_redis = redis_store.try_acquire(limits, case.priority, margin=case.margin)

    assert on_file == (expected, NOW)
    assert on_redis == (expected, NOW)
    recorded = expected.admitted and bool(limits)  # an unlimited budget keeps no log
    assert (NOW in file_store.snapshot().log) == recorded
    assert (NOW in redis_store.snapshot().log) == recorded
    # both keep what a window can still see, and the back-off
    visible = sorted(t for t in file_store.snapshot().log if t > NOW - horizon)
    assert sorted(t for t in redis_store.snapshot().log if t > NOW - horizon) == visible
    assert redis_store.snapshot().blocked_until == file_store.snapshot().blocked_until
    # the marker both store after the request (a lapsed one: the file keeps 0 or the past, Redis nothing)
    markers = [store.snapshot().live_waiting_until for store in (file_store, redis_store)]
    assert [m if m > NOW else 0.0 for m in markers] == [expected.live_waiting_until] * 2


def test_the_table_covers_every_kind_of_decision() -> None:
    """Admitted, a window (live and at history's share), the back-off and the marker all decide some case;
    a live refusal sets the marker and a live admission clears it."""
    kinds = set()
    for case in CASES.values():
        limits = parse_budget(case.spec)
        state = BudgetState(
            [NOW + t for t in case.log],
            NOW + case.blocked if case.blocked is not None else 0.0,
            NOW + case.marker if case.marker is not None else 0.0,
        )
        d: Decision = decide(state, limits, NOW, case.priority, margin=case.margin)
        if case.priority == LIVE and state.live_waiting_until > NOW:
            kinds.add("marker cleared" if d.live_waiting_until == 0 else "marker kept")
        if d.admitted:
            kinds.add("lent" if case.priority == HISTORY and lent(state, limits) else "admitted")
        elif d.held_for_live:
            kinds.add("held")
        elif d.limit is None:
            kinds.add("back-off")
        else:
            kinds.add("share" if d.allowed < d.limit.count else "full")
    assert kinds == {"admitted", "lent", "back-off", "share", "full", "held", "marker cleared", "marker kept"}


def lent(state: BudgetState, limits: tuple[BudgetLimit, ...]) -> bool:
    """Some window holds its share or more now (a history admission there borrows the reserve)."""
    return any(
        sum(1 for t in state.log if t > NOW - limit.seconds) >= limit.count - reserve_slots(limit)
        for limit in limits
    )


def run(spec: str, budget_dir: Path, monkeypatch: pytest.MonkeyPatch, backend: str, url: str) -> list[object]:
    """A live and a history budget on one name, interleaved on one injected clock; what each step saw."""
    monkeypatch.setenv("AIRFLOW__RINGCX__BUDGET_BACKEND", backend)
    monkeypatch.setenv("AIRFLOW__RINGCX__BUDGET_REDIS_URL", url)
    clock = FakeClock(NOW)
    make = lambda priority: RateBudget(  # noqa: E731
        NAME, parse_budget(spec), budget_dir, clock=clock, sleep=clock.sleep, priority=priority
    )
    live, history = make(LIVE), make(HISTORY)
    assert type(live.store).__name__ == {"file": "FileBudgetStore", "redis": "RedisBudgetStore"}[backend]
    live.reset()
    seen: list[object] = []
    for step, who in zip(range(40), itertools.cycle("HHHLHHL")):
        budget = live if who == "L" else history
        budget.acquire()
        seen.append((who, round(clock.now - NOW, 9)))
        if step == 17:
            live.penalize(95.0)  # a 429's Retry-After reaches the other budget object too
            seen.append(("429", history.snapshot()["blocked_until"] - clock.now))
        if step == 30:
            history.reset()
    seen.append(("sleeps", [round(s, 9) for s in clock.sleeps]))
    return seen


@pytest.mark.parametrize("spec", ["2/60,9/900", "3/2", "120/60", "5/60"])
def test_whole_runs_are_the_same_on_both_backends(
    spec: str, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_file = run(spec, tmp_path / "file", monkeypatch, "file", redis_url)
    on_redis = run(spec, tmp_path / "redis", monkeypatch, "redis", redis_url)
    assert on_redis == on_file
    assert ("429", 95.0) in on_file
