"""Audit the archive once a day: find every due window that is not archived, re-archive it, prove it.

``ringcx_archive_audit`` judges the archive by its own window reports (the coverage ledger), not by
Airflow's run states, so it finds what the UI shows green: a catch-up run with 0 task instances (no
manifest, no report), a window left incomplete by a 403, an off-grid manual run. It re-archives each gap
through the archive operators with explicit bounds, refreshes the ledger again and fails, which notifies,
if anything due is still not archived::

    refresh_ledger ─► fetch_repair_windows[gap i] ─► plan_repairs ─► download_repairs[batch j]
        ─► report_repairs[gap i] ─► verify_coverage

It audits the last ``audit_lookback_days`` days (7) by default; trigger it with ``audit_from`` and
``audit_to`` (ISO-8601) for any range. Run settings (bucket, prefix, lag, connections) resolve as in the
live DAG, so it audits the live DAG's archive. Parse-time environment: ``RINGCX_AUDIT_CRON`` (default
``30 1 * * *``, 01:30 UTC), ``RINGCX_AUDIT_LOOKBACK_DAYS`` (7), ``RINGCX_INTERVAL_MINUTES`` (the live
grid, 15), ``RINGCX_AUDIT_MAX_REPAIRS`` (100 gaps a run), ``RINGCX_RETRIES`` and ``RINGCX_ALERT_FILE`` (a
``RingCXFileNotifier`` for failures). See :mod:`airflow_provider_ringcx.example_dags.audit`.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, CronTriggerTimetable

from airflow_provider_ringcx.example_dags import settings, shape
from airflow_provider_ringcx.example_dags.audit import audit_params, wire_audit
from airflow_provider_ringcx.example_dags.factory import ArchiveDagOptions, ringcx_archive_dag
from airflow_provider_ringcx.example_dags.per_sub_account import build_dags as per_sub_account
from airflow_provider_ringcx.example_dags.per_sub_account import for_sub_account
from airflow_provider_ringcx.hooks.bounds import MAX_WINDOW_LIMIT
from airflow_provider_ringcx.subaccounts.listing import SubAccount

DAG_ID = "ringcx_archive_audit"
DEFAULT_CRON = "30 1 * * *"


def build_dag(sub_account: SubAccount | None = None) -> DAG:
    """The audit DAG, shaped by the parse-time environment of the moment; ``sub_account``'s copy
    (``ringcx_archive_audit__<id>``, auditing that sub-account's archive) when given."""
    options = ArchiveDagOptions(
        dag_id=DAG_ID,
        schedule=CronTriggerTimetable(
            os.environ.get("RINGCX_AUDIT_CRON") or DEFAULT_CRON, timezone="UTC", interval=timedelta(days=1)
        ),
        start_date=shape.start_date(),
        catchup=False,
        max_active_runs=1,
        retries=shape.env_int("RINGCX_RETRIES", 3),
        rescan=False,
        max_window_seconds=MAX_WINDOW_LIMIT,  # a merged gap of a day: 8 calls where the connection allows
        budget_priority="history",  # repairs leave each budget window's reserve to the live DAG
        metadata_pool=settings.HISTORY_METADATA_POOL,  # a repair never holds the live DAG's pool slot
        download_pool=settings.HISTORY_DOWNLOAD_POOL,
        timeouts={"metadata": timedelta(minutes=120)},
        wire=wire_audit,
        extra_params=audit_params(
            lookback_days=shape.env_int("RINGCX_AUDIT_LOOKBACK_DAYS", 7),
            interval_minutes=shape.env_int("RINGCX_INTERVAL_MINUTES", 15),
            max_repairs=shape.env_int("RINGCX_AUDIT_MAX_REPAIRS", 100),
        ),
        description="Find every due RingCX window the archive lacks, re-archive it, fail if any remains",
        tags=("ringcx", "s3", "compliance", "audit"),
        doc_md=__doc__,
    )
    return ringcx_archive_dag(for_sub_account(options, sub_account))


def build_dags() -> dict[str, DAG]:
    """This DAG, or one per sub-account of ``[ringcx] sub_accounts`` (by DAG id)."""
    return per_sub_account(build_dag)


#: This module is a DAG file too (e.g. in a DAG folder that includes the installed package): Airflow
#: collects the DAGs among its globals.
globals().update(build_dags())
