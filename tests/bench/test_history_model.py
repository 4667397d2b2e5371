"""The history bench's arithmetic (``bench.history_model``): the figures ``make bench`` prints for the
history backfill - calls, the vendor's floor, the projection and its formatting - are what the issue's
table says. Pure functions: no Airflow, no simulator, no timing asserted."""

from __future__ import annotations

import pytest

from bench.history_model import (
    DAY,
    Projection,
    calls_for,
    duration,
    floor_seconds,
    logged_waits,
    scaled,
    shared_floor_seconds,
    slot_seconds,
    steady_per_day,
)


def test_calls_and_the_vendors_floor_match_the_issue_table():
    assert calls_for(3 * DAY) == 24  # 8 calls of 10800 s a day
    assert calls_for(3 * DAY + 1) == 25  # a partial window is a call
    assert calls_for(30 * DAY) == 240
    assert floor_seconds(30) == 24_000  # 240 calls at 9 per 900 s
    assert duration(floor_seconds(30)) == "6.7 h"
    assert calls_for(30 * DAY, 3600) == 720
    assert duration(floor_seconds(30, 3600)) == "20.0 h"
    assert calls_for(365 * DAY) == 2920
    assert duration(floor_seconds(365)) == "3.4 d"
    assert slot_seconds() == 100


def test_the_projection_is_fixed_cost_plus_the_steady_pace():
    # 3 days: the first fetched at 420 s (empty budget windows), then one day per 900 s; the run ends
    # 300 s after the last fetch (downloads and report of the last day)
    ends = [420.0, 1320.0, 2220.0]
    per_day = steady_per_day([ends[2], ends[0], ends[1]])  # order does not matter
    assert per_day == 900
    projection = Projection(days=3, total=2520.0, per_day=per_day)
    assert projection.fixed == 2520 - 2700
    assert projection.projected() == 27_000 - 180
    assert projection.ratio() == pytest.approx(26_820 / 24_000)
    assert projection.naive() == 25_200  # total / 3 x 30: flattered by the first day's empty windows


def test_the_pace_needs_two_days():
    with pytest.raises(ValueError, match="at least two days"):
        steady_per_day([420.0])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45 s"),
        (119.4, "119 s"),
        (750, "12.5 min"),
        (24_000, "6.7 h"),
        (4 * DAY + 1, "4.0 d"),
        (-180, "-3.0 min"),
    ],
)
def test_durations_read_as_the_table_writes_them(seconds, text):
    assert duration(seconds) == text


def test_budgets_are_scaled_to_real_seconds_and_padded():
    assert scaled(((2, 60.0), (9, 900.0)), 15) == "2/4,9/60"
    assert scaled(((2, 60.0), (9, 900.0)), 15, 0.3) == "2/4.3,9/60.3"
    assert scaled(((120, 60.0),), 1) == "120/60"


def test_budget_waits_are_read_from_the_hooks_log_lines():
    log = (
        '{"event":"waiting 7.5 s, until 2026-12-02T00:35:11+00:00: metadata 9/60.3s budget full"}\n'
        '{"event":"waiting for nothing"}\n'
        '{"event":"waiting 2.25 s, until 2026-12-02T00:35:20+00:00: exchange budget full"}\n'
    )
    assert logged_waits(log) == pytest.approx(9.75)
    assert logged_waits("no waits") == 0


def test_the_floor_beside_the_live_dag_is_what_its_calls_leave_over():
    assert shared_floor_seconds(30, 0) == floor_seconds(30)
    assert shared_floor_seconds(30, 1) == 27_000  # live's 1 call per 900 s leaves 8 of 9
    assert duration(shared_floor_seconds(30, 1)) == "7.5 h"
    projection = Projection(days=3, total=3 * 960.0 + 300, per_day=960.0)
    assert projection.ratio(floor=27_000) == pytest.approx((300 + 30 * 960) / 27_000)
    with pytest.raises(ValueError, match="none is left over"):
        shared_floor_seconds(30, 9)
