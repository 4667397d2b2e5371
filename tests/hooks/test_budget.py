"""RateBudget: sliding windows with an injected clock, and for real across processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXRateLimitedError
from airflow_provider_ringcx.hooks.budget import BudgetLimit, RateBudget, format_budget, parse_budget


class FakeClock:
    """Clock + sleep pair: sleeping advances the clock (no real waiting)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def budget(tmp_path: Path, spec: str, clock: FakeClock, name: str = "host|1|metadata") -> RateBudget:
    return RateBudget(name, parse_budget(spec), tmp_path, clock=clock, sleep=clock.sleep, margin=0)


def test_parse_and_format():
    assert parse_budget("2/60,9/900") == (BudgetLimit(2, 60), BudgetLimit(9, 900))
    assert parse_budget(" 120 / 60 ") == (BudgetLimit(120, 60),)
    assert parse_budget("off") == ()
    assert format_budget(parse_budget("2/60,9/900")) == "2/60,9/900"
    for bad in ("", "2", "2/", "a/60", "2/60;9/900", "-1/60"):
        with pytest.raises(RingCXConfigError, match="budget"):
            parse_budget(bad)


def test_both_windows_are_enforced(tmp_path):
    clock = FakeClock()
    b = budget(tmp_path, "2/60,9/900", clock)
    times = []
    for _ in range(12):
        b.acquire()
        times.append(clock.now)
    for i, t in enumerate(times):
        assert sum(1 for u in times if t <= u < t + 60) <= 2, i
        assert sum(1 for u in times if t <= u < t + 900) <= 9, i
    # 2 free, then one every 30 s on average until the 15-minute window fills; the 10th waits for it
    assert times[1] == times[0]
    assert times[2] == times[0] + 60
    assert times[9] >= times[0] + 900


def test_penalty_blocks_every_user_of_the_budget(tmp_path):
    clock = FakeClock()
    first = budget(tmp_path, "100/60", clock)
    second = budget(tmp_path, "100/60", clock)  # another hook/process: same file
    first.penalize(7.5)
    start = clock.now
    assert second.acquire() == pytest.approx(7.5)
    assert clock.now - start == pytest.approx(7.5)


def test_budgets_are_keyed_by_host_account_and_endpoint(tmp_path):
    clock = FakeClock()
    a = budget(tmp_path, "1/60", clock, "host|1|metadata")
    b = budget(tmp_path, "1/60", clock, "host|2|metadata")
    c = budget(tmp_path, "1/60", clock, "host|1|download")
    for x in (a, b, c):
        assert x.acquire() == 0
    assert len({a.path, b.path, c.path}) == 3


def test_off_budget_never_waits_but_honours_penalty(tmp_path):
    clock = FakeClock()
    b = budget(tmp_path, "off", clock)
    assert all(b.acquire() == 0 for _ in range(1000))
    b.penalize(3)
    assert b.acquire() == pytest.approx(3)


def test_default_margin_pads_each_window(tmp_path):
    clock = FakeClock()
    b = RateBudget("m", parse_budget("1/60"), tmp_path, clock=clock, sleep=clock.sleep)
    b.acquire()
    assert b.acquire() == pytest.approx(60.5)  # 2 % of 60 s is capped at 0.5 s


def test_max_wait_raises_rate_limited(tmp_path):
    clock = FakeClock()
    b = budget(tmp_path, "1/60", clock)
    b.acquire()
    with pytest.raises(RingCXRateLimitedError, match="no free slot") as info:
        b.acquire(max_wait=10)
    assert info.value.retry_after == pytest.approx(60)


def test_corrupt_state_file_is_reset(tmp_path):
    clock = FakeClock()
    b = budget(tmp_path, "1/60", clock)
    b.path.parent.mkdir(parents=True, exist_ok=True)
    b.path.write_text("{not json")
    assert b.acquire() == 0
    assert b.snapshot()["log"] == [clock.now]


def _worker(state_dir: str, n: int, queue) -> None:  # pragma: no cover - runs in a child process
    b = RateBudget("127.0.0.1:1|99999999|metadata", parse_budget("3/1"), state_dir)
    stamps = []
    for _ in range(n):
        b.acquire()
        stamps.append(b.last_acquired)
    queue.put(stamps)


@pytest.mark.integration  # four real processes
def test_budget_holds_across_processes(tmp_path):
    """Four real processes share a 3-per-second budget: the merged timestamps never exceed it."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), 3, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    stamps = sorted(t for _ in procs for t in queue.get(timeout=60))
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(stamps) == 12
    for i in range(len(stamps) - 3):
        # any 4 consecutive requests span more than the 1 s window (plus the default 2 % jitter margin)
        assert stamps[i + 3] - stamps[i] >= 1.02, stamps
    assert stamps[-1] - stamps[0] >= 3.06


# -- issue #12 item 13: no silent wait, long waits defer ---------------------------------------------------


def _wait_records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "airflow_provider_ringcx.hooks.budget" and r.levelno == level and "waiting" in r.message
    ]


def test_budget_wait_over_5_s_is_logged_at_info_with_reason_and_end(tmp_path, caplog):
    import logging
    from datetime import datetime, timezone

    caplog.set_level(logging.DEBUG, logger="airflow_provider_ringcx.hooks.budget")
    clock = FakeClock()
    b = budget(tmp_path, "9/900", clock)
    for _ in range(9):
        b.acquire()
    start = clock.now
    b.acquire()  # the 10th waits out the 15-minute window
    info = _wait_records(caplog, logging.INFO)
    assert len(info) == 1, info
    end = datetime.fromtimestamp(start + 900, timezone.utc).isoformat(timespec="seconds")
    assert info[0].startswith(f"waiting 900.0 s, until {end}: metadata 9/900s budget full"), info[0]


def test_short_budget_wait_stays_at_debug(tmp_path, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="airflow_provider_ringcx.hooks.budget")
    clock = FakeClock()
    b = budget(tmp_path, "1/4", clock)
    b.acquire()
    b.acquire()
    assert _wait_records(caplog, logging.INFO) == []
    assert len(_wait_records(caplog, logging.DEBUG)) == 1


def test_penalty_wait_names_the_429(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="airflow_provider_ringcx.hooks.budget")
    clock = FakeClock()
    b = budget(tmp_path, "off", clock)
    b.penalize(30)
    b.acquire()
    (line,) = _wait_records(caplog, logging.INFO)
    assert "waiting 30.0 s" in line
    assert "RingCX answered 429 with Retry-After" in line


def test_long_wait_raises_wait_required_and_records_nothing(tmp_path):
    from datetime import datetime, timezone

    from airflow_provider_ringcx.exceptions import RingCXWaitRequired

    clock = FakeClock()
    b = budget(tmp_path, "2/60,9/900", clock)
    b.defer_over = 120
    for _ in range(2):
        b.acquire()
    b.acquire()  # a 60 s wait is under the threshold: slept
    assert clock.sleeps == [60]
    for _ in range(6):
        b.acquire()
    before = b.snapshot()
    with pytest.raises(RingCXWaitRequired, match="metadata 9/900s budget full") as info:
        b.acquire()
    assert info.value.until > datetime.fromtimestamp(clock.now + 120, timezone.utc)
    after = b.snapshot()
    assert after["log"] == before["log"]  # no slot taken: the resumed task acquires normally
    # but the live marker keeps history off the slot until the deferred task is back (one slot of slack)
    assert after["live_waiting_until"] == pytest.approx(info.value.until.timestamp() + 100, abs=1)
    clock.now = info.value.until.timestamp()
    b.acquire()  # after the deferral, the slot is free
