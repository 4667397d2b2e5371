"""Coverage ledger over a simulated year: from scratch, then incrementally, counted in S3 requests.

A ``moto_server`` child process holds a year of synthetic window reports for one sub-account, written by
the real report code (:func:`~airflow_provider_ringcx.report.build_report` /
:func:`~airflow_provider_ringcx.report.write_report`) from a thread pool:

- ``quarter_days`` days (spread over the year) have 96 quarter-hour reports each, as the live DAG writes;
- every other day has one daily report, as the history DAG writes (a daily report covers its 96 grid
  windows);
- three days hold a problem each: a missing quarter-hour, an incomplete one (a 403), an off-grid manual run
  in place of two scheduled windows. Those days never become final, so every refresh lists them again.

Then, on the 15-minute grid, the ledger is computed (a) from scratch (no rollups: every day listed, every
report read, every rollup written), (b) incrementally (final days trusted from their rollup: the target is
at most 366 GETs and no PUT for the year), (c) read only (:meth:`CoverageLedger.read`) and (d) forced
(``--refresh``: every day listed again, nothing rewritten). Requests are counted on the wire by a botocore
hook on the client, and must agree with the ledger's own counts.

    python -m bench --only coverage [--quick] [--coverage-days 365] [--coverage-quarter-days 30]

``--coverage-quarter-days 365`` writes all 35,040 quarter-hour reports (several minutes on 2 cores).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.common import REGION, S3_KEY, S3_SECRET, Section, free_port, table, wait_http

SUB = "99999999"
PREFIX = "ringcx"
FIRST = date(2025, 1, 1)
Q = timedelta(minutes=15)
TARGET_GETS = 366


@contextmanager
def moto(workdir: Path) -> Any:
    """``moto_server`` on a free loopback port (its own process); stopped by PID afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    with open(workdir / "moto.log", "ab") as log:
        proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/", proc)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class Counted:
    """A boto3 S3 client with every operation counted by name (botocore ``before-call`` hook)."""

    def __init__(self, url: str) -> None:
        import boto3
        from botocore.config import Config

        self.client = boto3.client(
            "s3", endpoint_url=url, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
            region_name=REGION, config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
        )  # fmt: skip
        self.counts: Counter[str] = Counter()
        self.client.meta.events.register("before-call.s3", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _write(s3: Any, bucket: str, start: datetime, end: datetime, not_archived: tuple = ()) -> None:
    from airflow_provider_ringcx import keys
    from airflow_provider_ringcx.report import Reconciliation, SegmentCheck, build_report, write_report
    from airflow_provider_ringcx.windows import Window

    checks = [SegmentCheck(f"d{i}", f"s{i}", f"k{i}", status="archived", size=250_000) for i in range(3)]
    checks += [SegmentCheck("dx", "sx", "kx", status=s, reason=r) for s, r in not_archived]
    key = keys.report_key(PREFIX, SUB, start, end)
    report = build_report(
        window=Window(start, end), sub_account_id=SUB, bucket=bucket,
        manifest_key=keys.manifest_key(PREFIX, SUB, start, end), key=key,
        reconciliation=Reconciliation(checks),
    )  # fmt: skip
    write_report(s3, bucket, key, report)


def plan(days: int, quarter_days: int) -> tuple[list[tuple], set[date]]:
    """The reports to write ((start, end, not_archived) tuples) and the days that hold a problem."""
    every = max(1, days // max(1, quarter_days)) if quarter_days else days + 1
    quarter = {FIRST + timedelta(days=i) for i in range(0, days, every)} if quarter_days else set()
    quarter = set(sorted(quarter)[:quarter_days])
    ordered = sorted(quarter)
    problems = set(ordered[:3])
    jobs: list[tuple] = []
    for i in range(days):
        day = FIRST + timedelta(days=i)
        start = _utc(day)
        if day not in quarter:
            jobs.append((start, start + timedelta(days=1), ()))
            continue
        for index in range(96):
            begin = start + Q * index
            if day == ordered[0] and index == 40:
                continue  # missing: a run with 0 task instances
            if len(ordered) > 1 and day == ordered[1] and index == 41:
                jobs.append((begin, begin + Q, (("forbidden", "403 from the vendor"),)))
                continue
            if len(ordered) > 2 and day == ordered[2] and index in (74, 75):
                continue  # replaced by the off-grid run below
            jobs.append((begin, begin + Q, ()))
        if len(ordered) > 2 and day == ordered[2]:
            jobs.append(
                (start + timedelta(hours=18, minutes=40), start + timedelta(hours=18, minutes=55), ())
            )
    return jobs, problems


def bench(workdir: Path, *, days: int = 365, quarter_days: int = 30, workers: int = 16) -> Section:
    from airflow_provider_ringcx.coverage import CoverageGrid, CoverageLedger

    section = Section(f"Coverage ledger: {days} days ({quarter_days} of quarter-hours) in moto")
    with moto(workdir) as url:
        counted = Counted(url)
        s3, bucket = counted.client, "bench-coverage"
        s3.create_bucket(Bucket=bucket)
        jobs, problems = plan(days, quarter_days)
        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda job: _write(s3, bucket, *job), jobs))
        written = time.monotonic() - started
        end = FIRST + timedelta(days=days)
        now = _utc(end) + timedelta(days=2)
        ledger = CoverageLedger(s3, bucket, PREFIX, clock=lambda: now, workers=workers)
        rows, runs = [], {}
        for name, call in (
            ("(a) from scratch", lambda: ledger.refresh(SUB, FIRST, end, CoverageGrid())),
            ("(b) incremental", lambda: ledger.refresh(SUB, FIRST, end, CoverageGrid())),
            ("(c) read only", lambda: ledger.read(SUB, FIRST, end, CoverageGrid())),
            ("(d) forced (--refresh)", lambda: ledger.refresh(SUB, FIRST, end, CoverageGrid(), force=True)),
        ):
            counted.counts.clear()
            began = time.monotonic()
            result = call()
            wall = time.monotonic() - began
            wire = dict(counted.counts)
            own = result.requests.as_dict()
            names = {"get": "GetObject", "list": "ListObjectsV2", "put": "PutObject"}
            agree = own == {short: wire.get(name, 0) for short, name in names.items()}
            runs[name] = (result, wall, own, agree)
            rows.append((name, f"{wall:.2f}", own["get"], own["list"], own["put"], "yes" if agree else "NO"))
    counts = runs["(a) from scratch"][0].counts()
    section.details = [
        f"{len(jobs)} reports written in {written:.1f} s ({len(jobs) / max(written, 1e-9):.0f}/s, {workers} "
        f"threads); grid 15m over {days} days = {days * 96} windows: {counts['complete']} complete, "
        f"{counts['incomplete']} incomplete, {counts['missing']} missing, {counts['overlapping']} "
        f"overlapping, {counts['final_days']} final days; problem days: "
        + ", ".join(sorted(d.isoformat() for d in problems)),
        "",
        *table(rows, ("run", "wall s", "GET", "LIST", "PUT", "wire = ledger counts")),
    ]
    scratch, incremental = runs["(a) from scratch"], runs["(b) incremental"]
    read, forced = runs["(c) read only"], runs["(d) forced (--refresh)"]
    limit = min(TARGET_GETS, days + 1)
    section.add(
        "incremental: GETs", str(incremental[2]["get"]), f"<= {limit}", incremental[2]["get"] <= limit
    )
    section.add("incremental: PUTs", str(incremental[2]["put"]), "0", incremental[2]["put"] == 0)
    section.add(
        "incremental: LISTs",
        str(incremental[2]["list"]),
        f"<= {len(problems) + 1} (non-final days + the day before)",
        incremental[2]["list"] <= len(problems) + 1,
    )
    section.add("incremental: wall", f"{incremental[1]:.2f} s", "", None)
    section.add(
        "read only: GETs",
        str(read[2]["get"]),
        f"<= {limit}",
        read[2]["get"] <= limit and read[2]["list"] == 0,
    )
    section.add("from scratch: wall", f"{scratch[1]:.2f} s", "", None)
    ratio = scratch[2]["get"] / max(1, incremental[2]["get"])
    section.add("(a) / (b) GETs  scratch vs incremental", f"{ratio:.1f}x", "", None)
    section.add("forced refresh: PUTs", str(forced[2]["put"]), "0", forced[2]["put"] == 0)
    agree = all(r[3] for r in runs.values())
    section.add("request counts agree with the wire", "yes" if agree else "NO", "yes", agree)
    section.notes.append(
        "measured: quarter-hour reports on the sampled days, daily reports on the others (each covers its 96 "
        "grid windows); --coverage-quarter-days 365 writes all 35,040 quarter-hours"
    )
    return section
