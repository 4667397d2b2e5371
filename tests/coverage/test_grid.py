"""The classification rules, facts read from report bodies and the rollup's checks (pure: no S3)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.coverage.facts import ReportFact, clean_reason
from airflow_provider_ringcx.coverage.grid import (
    CoverageGrid,
    classify,
    day_totals,
    parse_duration,
    span_label,
)
from airflow_provider_ringcx.coverage.rollup import DayRollup, RollupInvalid, parse_rollup, rollup_put_args
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.report import Reconciliation, SegmentCheck, build_report
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.windows import Window
from tests.coverage.conftest import PREFIX, SUB, utc

GRID = CoverageGrid()
DAY = date(2026, 3, 2)
NOW = utc(2026, 3, 4)
Q = timedelta(minutes=15)


def fact(start, end, complete=True, **counts) -> ReportFact:
    key = keys.report_key(PREFIX, SUB, start, end)
    reasons = ("1 forbidden",) if not complete else ()
    return ReportFact(key, '"e"', "2026-03-03T00:00:00Z", start, end, complete, reasons=reasons, **counts)


def state(window: Window, facts, now=NOW, **kw) -> str:
    return classify(window, facts, GRID, now, **kw).state


def test_a_complete_daily_report_covers_every_quarter_hour() -> None:
    daily = fact(utc(2026, 3, 2), utc(2026, 3, 3))
    assert {state(w, [daily]) for w in GRID.windows(DAY)} == {"complete"}
    assert len(GRID.windows(DAY)) == 96


def test_the_union_of_complete_reports_covers_a_window_no_single_one_covers() -> None:
    window = Window(utc(2026, 3, 2, 18, 30), utc(2026, 3, 2, 18, 45))
    halves = [
        fact(utc(2026, 3, 2, 18, 25), utc(2026, 3, 2, 18, 40)),
        fact(utc(2026, 3, 2, 18, 40), utc(2026, 3, 2, 19)),
    ]
    assert state(window, halves) == "complete"
    assert state(window, halves[:1]) == "overlapping"  # partly covered by an off-grid report only


def test_incomplete_unless_a_complete_report_covers_it() -> None:
    window = Window(utc(2026, 3, 2, 10), utc(2026, 3, 2, 10, 15))
    bad = fact(window.start, window.end, complete=False, expected=3, archived=2, not_archived=1)
    result = classify(window, [bad], GRID, NOW)
    assert result.state == "incomplete"
    assert result.counts == {"expected": 3, "archived": 2, "not_archived": 1}
    assert "1 forbidden" in result.reasons[0]
    assert state(window, [bad, fact(utc(2026, 3, 2), utc(2026, 3, 3))]) == "complete"


def test_missing_says_whether_a_manifest_exists_and_pending_follows_the_clock() -> None:
    window = Window(utc(2026, 3, 2, 16, 30), utc(2026, 3, 2, 16, 45))
    assert "no manifest" in classify(window, [], GRID, NOW, manifests=[]).reasons[0]
    with_manifest = classify(window, [], GRID, NOW, manifests=[(window.start, window.end)])
    assert with_manifest.state == "missing"
    assert "a manifest but no report" in with_manifest.reasons[0]
    # due at end + lag = 17:00
    assert state(window, [], now=utc(2026, 3, 2, 16, 59)) == "pending"
    assert state(window, [], now=utc(2026, 3, 2, 17, 0)) == "missing"


def test_day_totals_count_overlapping_reports_once() -> None:
    daily = fact(utc(2026, 3, 2), utc(2026, 3, 3), archived=100, archived_bytes=10_000)
    quarter = fact(utc(2026, 3, 2), utc(2026, 3, 2, 0, 15), archived=3, archived_bytes=300)
    later = fact(utc(2026, 3, 3), utc(2026, 3, 3, 0, 15), archived=1, archived_bytes=7)
    assert day_totals([daily, quarter]) == (100, 10_000)
    assert day_totals([quarter, later]) == (4, 307)


def test_grid_and_duration_checks() -> None:
    assert parse_duration("15m") == Q
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration("900s") == Q
    assert parse_duration("30") == timedelta(minutes=30)
    with pytest.raises(RingCXConfigError, match="not a duration"):
        parse_duration("a quarter")
    with pytest.raises(RingCXConfigError, match="does not divide a day"):
        CoverageGrid(timedelta(minutes=7))
    assert CoverageGrid(timedelta(days=1)).per_day == 1
    assert GRID.aligned(utc(2026, 3, 2), utc(2026, 3, 3))
    assert not GRID.aligned(utc(2026, 3, 2, 18, 40), utc(2026, 3, 2, 18, 55))
    assert span_label(utc(2026, 3, 2), utc(2026, 3, 3)) == "00:00\u201324:00"


def _report(window: Window, checks: list[SegmentCheck], sub: str = SUB) -> bytes:
    report = build_report(
        window=window, sub_account_id=sub, bucket="b", manifest_key="m", key="k",
        reconciliation=Reconciliation(checks),
    )  # fmt: skip
    return json.dumps(report).encode()


def test_a_fact_keeps_counts_and_reasons_without_a_signed_query() -> None:
    window = Window(utc(2026, 3, 2, 10), utc(2026, 3, 2, 10, 15))
    checks = [
        SegmentCheck("d1", "s1", "k1", status="archived", size=500),
        SegmentCheck(
            "d2", "s2", "k2", status="forbidden", reason="403 at https://h.example/x?X-Amz-Signature=SECRET"
        ),
    ]
    got = ReportFact.from_report("k", '"e"', "t", window, _report(window, checks), SUB)
    assert (got.complete, got.expected, got.archived, got.not_archived, got.archived_bytes) == (
        False,
        2,
        1,
        1,
        500,
    )
    assert got.by_status == {"archived": 1, "forbidden": 1}
    assert "SECRET" not in json.dumps(got.as_dict())
    assert any("d2/s2: forbidden" in reason for reason in got.reasons)
    assert clean_reason("x" * 1000).endswith("…")
    assert len(clean_reason("x" * 1000)) == 240


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"complete": NaN}', "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"complete": "yes"}', "no boolean"),
    ],
)
def test_an_unreadable_report_is_an_incomplete_fact(body: bytes, why: str) -> None:
    window = Window(utc(2026, 3, 2, 10), utc(2026, 3, 2, 10, 15))
    got = ReportFact.from_report("k", '"e"', "t", window, body, SUB)
    assert not got.complete
    assert why in got.reasons[0]


def test_a_report_of_another_window_or_sub_account_is_not_trusted() -> None:
    window = Window(utc(2026, 3, 2, 10), utc(2026, 3, 2, 10, 15))
    other = Window(utc(2026, 3, 2, 11), utc(2026, 3, 2, 11, 15))
    good = [SegmentCheck("d1", "s1", "k1", status="archived", size=5)]
    assert not ReportFact.from_report("k", "e", "t", window, _report(other, good), SUB).complete
    assert not ReportFact.from_report("k", "e", "t", window, _report(window, good, sub="999"), SUB).complete
    assert ReportFact.from_report("k", "e", "t", window, _report(window, good), SUB).complete


def _rollup_body(**change) -> bytes:
    daily = fact(utc(2026, 3, 2), utc(2026, 3, 3))
    windows = tuple(classify(w, [daily], GRID, NOW) for w in GRID.windows(DAY))
    data = DayRollup(SUB, DAY, GRID, "2026-03-04T00:00:00Z", True, (daily,), windows=windows).as_dict()
    data.update(change)
    return json.dumps(data).encode()


def test_a_rollup_reads_back_and_a_garbled_one_is_refused() -> None:
    body = _rollup_body()
    facts, inherited, manifests, _, _ = parse_rollup(body, prefix=PREFIX, sub_account_id=SUB, day=DAY)
    assert [f.start for f in facts] == [utc(2026, 3, 2)]
    assert inherited == ()
    assert manifests is None
    stray = fact(utc(2026, 3, 2), utc(2026, 3, 3)).as_dict() | {
        "key": "elsewhere/window=20260302T0000Z_20260303T0000Z.json"
    }
    bad_fact = fact(utc(2026, 3, 2), utc(2026, 3, 3)).as_dict() | {"archived": -1}
    for body in (
        b"\x00garbage",
        _rollup_body(sub_account_id="999"),
        _rollup_body(date="2026-03-03"),
        _rollup_body(states=["done"] * 96),
        _rollup_body(reports=[stray]),
        _rollup_body(reports=[bad_fact]),
        _rollup_body(ledger_version=99),
    ):
        with pytest.raises(RollupInvalid):
            parse_rollup(body, prefix=PREFIX, sub_account_id=SUB, day=DAY)


def test_rollups_take_encryption_and_tags_but_never_object_lock_or_storage_class() -> None:
    options = S3WriteOptions(
        server_side_encryption="aws:kms", kms_key_id="k-1", storage_class="GLACIER_IR", tags={"team": "cc"},
        object_lock_mode="COMPLIANCE", object_lock_retention_days=30, object_lock_legal_hold=True,
    )  # fmt: skip
    assert rollup_put_args(options) == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "k-1",
        "Tagging": "team=cc",
    }
    assert rollup_put_args(None) == {}


def test_key_names_of_the_ledger_come_from_keys() -> None:
    expected = "ringcx/_coverage/sub_account=a%2Fb/date=2026-03-02.json"
    assert keys.coverage_key("ringcx/", "a/b", DAY) == expected
    assert keys.report_day_prefix("ringcx", SUB, DAY) == "ringcx/_reports/sub_account=12345/window=20260302T"
    assert keys.manifest_day_prefix(None, SUB, DAY) == "_manifests/sub_account=12345/window=20260302T"
    start, end = utc(2026, 3, 2, 14), utc(2026, 3, 2, 14, 15, 30)
    assert keys.parse_window_part(keys.window_part(start, end)) == (start, end)
    assert keys.report_key(PREFIX, SUB, start, end).startswith(keys.report_day_prefix(PREFIX, SUB, DAY))
    for text in ("20260302T1400Z", "20260302T1415Z_20260302T1400Z", "20261302T1400Z_20261302T1415Z", "x_y"):
        assert keys.parse_window_part(text) is None
