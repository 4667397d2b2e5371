"""Live first (issue #14 item 3): the pacer's rule as a pure function with an injected clock, no sleeping.

The invariants of :mod:`airflow_provider_ringcx.hooks.budget_rule` (the lent reserve and the live marker)
are checked on a discrete-event run of one live and several history acquirers against :func:`decide` and
:func:`settle`, and a control run with every acquirer ``live`` shows that the same checks fail without the
rule (the lending rule's own table tests are in ``test_budget_lending.py``). The plumbing (hook, operators,
templates) is checked without any network: the hook builds its budgets from a connection defined in the
environment.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXWaitRequired
from airflow_provider_ringcx.hooks.budget import RateBudget, parse_budget
from airflow_provider_ringcx.hooks.budget_rule import (
    HISTORY,
    LIVE,
    BudgetLimit,
    BudgetState,
    Priority,
    check_priority,
    decide,
    reserve_slots,
    settle,
    slot_seconds,
)
from tests.hooks.test_budget import FakeClock

T0 = 1_000_000.0


def test_reserve_is_one_slot_or_ten_percent_and_history_always_keeps_one():
    counts = {1: 0, 2: 1, 3: 1, 5: 1, 9: 1, 10: 1, 11: 2, 120: 12}
    assert {n: reserve_slots(BudgetLimit(n, 60)) for n in counts} == counts


def test_history_borrows_the_reserve_only_when_it_is_back_within_a_slot():
    limits = parse_budget("3/2")  # reserve 1, slot 2/3 s
    state = BudgetState(log=[T0, T0 + 0.5])
    assert decide(state, limits, T0 + 1, LIVE, margin=0).admitted
    history = decide(state, limits, T0 + 1, HISTORY, margin=0)
    assert not history.admitted  # the oldest ages out at T0 + 2, more than a slot away
    # history may borrow the third slot once the oldest ages out within a slot: at T0 + 2 - 2/3
    assert history.delay == pytest.approx(1 - 2 / 3)
    assert (history.limit, history.count, history.allowed) == (BudgetLimit(3, 2), 2, 2)
    assert decide(state, limits, T0 + 2 - 2 / 3, HISTORY, margin=0).admitted
    assert decide(BudgetState(log=[T0]), limits, T0 + 1, HISTORY, margin=0).admitted


def test_every_window_must_agree_to_lend():
    limits = parse_budget("2/60,9/900")
    # the short window is empty, the long one holds 8: live may take the 9th; history only once the
    # oldest of the 8 is back within 100 s
    state = BudgetState(log=[T0 + i * 61 for i in range(8)])
    now = T0 + 8 * 61
    assert decide(state, limits, now, LIVE, margin=0).admitted
    history = decide(state, limits, now, HISTORY, margin=0)
    assert history.limit == BudgetLimit(9, 900)
    assert history.delay == pytest.approx(T0 + 900 - 100 - now)


def test_the_429_back_off_holds_both_classes():
    state = BudgetState(blocked_until=T0 + 30)
    for priority in (LIVE, HISTORY):
        decision = decide(state, (), T0, priority)
        assert decision.delay == pytest.approx(30)
        assert decision.limit is None


def test_a_one_slot_budget_has_no_reserve():
    """Else history could never run; the rule says so (module doc)."""
    assert decide(BudgetState(), parse_budget("1/60"), T0, HISTORY).admitted


def test_priority_values_are_checked():
    assert check_priority(" History ") == HISTORY
    assert check_priority(None) == LIVE
    with pytest.raises(RingCXConfigError, match=r"budget_priority='bulk'.*'live'.*'history'"):
        check_priority("bulk")


# -- the invariants, on a discrete-event run --------------------------------------------------------------


@dataclass
class Actor:
    priority: Priority
    arrivals: list[float]  # when each request is wanted (history: greedy, always now)
    admitted: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)  # live: when each request began to wait
    bounds: list[float] = field(default_factory=list)  # live: the first free slot at that moment


def first_free(log: list[float], limits: tuple[BudgetLimit, ...], now: float) -> float:
    """When a live request arriving at ``now`` finds a free slot if nobody else is admitted meanwhile."""
    return now + max(0.0, decide(BudgetState(log=list(log)), limits, now, LIVE, margin=0).delay)


def run(limits: tuple[BudgetLimit, ...], history_priority: Priority, *, seed: int, until: float):
    """One live acquirer with random arrivals (bursts of 1-3), three greedy history acquirers; each actor
    retries at the delay :func:`decide` gives, ties broken at random (as the lock would)."""
    rng = random.Random(seed)
    rate = min(limit.count / limit.seconds for limit in limits)
    live_arrivals, t = [], T0 + 5
    while t < until:
        live_arrivals += [t] * rng.choice((1, 1, 2, 3))
        t += rng.uniform(0.2, 1.8) * 3.5 / rate  # on average half the budget's sustained rate
    live = Actor(LIVE, live_arrivals)
    history = [Actor(history_priority, []) for _ in range(3)]
    state = BudgetState()
    next_try = {id(a): (T0 + rng.uniform(0, 1)) for a in history}
    pending_live: float | None = None
    bound: float | None = None
    while True:
        if pending_live is None and live.arrivals[len(live.admitted) :]:
            arrival = live.arrivals[len(live.admitted)]
            next_try[id(live)] = max(arrival, live.admitted[-1] if live.admitted else arrival)
            pending_live = next_try[id(live)]
            bound = None
        actors = [a for a in [live, *history] if id(a) in next_try]
        now = min(next_try[id(a)] for a in actors)
        if now > until and pending_live is None:
            return live, history, state
        ready = [a for a in actors if next_try[id(a)] == now]
        actor = rng.choice(ready)
        if actor is live and bound is None:
            bound = first_free(state.log, limits, now)
            live.starts.append(now)
            live.bounds.append(bound)
        decision = decide(state, limits, now, actor.priority, margin=0)
        settle(state, decision, now)
        if decision.admitted:
            actor.admitted.append(now)
            if actor is live:
                del next_try[id(live)]
                pending_live = None
            else:
                next_try[id(actor)] = now
        else:
            next_try[id(actor)] = now + decision.delay


def violations(limits: tuple[BudgetLimit, ...], live: Actor, history: list[Actor]) -> list[str]:
    problems = []
    stamps = sorted([(t, LIVE) for t in live.admitted] + [(t, HISTORY) for a in history for t in a.admitted])
    for limit in limits:
        share, slot = limit.count - reserve_slots(limit), slot_seconds(limit)
        for i, (t, cls) in enumerate(stamps):
            inside = [p for u, p in stamps[i:] if u < t + limit.seconds]
            if len(inside) > limit.count:
                problems.append(f"{len(inside)} requests in {limit} from {t}")
            # a history request is back within the share one slot later (requests up to it, still in)
            back = sum(1 for u, _ in stamps[: i + 1] if u > t + slot - limit.seconds)
            if cls == HISTORY and back > share:
                problems.append(f"history lent: {back} requests of {limit} still in one slot after {t}")
    for start, admitted, bound in zip(live.starts, live.admitted, live.bounds, strict=True):
        if admitted > bound + 1e-9:
            problems.append(
                f"live request of {start} waited {admitted - start:.1f} s, not {bound - start:.1f}"
            )
    return problems


@pytest.mark.parametrize("spec", ["2/60,9/900", "3/2", "120/60", "5/60"])
@pytest.mark.parametrize("seed", range(4))
def test_live_takes_the_first_free_slot_and_history_never_the_reserve(spec, seed):
    """Every live request is admitted by the moment a slot first frees after it arrives (history takes
    none of the slots it waits for: the marker), a history request leaves at most ``limit - reserve`` of
    any window one slot later (the lent reserve is back), the budget itself is never exceeded, and history
    still progresses."""
    limits = parse_budget(spec)
    horizon = max(limit.seconds for limit in limits)
    live, history, _ = run(limits, HISTORY, seed=seed, until=T0 + 6 * horizon)
    assert violations(limits, live, history) == []
    # a live request that finds live's own requests under the reserve in every window goes within a slot
    slot = max(slot_seconds(limit) for limit in limits)
    within = [
        i
        for i, start in enumerate(live.starts)
        if all(
            sum(1 for t in live.admitted[:i] if t > start - limit.seconds) < reserve_slots(limit)
            for limit in limits
        )
    ]
    assert within
    waits = [live.admitted[i] - live.starts[i] for i in within]
    assert max(waits) <= slot + 1e-9, (waits, slot)
    longest = max(limits, key=lambda limit: limit.seconds)
    assert sum(len(a.admitted) for a in history) >= longest.count - reserve_slots(longest)


@pytest.mark.parametrize("spec", ["2/60,9/900", "3/2"])
def test_control_without_the_rule_history_delays_live(spec):
    """The same run with every acquirer ``live``: history takes slots live waits for and keeps the
    reserve longer than a slot, so the checks above fail - they test the rule, not the workload."""
    limits = parse_budget(spec)
    horizon = max(limit.seconds for limit in limits)
    problems = []
    for seed in range(4):
        live, history, _ = run(limits, LIVE, seed=seed, until=T0 + 6 * horizon)
        problems += violations(limits, live, history)
    assert any("waited" in p for p in problems), problems
    assert any("history lent" in p for p in problems), problems


# -- RateBudget: the class reaches the decision; waits, penalty and deferral as for live -------------------


def test_history_budget_waits_for_its_share_and_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    import logging

    caplog.set_level(logging.INFO, logger="airflow_provider_ringcx.hooks.budget")
    clock = FakeClock(T0)
    name = "host|1|metadata"
    live = RateBudget(name, parse_budget("9/900"), tmp_path, clock=clock, sleep=clock.sleep, margin=0)
    backfill = RateBudget(
        name, parse_budget("9/900"), tmp_path, clock=clock, sleep=clock.sleep, margin=0, priority=HISTORY
    )
    for _ in range(8):
        assert backfill.acquire() == 0
        clock.now += 1
    waited = backfill.acquire()  # the reserve: lent once the first of the 8 is back within 100 s
    assert waited == pytest.approx(800 - 8)
    assert live.acquire() == pytest.approx(100)  # the window is full: live waits the one slot it was lent
    (line, _) = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
    assert "metadata 9/900s budget at the history share" in line
    assert "history borrows the last 1 slot(s) only when they are back for live requests within 100 s" in line
    assert "priority='history'" in repr(backfill)


def test_history_honours_penalty_and_deferral(tmp_path: Path):
    clock = FakeClock(T0)
    b = RateBudget("h|1|metadata", parse_budget("2/60"), tmp_path, clock=clock, sleep=clock.sleep, margin=0)
    h = RateBudget(
        "h|1|metadata",
        parse_budget("2/60"),
        tmp_path,
        clock=clock,
        sleep=clock.sleep,
        margin=0,
        priority=HISTORY,
    )
    b.penalize(7)
    assert h.acquire() == pytest.approx(7)  # the 429 of a live request holds history too
    h.defer_over = 20  # its own request of 7 s ago is back within the share 30 s later
    before = h.snapshot()
    with pytest.raises(RingCXWaitRequired, match="history share"):
        h.acquire()
    assert h.snapshot() == before


def test_state_file_format_stays_compatible(tmp_path: Path):
    """A file written before the live marker existed (and one without ``blocked_until``) is read, the marker
    as ``0``; a new file keeps the two old keys with their old meaning (an older worker reads only those),
    plus ``live_waiting_until``."""
    clock = FakeClock(T0)
    h = RateBudget(
        "h|1|metadata",
        parse_budget("3/60"),
        tmp_path,
        clock=clock,
        sleep=clock.sleep,
        margin=0,
        priority=HISTORY,
    )
    h.path.write_text(json.dumps({"log": [T0 - 10, T0 - 5]}))
    assert h.acquire() == pytest.approx(30)  # 2 of 3 held: until the older is back within a slot (20 s)
    saved = json.loads(h.path.read_text())
    assert saved == {"log": [T0 - 10, T0 - 5, T0 + 30], "blocked_until": 0.0, "live_waiting_until": 0.0}
    h.path.write_text(json.dumps({"log": [T0], "blocked_until": T0 + 100}))
    blocked_for = T0 + 100 - clock.now
    assert h.acquire() == pytest.approx(blocked_for)


# -- plumbing: hook and operators -------------------------------------------------------------------------


CONN = {
    "conn_type": "ringcx",
    "login": "client-id",
    "password": "priority-test-client-secret",
    "extra": {"jwt_token": "a.b.c", "rc_account_id": "980634004", "sub_account_id": "99999999"},
}


def test_hook_builds_every_budget_in_its_priority(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook

    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_PRIO", json.dumps(CONN))
    hook = RingCXHook("ringcx_prio", budget_dir=str(tmp_path), budget_priority="history")
    assert {hook.budget(e).priority for e in ("metadata", "download", "exchange")} == {HISTORY}
    assert "budget_priority='history'" in repr(hook)
    assert RingCXHook("ringcx_prio", budget_dir=str(tmp_path)).budget("metadata").priority == LIVE
    with pytest.raises(RingCXConfigError, match="budget_priority"):
        RingCXHook("ringcx_prio", budget_priority="backfill")


def test_operators_template_the_priority_and_pass_it_to_the_hook(monkeypatch: pytest.MonkeyPatch):
    from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
    from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator

    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", json.dumps(CONN))
    ops = [
        RingCXInteractionMetadataOperator(task_id="m", bucket="b", budget_priority="{{ params.p }}"),
        RingCXRecordingsToS3Operator(task_id="d", batch=[], bucket="b", budget_priority="{{ params.p }}"),
    ]
    for op in ops:
        assert "budget_priority" in op.template_fields
        op.render_template_fields({"params": {"p": "history"}})
        assert op.hook.budget_priority == HISTORY
        assert op.hook.budget("metadata").priority == HISTORY
    assert RingCXRecordingsToS3Operator(task_id="x", batch=[], bucket="b").hook.budget_priority == LIVE
    for make in (
        lambda: RingCXInteractionMetadataOperator(task_id="m", bucket="b", budget_priority="bulk"),
        lambda: RingCXRecordingsToS3Operator(task_id="d", batch=[], bucket="b", budget_priority="bulk"),
    ):
        with pytest.raises(RingCXConfigError, match="budget_priority='bulk'"):
            make()


def test_history_pace_is_its_share_and_the_metadata_operator_checks_it(monkeypatch: pytest.MonkeyPatch):
    """A history window is refused when its calls cannot fit in the timeout at history's pace (the 9th
    call of an empty 9/900 s budget waits until the first is back within a slot), even where live's fits."""
    from datetime import datetime, timedelta, timezone

    from airflow_provider_ringcx.hooks.budget import pacing_seconds
    from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
    from airflow_provider_ringcx.windows import Window

    default = parse_budget("2/60,9/900")
    assert pacing_seconds(default, 9) == 240
    assert pacing_seconds(default, 9, HISTORY) == 800  # the 9th: the first is back within a slot
    assert pacing_seconds(default, 8, HISTORY) == 210  # 1 per 30 s: the 2/60 reserve lent each time
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", json.dumps(CONN))
    start = datetime(2026, 3, 2, tzinfo=timezone.utc)
    window = Window(start, start + timedelta(hours=9))  # 9 calls of an hour
    for priority in (LIVE, HISTORY):
        op = RingCXInteractionMetadataOperator(
            task_id=f"m_{priority}",
            bucket="b",
            budget_priority=priority,
            execution_timeout=timedelta(minutes=10),
        )
        if priority == LIVE:
            op.check_pace(window)
        else:
            with pytest.raises(RingCXConfigError, match=r"\(history priority\) no sooner than 800 s"):
                op.check_pace(window)
