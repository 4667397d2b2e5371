"""The coverage ledger (issue 15): is every window archived, from the archive's own reports?

Airflow's run states say what ran, not what the archive holds: a catch-up run with 0 task instances is
green and archived nothing. The ledger judges each window of a grid by the window reports in S3 only
(:mod:`.grid`), keeps one rolled-up object per sub-account and UTC day under ``{prefix}/_coverage/``
(:mod:`.rollup`), refreshes it incrementally (:mod:`.ledger`) and returns typed results with the gaps to
repair (:mod:`.result`). ``python -m airflow_provider_ringcx coverage`` is its command line (:mod:`.cli`).

    from airflow_provider_ringcx.coverage import CoverageGrid, CoverageLedger

    ledger = CoverageLedger(s3_client, "archive", "ringcx")
    result = ledger.refresh("12345", date(2026, 3, 1), date(2026, 3, 8), CoverageGrid())
    result.ok, result.counts(), [gap.as_dict() for gap in result.gaps()]
"""

from __future__ import annotations

from airflow_provider_ringcx.coverage.facts import ReportFact
from airflow_provider_ringcx.coverage.grid import (
    COMPLETE,
    INCOMPLETE,
    MISSING,
    OVERLAPPING,
    PENDING,
    PROBLEM_STATES,
    STATES,
    CoverageGrid,
    WindowCoverage,
)
from airflow_provider_ringcx.coverage.ledger import CoverageError, CoverageLedger
from airflow_provider_ringcx.coverage.result import CoverageResult, DayCoverage, Gap, RequestCounts
from airflow_provider_ringcx.coverage.rollup import DayRollup, RollupInvalid

__all__ = [
    "COMPLETE",
    "INCOMPLETE",
    "MISSING",
    "OVERLAPPING",
    "PENDING",
    "PROBLEM_STATES",
    "STATES",
    "CoverageError",
    "CoverageGrid",
    "CoverageLedger",
    "CoverageResult",
    "DayCoverage",
    "DayRollup",
    "Gap",
    "ReportFact",
    "RequestCounts",
    "RollupInvalid",
    "WindowCoverage",
]
