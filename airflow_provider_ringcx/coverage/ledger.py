"""The coverage ledger: per-day rollups of the archive's window reports, refreshed incrementally.

Which requests a refresh makes, per day of the range (days are UTC, ``end`` excluded):

- **1 GET** of the day's rollup (:mod:`~airflow_provider_ringcx.coverage.rollup`).
- A **final** day is trusted as it is: no LIST. A day is final when the union of its complete reports
  covers the whole day and the day is due (its end + lag has passed); nothing a later run does can make it
  less archived, short of rewriting a report as incomplete; ``force`` (CLI ``--refresh``) lists final days
  too, and so sees that and any later report of a final day (an off-grid re-run).
- Any other day (or every day with ``force``): **1 LIST** of the reports whose window starts that day
  (``keys.report_day_prefix``, paginated by 1,000 keys), then a GET of each report whose ETag or
  LastModified differs from the rollup's fact of it, or that is new. A day becomes stale exactly when such
  a difference exists: a report written, rewritten or deleted since.
- With ``force`` nothing of the stored rollup is trusted: every listed report is read again (a GET each).
  A rollup is rewritten as windows land, so it cannot be locked like the reports, and whoever can write
  ``_coverage/`` could keep a report's real ETag and LastModified (a LIST shows both) beside a fact that
  says complete; the audit DAG refreshes with ``force``, so what it repairs (and the rollup it writes) is
  decided by the reports alone. The cost is the reports' GETs of the audited days (96 a day on the
  15-minute grid).
- A LIST of the day's manifests only when it has due ``missing`` windows that were not yet judged missing
  (or with ``force``): it tells "the run stopped after fetching metadata" from "no run at all". A manifest
  written later for a window already judged missing is seen with ``force``.
- **1 PUT** of the rollup only when its content (facts and everything derived) changed.

A report whose window starts on the previous day and ends inside this one (an off-grid 23:50-00:05 run)
counts for this day too: the previous day's facts are at hand while walking the range in order, and the
day before the range costs one more GET (so a year reads in 366 GETs), and a LIST when it has no rollup.
Reports longer than a day that start earlier still are not seen (the history DAG's windows are one day).

:meth:`CoverageLedger.read` makes GETs only (rollups), and derives the states again with the clock: a
window pending when the rollup was written is ``missing`` now if no report was listed for it then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.coverage.facts import MAX_REPORT_BYTES, ReportFact, window_of_key
from airflow_provider_ringcx.coverage.grid import (
    COMPLETE,
    DAY,
    MISSING,
    CoverageGrid,
    WindowCoverage,
    classify,
    day_start,
    day_totals,
    iso,
    uncovered,
)
from airflow_provider_ringcx.coverage.result import CoverageResult, DayCoverage, RequestCounts
from airflow_provider_ringcx.coverage.rollup import (
    MAX_ROLLUP_BYTES,
    DayRollup,
    RollupInvalid,
    manifest_part,
    manifest_windows,
    parse_rollup,
    rollup_put_args,
)
from airflow_provider_ringcx.coverage.store import ArchiveStore, CoverageError
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.models import parse_timestamp
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.windows import Window

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
#: The longest range one call walks (ten years of days).
MAX_DAYS = 3660
#: Rollups fetched ahead, in parallel (a year's rollups are a few MB in all).
PREFETCH = 64


@dataclass
class _Stored:
    facts: Sequence[ReportFact]
    inherited: tuple[tuple[str, str, str], ...]
    manifests: tuple[str, ...] | None
    computed_at: str
    content: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Listed:
    key: str
    etag: str
    last_modified: str
    window: Window


class CoverageLedger:
    """Coverage of one archive (bucket + prefix), built from its reports and kept as per-day rollups.

    :param s3_client: a boto3 S3 client (the ``aws`` connection's).
    :param bucket: the archive bucket.
    :param prefix: the archive prefix (as the DAGs' ``prefix``).
    :param clock: returns the current time (aware); injectable for tests and for "as of" reports.
    :param options: the run's write options; rollups take only its encryption and tags
        (:func:`~airflow_provider_ringcx.coverage.rollup.rollup_put_args`).
    :param workers: concurrent report GETs (the first build of a day reads every report).
    """

    def __init__(
        self,
        s3_client: S3Client,
        bucket: str,
        prefix: str | None,
        *,
        clock: Callable[[], datetime] | None = None,
        options: S3WriteOptions | None = None,
        workers: int = 8,
    ) -> None:
        self.store = ArchiveStore(s3_client, bucket)
        self.bucket = bucket
        self.prefix = keys.normalize_prefix(prefix)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.put_args = rollup_put_args(options)
        self.workers = max(1, workers)

    # --- public API -----------------------------------------------------------------------------------
    def refresh(
        self,
        sub_account_id: str,
        start: date,
        end: date,
        grid: CoverageGrid | None = None,
        *,
        force: bool = False,
    ) -> CoverageResult:
        """Bring the rollups of ``[start, end)`` up to date with the archive and return the coverage.

        :param force: list every day, final or not (CLI ``--refresh``).
        :raises RingCXConfigError: an empty or too long range.
        :raises CoverageError: S3 refused a request (the message names the key and the permission).
        """
        grid, days = grid or CoverageGrid(), _days(start, end)
        self.store.requests = RequestCounts()
        now = self.clock()
        with ThreadPoolExecutor(self.workers) as pool:
            previous = self._previous_facts(sub_account_id, start - DAY, force=force, pool=pool)
            out = []
            for day, stored in self._rollups(sub_account_id, days, pool):
                covered = self._refresh_day(
                    sub_account_id, day, stored, grid, now, previous, force=force, pool=pool
                )
                previous = covered.rollup.reports
                out.append(covered)
        return CoverageResult(sub_account_id, start, end, grid, now, tuple(out), self.store.requests)

    def read(
        self, sub_account_id: str, start: date, end: date, grid: CoverageGrid | None = None
    ) -> CoverageResult:
        """The coverage as the rollups hold it (GETs only, no LIST or PUT), derived again with the clock.

        A day without a valid rollup comes back with ``source="absent"`` (no facts: ``missing`` or
        ``pending``); run :meth:`refresh` to build it.
        """
        grid, days = grid or CoverageGrid(), _days(start, end)
        self.store.requests = RequestCounts()
        now = self.clock()
        out = []
        with ThreadPoolExecutor(self.workers) as pool:
            days_stored = list(self._rollups(sub_account_id, [start - DAY, *days], pool))
        before = days_stored.pop(0)[1]
        previous: Sequence[ReportFact] = before.facts if before else ()
        for day, stored in days_stored:
            facts = stored.facts if stored else ()
            manifests = stored.manifests if stored else None
            rollup = self._derive(sub_account_id, day, grid, now, facts, previous, manifests)
            out.append(DayCoverage(rollup, "cached" if stored else "absent"))
            previous = facts
        return CoverageResult(sub_account_id, start, end, grid, now, tuple(out), self.store.requests)

    # --- one day --------------------------------------------------------------------------------------
    def _rollups(
        self, sub: str, days: Sequence[date], pool: ThreadPoolExecutor
    ) -> Iterator[tuple[date, _Stored | None]]:
        """Each day with its stored rollup, fetched :data:`PREFETCH` days at a time (GETs in parallel)."""
        for index in range(0, len(days), PREFETCH):
            chunk = days[index : index + PREFETCH]
            yield from zip(chunk, pool.map(lambda day: self._get_rollup(sub, day), chunk), strict=True)

    def _refresh_day(
        self,
        sub: str,
        day: date,
        stored: _Stored | None,
        grid: CoverageGrid,
        now: datetime,
        previous: Sequence[ReportFact],
        *,
        force: bool,
        pool: ThreadPoolExecutor,
    ) -> DayCoverage:
        inherited = _reaching(previous, day)
        if stored is not None and not force and _final(day, grid, now, [*stored.facts, *inherited]):
            facts, source = stored.facts, "trusted"
        else:
            listing = self._list_reports(sub, day)
            known = {fact.key: fact for fact in stored.facts} if stored and not force else {}
            facts = self._read_facts(sub, listing, known, pool)
            source = "listed"
        manifests = stored.manifests if stored else None
        rollup = self._derive(sub, day, grid, now, facts, previous, manifests)
        missing = [w for w in rollup.windows if w.state == MISSING]
        if missing and (manifests is None or force or _newly_due(missing, grid, stored)):
            manifests = self._list_manifests(sub, day)
            rollup = self._derive(sub, day, grid, now, facts, previous, manifests)
        written = False
        fresh = {**rollup.as_dict(), "computed_at": None}  # JSON types only: equal to its decoded body
        if stored is None or fresh != stored.content:
            self._put_rollup(sub, rollup)
            written = True
        elif stored is not None:
            rollup = _with_computed_at(rollup, stored.computed_at)
        return DayCoverage(rollup, source, written)

    def _derive(
        self,
        sub: str,
        day: date,
        grid: CoverageGrid,
        now: datetime,
        facts: Sequence[ReportFact],
        previous: Sequence[ReportFact],
        manifests: tuple[str, ...] | None,
    ) -> DayRollup:
        inherited = _reaching(previous, day)
        windows = grid.windows(day)
        relevant: list[list[ReportFact]] = [[] for _ in windows]
        first = day_start(day)
        for fact in [*facts, *inherited]:  # each fact is offered to the windows it overlaps only
            low = max(0, int((fact.start - first) // grid.interval))
            high = min(len(windows), -int(-(fact.end - first) // grid.interval))
            for index in range(low, high):
                relevant[index].append(fact)
        spans = manifest_windows(manifests)
        states = tuple(
            classify(window, relevant[i], grid, now, manifests=spans) for i, window in enumerate(windows)
        )
        recordings, size = day_totals(facts)
        return DayRollup(
            sub_account_id=sub,
            day=day,
            grid=grid,
            computed_at=iso(now),
            final=_final(day, grid, now, [*facts, *inherited]),
            reports=tuple(sorted(facts, key=lambda f: f.key)),
            inherited=tuple(sorted(f.identity for f in inherited)),
            manifests=manifests,
            windows=states,
            recordings=recordings,
            archived_bytes=size,
            off_grid=tuple(sorted(f.key for f in facts if not grid.aligned(f.start, f.end))),
        )

    def _previous_facts(
        self, sub: str, day: date, *, force: bool, pool: ThreadPoolExecutor
    ) -> Sequence[ReportFact]:
        """Facts of the day before the range that reach past its end (1 GET; a LIST if it has no rollup)."""
        stored = self._get_rollup(sub, day)
        if stored is not None and not force:
            return _reaching(stored.facts, day + DAY)
        reaching = [item for item in self._list_reports(sub, day) if item.window.end > day_start(day + DAY)]
        return self._read_facts(sub, reaching, {}, pool)  # no rollup, or forced: read them

    # --- S3 ---------------------------------------------------------------------------------------------
    def _get_rollup(self, sub: str, day: date) -> _Stored | None:
        key = keys.coverage_key(self.prefix, sub, day)
        body = self.store.get(key, MAX_ROLLUP_BYTES)
        if body is None:
            return None
        if isinstance(body, str):
            log.warning("coverage rollup s3://%s/%s is %s; recomputing the day", self.bucket, key, body)
            return None
        try:
            facts, inherited, manifests, computed_at, data = parse_rollup(
                body, prefix=self.prefix, sub_account_id=sub, day=day
            )
        except RollupInvalid as err:
            log.warning(
                "coverage rollup s3://%s/%s is invalid (%s); recomputing the day", self.bucket, key, err
            )
            return None
        content = {**data, "computed_at": None}
        return _Stored(facts, inherited, manifests, computed_at, content)

    def _list_reports(self, sub: str, day: date) -> list[_Listed]:
        found = []
        for item in self.store.list(keys.report_day_prefix(self.prefix, sub, day)):
            window = window_of_key(item["Key"])
            if window is not None and window.start.date() == day:
                modified = item.get("LastModified")
                stamp = iso(modified) if isinstance(modified, datetime) else str(modified or "")
                found.append(_Listed(item["Key"], str(item.get("ETag", "")), stamp, window))
        return found

    def _list_manifests(self, sub: str, day: date) -> tuple[str, ...]:
        parts = {
            manifest_part(item["Key"])
            for item in self.store.list(keys.manifest_day_prefix(self.prefix, sub, day))
        }
        return tuple(sorted(part for part in parts if part))

    def _read_facts(
        self, sub: str, listing: Sequence[_Listed], known: dict[str, ReportFact], pool: ThreadPoolExecutor
    ) -> list[ReportFact]:
        """Facts of the listed reports: the rollup's where the ETag and LastModified agree, else a GET."""

        def one(item: _Listed) -> ReportFact:
            old = known.get(item.key)
            if old is not None and (old.etag, old.last_modified) == (item.etag, item.last_modified):
                return old
            body = self.store.get(item.key, MAX_REPORT_BYTES)
            if body is None:  # deleted between the LIST and the GET: it will not be listed next time
                return ReportFact.unreadable(item.key, item.etag, item.last_modified, item.window, "deleted")
            if isinstance(body, str):
                return ReportFact.unreadable(item.key, item.etag, item.last_modified, item.window, body)
            return ReportFact.from_report(item.key, item.etag, item.last_modified, item.window, body, sub)

        return list(pool.map(one, listing))

    def _put_rollup(self, sub: str, rollup: DayRollup) -> None:
        self.store.put_json(keys.coverage_key(self.prefix, sub, rollup.day), rollup.body(), self.put_args)


def _days(start: date, end: date) -> list[date]:
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise RingCXConfigError("coverage ranges are whole UTC days: pass dates, not datetimes")
    count = (end - start).days
    if count <= 0 or count > MAX_DAYS:
        raise RingCXConfigError(
            f"coverage range {start} - {end} (end excluded) must hold 1 to {MAX_DAYS} days; e.g. "
            "--start 2026-03-01 --end 2026-03-08 for the first week of March"
        )
    return [start + timedelta(days=i) for i in range(count)]


def _reaching(facts: Sequence[ReportFact], day: date) -> list[ReportFact]:
    first = day_start(day)
    return [fact for fact in facts if fact.end > first]


def _final(day: date, grid: CoverageGrid, now: datetime, facts: Sequence[ReportFact]) -> bool:
    first = day_start(day)
    if first + DAY + grid.lag > now:
        return False
    return not uncovered(first, first + DAY, [(f.start, f.end) for f in facts if f.complete])


def _newly_due(missing: Sequence[WindowCoverage], grid: CoverageGrid, stored: _Stored | None) -> bool:
    """A missing window that was not yet due when the stored rollup was derived (its reason is new)."""
    if stored is None:
        return True
    try:
        then = parse_timestamp(stored.computed_at)
    except ValueError:
        return True
    return then is None or any(w.end + grid.lag > then for w in missing)


def _with_computed_at(rollup: DayRollup, computed_at: str) -> DayRollup:
    return replace(rollup, computed_at=computed_at)


__all__ = ["COMPLETE", "CoverageError", "CoverageLedger"]
