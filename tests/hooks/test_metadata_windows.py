"""Window planning across DST transitions (pure computation, checked against a Java-like server model)."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.hooks.metadata import plan_windows, server_instant

UTC = timezone.utc
EASTERN = ZoneInfo("US/Eastern")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def java_resolve(wall: datetime, tz: ZoneInfo) -> datetime:
    """Independent model of java.time ZonedDateTime.of(LocalDateTime, zone): overlap -> earlier offset
    (the earlier instant), gap -> shifted forward by the length of the gap."""
    valid = []
    for fold in (0, 1):
        candidate = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if candidate.astimezone(tz).replace(tzinfo=None) == wall:
            valid.append(candidate)
    if valid:
        return min(valid)
    before = tz.utcoffset(wall - timedelta(hours=3))
    after = tz.utcoffset(wall + timedelta(hours=3))
    assert before is not None
    assert after is not None
    shifted = wall + (after - before)
    return (shifted - after).replace(tzinfo=UTC)


def server_rows(body: dict, ends: list[datetime]) -> list[datetime]:
    """What the simulator/vendor returns: segments whose end is in [start, start + timeInterval)."""
    wall = datetime.strptime(body["segmentEndTime"], "%Y-%m-%d %H:%M:%S")
    start = java_resolve(wall, ZoneInfo(body["timeZone"]))
    stop = start + timedelta(seconds=body["timeInterval"])
    return [e for e in ends if start <= e < stop]


def fetch_all(start: datetime, end: datetime, tz: str, max_seconds: int, ends: list[datetime]) -> list:
    """The hook's algorithm end to end: plan, ask the model server, filter to [start, end), dedupe."""
    seen: list[datetime] = []
    for window in plan_windows(start, end, tz, max_seconds):
        assert 1 <= window.time_interval <= max_seconds
        for e in server_rows(window.body, ends):
            if start <= e < end and e not in seen:
                seen.append(e)
    return seen


def every(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out, t = [], start
    while t < end:
        out.append(t)
        t += step
    return out


def test_server_instant_matches_java_in_gap_and_overlap():
    assert server_instant(datetime(2026, 3, 8, 2, 30), EASTERN) == utc(2026, 3, 8, 7, 30)  # gap: 03:30 EDT
    assert server_instant(datetime(2026, 11, 1, 1, 30), EASTERN) == utc(2026, 11, 1, 5, 30)  # earlier offset
    assert server_instant(datetime(2026, 7, 1, 12, 0), EASTERN) == utc(2026, 7, 1, 16, 0)
    for wall in every(datetime(2026, 3, 7), datetime(2026, 3, 9), timedelta(minutes=7)) + every(
        datetime(2026, 10, 31), datetime(2026, 11, 2), timedelta(minutes=7)
    ):
        assert server_instant(wall, EASTERN) == java_resolve(wall, EASTERN)


def test_spring_forward_bodies():
    windows = plan_windows(utc(2026, 3, 8, 5), utc(2026, 3, 8, 10), "US/Eastern", 3600)
    assert [w.body for w in windows] == [
        {"segmentEndTime": "2026-03-08 00:00:00", "timeInterval": 3600, "timeZone": "US/Eastern"},
        {"segmentEndTime": "2026-03-08 01:00:00", "timeInterval": 3600, "timeZone": "US/Eastern"},
        {"segmentEndTime": "2026-03-08 03:00:00", "timeInterval": 3600, "timeZone": "US/Eastern"},
        {"segmentEndTime": "2026-03-08 04:00:00", "timeInterval": 3600, "timeZone": "US/Eastern"},
        {"segmentEndTime": "2026-03-08 05:00:00", "timeInterval": 3600, "timeZone": "US/Eastern"},
    ]
    assert [w.start for w in windows] == [utc(2026, 3, 8, h) for h in range(5, 10)]


def test_fall_back_repeated_hour_is_reachable():
    windows = plan_windows(utc(2026, 11, 1, 4), utc(2026, 11, 1, 8), "US/Eastern", 3600)
    bodies = [w.body for w in windows]
    assert bodies[0]["segmentEndTime"] == "2026-11-01 00:00:00"
    assert bodies[1]["segmentEndTime"] == "2026-11-01 01:00:00"  # 05:00Z, first 01:00 (EDT)
    # 06:00Z is the second 01:00 (EST); the server would read it as 05:00Z, and 3600 s cannot reach it
    assert bodies[2] == {"segmentEndTime": "2026-11-01 06:00:00", "timeInterval": 3600, "timeZone": "UTC"}
    assert bodies[3]["segmentEndTime"] == "2026-11-01 02:00:00"
    assert bodies[3]["timeZone"] == "US/Eastern"


def test_fall_back_with_long_windows_asks_from_the_earlier_instant():
    windows = plan_windows(utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 12), "US/Eastern", 10800)
    first = windows[0]
    assert first.body == {
        "segmentEndTime": "2026-11-01 01:30:00",
        "timeInterval": 10800,
        "timeZone": "US/Eastern",
    }
    assert first.query_start == utc(2026, 11, 1, 5, 30)
    assert (first.start, first.end) == (utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 8, 30))


@pytest.mark.parametrize("max_seconds", [600, 3600, 5400, 7200, 10800])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (utc(2026, 3, 7, 22), utc(2026, 3, 8, 12)),  # spring forward (07:00Z)
        (utc(2026, 10, 31, 22), utc(2026, 11, 1, 12)),  # fall back (06:00Z)
    ],
)
def test_no_segment_lost_or_duplicated_across_transitions(start, end, max_seconds):
    ends = every(start - timedelta(hours=3), end + timedelta(hours=3), timedelta(seconds=97))
    ends += [utc(2026, 3, 8, 7), utc(2026, 11, 1, 5), utc(2026, 11, 1, 6), utc(2026, 11, 1, 7), start, end]
    expected = sorted({e for e in ends if start <= e < end})
    got = fetch_all(start, end, "US/Eastern", max_seconds, ends)
    assert len(got) == len(set(got))
    assert sorted(got) == expected


def test_windows_partition_the_range_randomly():
    rng = random.Random(7)
    for _ in range(200):
        start = utc(2026, 10, 31, 20) + timedelta(seconds=rng.randrange(0, 20 * 3600))
        end = start + timedelta(seconds=rng.randrange(1, 12 * 3600))
        max_seconds = rng.choice([60, 900, 3600, 10800])
        windows = plan_windows(start, end, rng.choice(["US/Eastern", "Europe/Berlin", "UTC"]), max_seconds)
        assert windows[0].start == start
        assert windows[-1].end == end
        for a, b in itertools.pairwise(windows):
            assert a.end == b.start
        for w in windows:
            assert w.query_start <= w.start < w.end
            assert w.query_start + timedelta(seconds=w.time_interval) >= w.end
            assert w.time_interval <= max_seconds


def test_sub_second_starts_are_floored_and_covered():
    start = utc(2026, 3, 2, 14, 0, 0) + timedelta(microseconds=250000)
    (window,) = plan_windows(start, start + timedelta(minutes=10), "UTC", 3600)
    assert window.body["segmentEndTime"] == "2026-03-02 14:00:00"
    assert window.body["timeInterval"] == 601


def test_naive_or_empty_ranges_are_refused():
    with pytest.raises(RingCXConfigError, match="timezone-aware"):
        plan_windows(datetime(2026, 3, 2), utc(2026, 3, 3), "UTC", 3600)
    with pytest.raises(RingCXConfigError, match="not before"):
        plan_windows(utc(2026, 3, 3), utc(2026, 3, 3), "UTC", 3600)
