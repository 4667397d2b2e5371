"""The per-day rollup object: what it holds, how it is checked when read, how it is written.

One JSON object per sub-account and UTC day, at :func:`airflow_provider_ringcx.keys.coverage_key`
(``{prefix}/_coverage/sub_account={id}/date=YYYY-MM-DD.json``). It holds the **facts** (one
:class:`~airflow_provider_ringcx.coverage.facts.ReportFact` per report whose window starts that day, with
the listing's ETag and LastModified), the previous day's reports that reach into this day (``inherited``),
the manifests listed for missing windows, and what was derived from them for the grid of the refresh that
wrote it (``states``, ``problems``, ``counts``), for readers such as the UI or ``jq``.

**Read back, only the facts are trusted**, and only after every field is checked (:func:`parse_rollup`):
strict JSON, the expected version, sub-account and date, every fact's key under that day's report prefix.
Anything else raises :class:`RollupInvalid` and the ledger recomputes the day from a listing, as if the
rollup were absent. Whether a day is final, and every state, is derived again from the facts; a rollup
saying ``"final": true`` proves nothing by itself.

**Written as derived data, not as a record** (:func:`rollup_put_args`): the run's server-side encryption
(SSE-S3 or SSE-KMS and its key) and tags apply, because a rollup repeats report reasons and ids; Object
Lock retention, legal hold and the storage class do not. A rollup is rewritten whenever its day changes,
so a retained version per rewrite would only pile up, and infrequent-access classes bill 30 days minimum
per version; the reports and manifests it is derived from keep their own retention. (A bucket-level
*default* retention still applies to every PUT; under it each rewrite leaves a retained version.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from airflow_provider_ringcx import jsonutil, keys
from airflow_provider_ringcx.coverage.facts import FactError, ReportFact, window_of_key
from airflow_provider_ringcx.coverage.grid import STATES, CoverageGrid, WindowCoverage
from airflow_provider_ringcx.s3.options import S3WriteOptions

#: 2: a report complete only by allow_unarchived is an incomplete fact (``waived``); a version-1 rollup
#: may hold it as complete, so it is recomputed.
LEDGER_VERSION = 2
KIND = "ringcx-coverage-day"
#: A rollup larger than this is not read (96 quarter-hours plus re-runs take a few tens of kB).
MAX_ROLLUP_BYTES = 8 * 1024 * 1024
MAX_REPORTS_PER_DAY = 20_000


class RollupInvalid(ValueError):
    """A rollup object is not one the ledger wrote for this sub-account and day; it is recomputed."""


@dataclass(frozen=True)
class DayRollup:
    """One day of the ledger, as stored.

    :param reports: facts of the reports whose window starts this day, sorted by key.
    :param inherited: identities (key, ETag, LastModified) of the previous day's reports that reach into
        this day, as they were when the states were derived.
    :param manifests: windows (``START_END``) of the manifests listed for this day's missing windows;
        ``None`` when they were not listed.
    """

    sub_account_id: str
    day: date
    grid: CoverageGrid
    computed_at: str
    final: bool
    reports: tuple[ReportFact, ...]
    inherited: tuple[tuple[str, str, str], ...] = ()
    manifests: tuple[str, ...] | None = None
    windows: tuple[WindowCoverage, ...] = ()
    recordings: int = 0
    archived_bytes: int = 0
    off_grid: tuple[str, ...] = field(default=())

    def content(self) -> dict[str, Any]:
        """Everything but ``computed_at``: what decides whether the stored object must be rewritten."""
        data = self.as_dict()
        data.pop("computed_at")
        return data

    def as_dict(self) -> dict[str, Any]:
        counts = {state: sum(1 for w in self.windows if w.state == state) for state in STATES}
        return {
            "kind": KIND,
            "ledger_version": LEDGER_VERSION,
            "sub_account_id": self.sub_account_id,
            "date": self.day.isoformat(),
            "grid": self.grid.as_dict(),
            "computed_at": self.computed_at,
            "final": self.final,
            "counts": {
                **counts,
                "recordings": self.recordings,
                "bytes": self.archived_bytes,
                "reports": len(self.reports),
                "off_grid": len(self.off_grid),
            },
            "states": [w.state for w in self.windows],
            "problems": [w.as_dict() for w in self.windows if w.problem],
            "off_grid": list(self.off_grid),
            "reports": [fact.as_dict() for fact in self.reports],
            "inherited": [list(identity) for identity in self.inherited],
            "manifests": list(self.manifests) if self.manifests is not None else None,
        }

    def body(self) -> bytes:
        return jsonutil.dumps(self.as_dict(), sort_keys=True, separators=(",", ":")).encode()


def _need(condition: bool, what: str) -> None:
    if not condition:
        raise RollupInvalid(what)


def _strings(value: Any, size: int | None = None) -> bool:
    return (
        isinstance(value, list)
        and (size is None or len(value) == size)
        and all(isinstance(item, str) and len(item) <= 1024 for item in value)
    )


def parse_rollup(
    body: bytes, *, prefix: str | None, sub_account_id: str, day: date
) -> tuple[
    Sequence[ReportFact], tuple[tuple[str, str, str], ...], tuple[str, ...] | None, str, dict[str, Any]
]:
    """Check a stored rollup and return what is trusted of it: facts, inherited identities, manifests,
    ``computed_at``, and the whole decoded object (to compare with a fresh derivation).

    :raises RollupInvalid: anything is not as the ledger writes it (the message says what).
    """
    try:
        data = jsonutil.strict_loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RollupInvalid(f"not valid JSON: {err}") from None
    _need(isinstance(data, Mapping), "not a JSON object")
    _need(data.get("kind") == KIND and data.get("ledger_version") == LEDGER_VERSION, "unknown kind/version")
    _need(data.get("sub_account_id") == sub_account_id, "another sub-account's rollup")
    _need(data.get("date") == day.isoformat(), "another day's rollup")
    _need(isinstance(data.get("computed_at"), str) and len(data["computed_at"]) < 64, "no computed_at")
    grid = data.get("grid")
    _need(
        isinstance(grid, Mapping)
        and all(isinstance(grid.get(n), int) for n in ("interval_seconds", "lag_seconds")),
        "no grid",
    )
    _need(_strings(data.get("states")) and set(data["states"]) <= set(STATES), "states are not states")
    reports = data.get("reports")
    _need(isinstance(reports, list) and len(reports) <= MAX_REPORTS_PER_DAY, "reports is not a list")
    day_prefix = keys.report_day_prefix(prefix, sub_account_id, day)
    facts: list[ReportFact] = []
    for item in reports:
        try:
            fact = ReportFact.from_dict(item)
        except FactError as err:
            raise RollupInvalid(str(err)) from None
        _need(fact.key.startswith(day_prefix), f"report {fact.key!r} is not under {day_prefix}")
        facts.append(fact)
    _need(len({fact.key for fact in facts}) == len(facts), "a report is listed twice")
    inherited = data.get("inherited")
    _need(
        isinstance(inherited, list) and all(_strings(item, 3) for item in inherited),
        "inherited is not a list of [key, etag, last_modified]",
    )
    manifests = data.get("manifests")
    _need(
        manifests is None or (_strings(manifests) and all(keys.parse_window_part(m) for m in manifests)),
        "manifests is not a list of windows",
    )
    return (
        facts,
        tuple((item[0], item[1], item[2]) for item in inherited),
        tuple(manifests) if manifests is not None else None,
        data["computed_at"],
        dict(data),
    )


def manifest_windows(parts: Sequence[str] | None) -> list[tuple[datetime, datetime]] | None:
    if parts is None:
        return None
    return [bounds for part in parts if (bounds := keys.parse_window_part(part))]


def manifest_part(key: str) -> str | None:
    """``START_END`` of a window's own manifest key (rescan manifests are not a window's evidence)."""
    window = window_of_key(key, ".jsonl")
    return window.key if window else None


def rollup_put_args(options: S3WriteOptions | None) -> dict[str, Any]:
    """PutObject arguments of a rollup: the run's encryption and tags, never Object Lock or storage class
    (see the module docstring)."""
    if options is None:
        return {}
    derived = S3WriteOptions(
        server_side_encryption=options.server_side_encryption,
        kms_key_id=options.kms_key_id,
        tags=options.tags,
    )
    return derived.extra_args()
