"""The ledger against a real S3 server (moto) holding reports written by the real report code.

Requests are counted on the wire by the test's own client (botocore ``before-call`` hook), not only by the
ledger's counters, and both must agree.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.coverage import CoverageGrid, CoverageLedger
from airflow_provider_ringcx.s3.options import S3WriteOptions
from tests.coverage.conftest import PREFIX, SUB, Counting, put_manifest, put_report, utc

Q = timedelta(minutes=15)
D = date(2026, 3, 2)


def quarter_hours(s3: Any, bucket: str, day: date, *, skip: set[tuple[int, int]] = frozenset()) -> None:
    start = utc(day.year, day.month, day.day)
    for index in range(96):
        when = start + Q * index
        if (when.hour, when.minute) not in skip:
            put_report(s3, bucket, when, when + Q)


def ledger(counting: Counting, bucket: str, now, **kw) -> CoverageLedger:
    return CoverageLedger(counting.client, bucket, PREFIX, clock=lambda: now, **kw)


def rollup(s3: Any, bucket: str, day: date) -> dict:
    body = s3.get_object(Bucket=bucket, Key=keys.coverage_key(PREFIX, SUB, day))["Body"].read()
    return json.loads(body)


def test_every_state_from_real_reports(counting: Counting, bucket: str) -> None:
    s3 = counting.client
    skip = {(10, 0), (16, 30), (17, 0), (18, 30), (18, 45)}
    quarter_hours(s3, bucket, D, skip=skip)
    put_report(s3, bucket, utc(2026, 3, 2, 10), utc(2026, 3, 2, 10, 15), not_archived=[("forbidden", "403")])
    put_manifest(s3, bucket, utc(2026, 3, 2, 16, 30), utc(2026, 3, 2, 16, 45))  # the run stopped early
    # 17:00 has neither (the 0-task run); 18:40-18:55 is a manual off-grid run over 18:30 and 18:45
    put_report(s3, bucket, utc(2026, 3, 2, 18, 40), utc(2026, 3, 2, 18, 55))
    now = utc(2026, 3, 2, 21, 0)  # windows ending after 20:45 are not due yet (lag 15 minutes)

    result = ledger(counting, bucket, now).refresh(SUB, D, D + timedelta(days=1))

    day = result.days[0]
    states = {(w.start.hour, w.start.minute): w for w in day.windows}
    assert states[(10, 0)].state == "incomplete"
    assert states[(10, 0)].counts == {"expected": 3, "archived": 2, "not_archived": 1}
    assert "1 forbidden" in states[(10, 0)].reasons[0]
    assert states[(16, 30)].state == "missing"
    assert "a manifest but no report" in states[(16, 30)].reasons[0]
    assert states[(17, 0)].state == "missing"
    assert "0 task instances" in states[(17, 0)].reasons[0]
    assert states[(18, 30)].state == states[(18, 45)].state == "overlapping"
    assert "18:30\u201318:40 has no report" in states[(18, 30)].reasons[0]
    assert states[(20, 30)].state == "complete"  # a report already there is complete, due or not
    assert day.counts() == {"complete": 91, "incomplete": 1, "missing": 2, "pending": 0, "overlapping": 2}
    assert not result.ok
    assert day.rollup.off_grid == (
        keys.report_key(PREFIX, SUB, utc(2026, 3, 2, 18, 40), utc(2026, 3, 2, 18, 55)),
    )
    assert day.rollup.recordings == 2 * 93  # 92 on-grid + the off-grid report (it overlaps none of them)
    stored = rollup(s3, bucket, D)
    assert stored["states"][40] == "incomplete"
    assert [p["state"] for p in stored["problems"]] == [
        "incomplete",
        "missing",
        "missing",
        "overlapping",
        "overlapping",
    ]
    assert [g.as_dict()["key"] for g in result.gaps()] == [
        "20260302T1000Z_20260302T1015Z",
        "20260302T1630Z_20260302T1645Z",
        "20260302T1700Z_20260302T1715Z",
        "20260302T1830Z_20260302T1900Z",
    ]


def test_pending_follows_the_injected_clock(counting: Counting, bucket: str) -> None:
    quarter_hours(counting.client, bucket, D, skip={(h, m) for h in range(12, 24) for m in (0, 15, 30, 45)})
    result = ledger(counting, bucket, utc(2026, 3, 2, 14, 0)).refresh(SUB, D, D + timedelta(days=1))
    counts = result.days[0].counts()
    assert counts["complete"] == 48
    assert counts["missing"] == 7  # 12:00 .. 13:45 windows: end + 15 min <= 14:00
    assert counts["pending"] == 41
    assert not result.days[0].final
    later = ledger(counting, bucket, utc(2026, 3, 3, 1, 0)).read(SUB, D, D + timedelta(days=1))
    assert later.days[0].counts()["missing"] == 48  # read() judges the stored facts with its own clock


def test_a_daily_report_covers_its_quarter_hours_and_makes_the_day_final(
    counting: Counting, bucket: str
) -> None:
    put_report(counting.client, bucket, utc(2026, 3, 1), utc(2026, 3, 2), archived=500, size=10)
    book = ledger(counting, bucket, utc(2026, 3, 5))
    first = book.refresh(SUB, date(2026, 3, 1), D)
    assert first.days[0].counts()["complete"] == 96
    assert first.days[0].final
    assert first.counts()["recordings"] == 500
    counting.reset()
    again = book.refresh(SUB, date(2026, 3, 1), D)
    assert again.days[0].source == "trusted"
    # the day's rollup, and the day before's (absent: its reports are listed, for a run spanning midnight)
    assert counting.counts == {"GetObject": 2, "ListObjectsV2": 1}
    daily_grid = book.refresh(SUB, date(2026, 3, 1), D, CoverageGrid(timedelta(days=1)))
    assert daily_grid.days[0].counts()["complete"] == 1


def test_refresh_is_incremental(counting: Counting, bucket: str) -> None:
    s3 = counting.client
    days = [date(2026, 3, 1) + timedelta(days=i) for i in range(3)]
    for day in days:
        quarter_hours(s3, bucket, day, skip={(23, 45)})  # each day has a missing window: never final
    book = ledger(counting, bucket, utc(2026, 3, 10))
    book.refresh(SUB, date(2026, 2, 28), date(2026, 3, 4))  # builds the day-before's rollup too
    counting.reset()
    result = book.refresh(SUB, days[0], date(2026, 3, 4))
    assert counting.counts == {"GetObject": 4, "ListObjectsV2": 3}  # 1 LIST per day, no report read, 0 PUT
    assert result.requests.as_dict() == {"get": 4, "list": 3, "put": 0}
    assert [d.written for d in result.days] == [False, False, False]

    # a re-run rewrites one report (now incomplete): only that report is read, only its day rewritten
    put_report(s3, bucket, utc(2026, 3, 2, 5), utc(2026, 3, 2, 5, 15), not_archived=[("missing", "404")])
    counting.reset()
    result = book.refresh(SUB, days[0], date(2026, 3, 4))
    assert counting.counts == {"GetObject": 5, "ListObjectsV2": 3, "PutObject": 1}
    assert [d.written for d in result.days] == [False, True, False]
    assert result.days[1].counts()["incomplete"] == 1

    # --refresh lists final days too, and still writes nothing that did not change
    put_report(s3, bucket, utc(2026, 3, 1, 23, 45), utc(2026, 3, 2))
    book.refresh(SUB, days[0], date(2026, 3, 4))
    assert book.refresh(SUB, days[0], date(2026, 3, 4)).days[0].source == "trusted"
    counting.reset()
    forced = book.refresh(SUB, days[0], date(2026, 3, 4), force=True)
    assert forced.days[0].source == "listed"
    # forced: the reports of the 3 days and of the day before, and the manifests of the 2 days that still
    # have a missing window (23:45)
    assert counting.counts["ListObjectsV2"] == 4 + 2
    assert "PutObject" not in counting.counts


def test_a_garbled_or_hostile_rollup_is_recomputed(counting: Counting, bucket: str) -> None:
    s3 = counting.client
    quarter_hours(s3, bucket, D, skip={(9, 0)})
    book = ledger(counting, bucket, utc(2026, 3, 5))
    key = keys.coverage_key(PREFIX, SUB, D)
    book.refresh(SUB, D, D + timedelta(days=1))
    honest = rollup(s3, bucket, D)
    forged = dict(honest, final=True, states=["complete"] * 96, problems=[])
    forged["reports"] = [
        dict(
            honest["reports"][0],
            key=f"{PREFIX}/_reports/sub_account={SUB}/window=20260302T0900Z_20260302T0915Z.x",
        )
    ]
    for body in (
        b'{"kind": ',
        json.dumps(forged).encode(),
        json.dumps(dict(honest, sub_account_id="9")).encode(),
    ):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        counting.reset()
        result = book.refresh(SUB, D, D + timedelta(days=1))
        assert result.days[0].counts()["missing"] == 1
        assert counting.counts["ListObjectsV2"] >= 1
        assert counting.counts["PutObject"] == 1
        assert rollup(s3, bucket, D)["problems"][0]["start"] == "2026-03-02T09:00:00Z"


def test_a_report_spanning_midnight_counts_for_the_next_day(counting: Counting, bucket: str) -> None:
    s3 = counting.client
    nxt = date(2026, 3, 3)
    quarter_hours(s3, bucket, nxt, skip={(0, 0), (0, 15)})
    put_report(s3, bucket, utc(2026, 3, 2, 23, 45), utc(2026, 3, 3, 0, 15))  # covers 00:00-00:15
    put_report(s3, bucket, utc(2026, 3, 2, 23, 50), utc(2026, 3, 3, 0, 20))  # covers 00:15-00:20 only
    result = ledger(counting, bucket, utc(2026, 3, 9)).refresh(SUB, nxt, nxt + timedelta(days=1))
    first, second = result.days[0].windows[:2]
    assert first.state == "complete"
    assert second.state == "overlapping"
    assert "00:20\u201300:30 has no report" in second.reasons[0]


def test_a_year_reads_in_at_most_366_gets(counting: Counting, bucket: str) -> None:
    s3 = counting.client
    first = date(2025, 1, 1)
    days = [first + timedelta(days=i) for i in range(365)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda d: put_report(
                    s3, bucket, utc(d.year, d.month, d.day), utc(d.year, d.month, d.day) + timedelta(days=1)
                ),
                days,
            )
        )
    book = ledger(counting, bucket, utc(2026, 3, 1))
    built = book.refresh(SUB, first, date(2026, 1, 1))
    assert built.counts()["complete"] == 365 * 96
    assert built.counts()["final_days"] == 365
    counting.reset()
    again = book.refresh(SUB, first, date(2026, 1, 1))
    # 365 rollups and the day before the range's (absent: so its reports are listed, for a run spanning
    # midnight into the range); no report is read, nothing is written
    assert counting.counts == {"GetObject": 366, "ListObjectsV2": 1}
    assert again.ok
    counting.reset()
    book.read(SUB, first, date(2026, 1, 1))
    assert counting.counts == {"GetObject": 366}


def test_rollups_are_encrypted_and_not_locked_in_a_worm_bucket(
    counting: Counting, locked_bucket: str
) -> None:
    s3 = counting.client
    put_report(s3, locked_bucket, utc(2026, 3, 1), utc(2026, 3, 2))
    options = S3WriteOptions(
        server_side_encryption="AES256", object_lock_mode="GOVERNANCE", object_lock_retention_days=30
    )
    book = ledger(counting, locked_bucket, utc(2026, 3, 5), options=options)
    book.refresh(SUB, date(2026, 3, 1), D)
    head = s3.head_object(Bucket=locked_bucket, Key=keys.coverage_key(PREFIX, SUB, date(2026, 3, 1)))
    assert head["ServerSideEncryption"] == "AES256"
    assert "ObjectLockMode" not in head
    assert "ObjectLockRetainUntilDate" not in head


def test_gaps_merge_missing_stretches_but_not_incomplete_windows(counting: Counting, bucket: str) -> None:
    s3 = counting.client
    put_report(s3, bucket, utc(2026, 3, 2, 0), utc(2026, 3, 2, 0, 15), not_archived=[("failed", "x")])
    put_report(s3, bucket, utc(2026, 3, 2, 0, 15), utc(2026, 3, 2, 0, 30), not_archived=[("failed", "y")])
    result = ledger(counting, bucket, utc(2026, 3, 9)).refresh(SUB, D, D + timedelta(days=3))
    gaps = [g.as_dict() for g in result.gaps()]
    assert [(g["start"], g["end"], g["state"], g["windows"]) for g in gaps] == [
        ("2026-03-02T00:00:00Z", "2026-03-02T00:15:00Z", "incomplete", 1),
        ("2026-03-02T00:15:00Z", "2026-03-02T00:30:00Z", "incomplete", 1),
        ("2026-03-02T00:30:00Z", "2026-03-03T00:00:00Z", "missing", 94),
        ("2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z", "missing", 96),
        ("2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z", "missing", 96),
    ]
    assert len(result.gaps(max_span=timedelta(hours=6), limit=3)) == 3
    assert len(result.gaps(max_span=timedelta(hours=6))) == 2 + 4 + 4 + 4
    assert len(json.dumps(gaps)) < 2000  # small enough for an XCom


def test_a_report_from_an_unverified_manifest_is_not_complete(counting: Counting, bucket: str) -> None:
    """``allow_unverified_manifest`` lets a report say complete from a manifest nothing vouched for: the
    ledger does not count that as proof, so the window is a gap the audit re-archives."""
    s3 = counting.client
    quarter_hours(s3, bucket, D, skip={(9, 0)})
    unverified = {"key": "m", "verified": False}
    put_report(s3, bucket, utc(2026, 3, 2, 9), utc(2026, 3, 2, 9, 15), manifest=unverified)
    result = ledger(counting, bucket, utc(2026, 3, 3, 6)).refresh(SUB, D, D + timedelta(days=1))
    (window,) = [w for w in result.days[0].windows if (w.start.hour, w.start.minute) == (9, 0)]
    assert window.state == "incomplete"
    assert "unverified manifest" in window.reasons[0]
    assert not result.ok
    assert [g.as_dict()["key"] for g in result.gaps()] == ["20260302T0900Z_20260302T0915Z"]


def test_a_report_complete_only_by_a_waiver_is_incomplete_waived(counting: Counting, bucket: str) -> None:
    """``allow_unarchived`` keeps the report task green (the report says complete) while a segment is not
    archived: the ledger does not count the waiver as coverage. The window is incomplete, its first reason
    says ``waived``, and it is a gap the audit re-archives."""
    s3 = counting.client
    quarter_hours(s3, bucket, D, skip={(9, 0), (10, 0)})
    start = utc(2026, 3, 2, 9)
    waived = put_report(
        s3, bucket, start, start + timedelta(minutes=15),
        not_archived=[("forbidden", "403 from RingCX")], allow_unarchived=["forbidden"],
    )  # fmt: skip
    report = json.loads(s3.get_object(Bucket=bucket, Key=waived)["Body"].read())
    assert report["complete"] is True  # what the report says
    put_report(s3, bucket, utc(2026, 3, 2, 10), utc(2026, 3, 2, 10, 15), allow_unarchived=["forbidden"])
    result = ledger(counting, bucket, utc(2026, 3, 3, 6)).refresh(SUB, D, D + timedelta(days=1))
    by_hour = {w.start.hour: w for w in result.days[0].windows if w.start.minute == 0}
    assert by_hour[9].state == "incomplete"
    assert "waived" in by_hour[9].reasons[0]
    assert "allow_unarchived" in by_hour[9].reasons[0]
    assert "1 forbidden" in by_hour[9].reasons[0]
    assert by_hour[10].state == "complete"  # a waiver that waived nothing changes nothing
    assert not result.ok
    assert [g.as_dict()["key"] for g in result.gaps()] == ["20260302T0900Z_20260302T0915Z"]
    # the stored rollup keeps the fact as incomplete: a second read does not trust the report again
    again = ledger(counting, bucket, utc(2026, 3, 3, 6)).refresh(SUB, D, D + timedelta(days=1))
    assert [g.as_dict()["key"] for g in again.gaps()] == ["20260302T0900Z_20260302T0915Z"]


def test_a_forced_refresh_trusts_no_fact_of_a_forged_rollup(counting: Counting, bucket: str) -> None:
    """Someone who can write ``_coverage/`` (rollups are rewritten, so never locked) marks an incomplete
    window's fact complete and keeps the report's real ETag and LastModified (both visible in a LIST). The
    incremental refresh reuses a fact whose listing identity agrees; the forced one (the audit DAG's, CLI
    ``--refresh``) reads every listed report again, so it says incomplete and rewrites the rollup."""
    s3 = counting.client
    quarter_hours(s3, bucket, D, skip={(9, 0)})
    put_report(s3, bucket, utc(2026, 3, 2, 9), utc(2026, 3, 2, 9, 15), not_archived=[("forbidden", "403")])
    book = ledger(counting, bucket, utc(2026, 3, 5))
    assert book.refresh(SUB, D, D + timedelta(days=1)).days[0].counts()["incomplete"] == 1
    honest = rollup(s3, bucket, D)
    forged = json.loads(json.dumps(honest))
    for fact in forged["reports"]:
        if fact["start"] == "2026-03-02T09:00:00Z":
            fact.update(complete=True, not_archived=0, by_status={"archived": fact["archived"]}, reasons=[])
    s3.put_object(Bucket=bucket, Key=keys.coverage_key(PREFIX, SUB, D), Body=json.dumps(forged).encode())
    counting.reset()
    result = book.refresh(SUB, D, D + timedelta(days=1), force=True)
    assert result.days[0].counts()["incomplete"] == 1
    assert counting.counts["GetObject"] >= 96  # every report of the day read again
    assert rollup(s3, bucket, D)["counts"]["incomplete"] == 1  # the forged rollup is rewritten
