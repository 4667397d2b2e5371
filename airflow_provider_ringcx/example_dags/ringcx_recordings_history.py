"""Archive RingCX history one UTC day per run, only when asked: ``airflow backfill create``, the UI, REST.

The live DAG (``ringcx_recordings_to_s3``) archives 15-minute windows as they settle; a backfill through it
costs a run and at least one metadata call per 15 minutes (35,040 calls for a year, against the vendor's 9
per 15 minutes). This DAG archives the same recordings a day at a time:

- **No schedule.** Its timetable (:class:`~airflow_provider_ringcx.timetables.BackfillOnlyTimetable`) is a
  grid of UTC days that only backfills and grid-aligned manual runs walk; the scheduler never starts a run,
  so the DAG is created unpaused (a paused DAG's backfill runs never start). Catchup is off.
- **A day per run.** The run of logical date ``D`` (a UTC midnight) archives ``[D - lag, D + 1 day - lag)``:
  the day ``D``, shifted back by the settle lag like every window of the live DAG (default 15 minutes), so
  the history's days tile with the live DAG's windows. ``airflow backfill create --dag-id
  ringcx_recordings_history --from-date 2026-03-01 --to-date 2026-03-31`` archives March; a day is offered
  once it has ended.
- **Calls of the vendor's largest window.** The day is listed in calls of 10800 s (8 a day) wherever the
  connection extra ``max_window_seconds`` allows it (it is the account's cap: at its default 3600, 24 calls).
- **Same operators, same keys.** One manifest and one report per day, recordings under the same keys as the
  live DAG: a recording is archived once, by whichever DAG reaches it first; the other finds it
  ``already_archived``.
- **No late-arrival rescan.** A day that is long past is final.
- **History yields to live.** Its requests take ``budget_priority="history"``: they borrow a budget
  window's reserve only when it is back for the live DAG within one slot, and take no slot a live request
  waits for (see :mod:`~airflow_provider_ringcx.hooks.budget_rule`).
- **Batches.** 50 recordings per mapped download task by default: the documented busiest day, 40,000
  recordings, is 800 batches, under Airflow's 1,024 map cap (a busier day gets larger batches, at most
  1,000 of them).

Run settings resolve as in the live DAG (params > Variables ``ringcx_<name>`` > environment ``RINGCX_<NAME>``
> this DAG's defaults > built-in defaults), so both DAGs share a bucket, prefix and connections by default.
The parse-time environment: ``RINGCX_HISTORY_CRON`` (the grid, default ``0 0 * * *``: a UTC day per run),
``RINGCX_HISTORY_MAX_ACTIVE_RUNS`` (days at once, default 2),
``RINGCX_HISTORY_METADATA_TIMEOUT_MINUTES`` (a day's listing, default 120) and ``RINGCX_RETRIES``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG

from airflow_provider_ringcx.example_dags import settings, shape
from airflow_provider_ringcx.example_dags.factory import ArchiveDagOptions, ringcx_archive_dag
from airflow_provider_ringcx.example_dags.per_sub_account import build_dags as per_sub_account
from airflow_provider_ringcx.example_dags.per_sub_account import for_sub_account
from airflow_provider_ringcx.hooks.bounds import MAX_WINDOW_LIMIT
from airflow_provider_ringcx.subaccounts.listing import SubAccount
from airflow_provider_ringcx.timetables import BackfillOnlyTimetable

DAG_ID = "ringcx_recordings_history"
#: One run per UTC day: the grid backfills walk (nothing is scheduled). ``RINGCX_HISTORY_CRON`` changes it
#: (e.g. ``0 */6 * * *`` for 6-hour runs); it must fire at a fixed period, in UTC.
DEFAULT_CRON = "0 0 * * *"
#: Recordings per mapped download task: 40,000 a day is 800 batches, under the 1,024 map cap.
HISTORY_BATCH_SIZE = 50


def build_dag(sub_account: SubAccount | None = None) -> DAG:
    """The history DAG, shaped by the parse-time environment of the moment; ``sub_account``'s copy
    (``ringcx_recordings_history__<id>``) when given."""
    options = ArchiveDagOptions(
        dag_id=DAG_ID,
        schedule=BackfillOnlyTimetable(os.environ.get("RINGCX_HISTORY_CRON") or DEFAULT_CRON, "UTC"),
        start_date=datetime(2020, 1, 1, tzinfo=timezone.utc),  # only the earliest day offered; no catchup
        catchup=False,
        is_paused_upon_creation=False,  # it never runs by itself; paused, its backfills would never start
        rescan=False,
        max_window_seconds=MAX_WINDOW_LIMIT,
        budget_priority="history",
        metadata_pool=settings.HISTORY_METADATA_POOL,
        download_pool=settings.HISTORY_DOWNLOAD_POOL,
        max_active_runs=shape.env_int("RINGCX_HISTORY_MAX_ACTIVE_RUNS", 2),
        retries=shape.env_int("RINGCX_RETRIES", 3),
        defaults={"batch_size": HISTORY_BATCH_SIZE},
        timeouts={
            "metadata": timedelta(minutes=shape.env_int("RINGCX_HISTORY_METADATA_TIMEOUT_MINUTES", 120))
        },
        description="Archive RingCX call recordings into S3 one UTC day per backfill run (history)",
        tags=("ringcx", "s3", "compliance", "history"),
        doc_md=__doc__,
    )
    return ringcx_archive_dag(for_sub_account(options, sub_account))


def build_dags() -> dict[str, DAG]:
    """This DAG, or one per sub-account of ``[ringcx] sub_accounts`` (by DAG id)."""
    return per_sub_account(build_dag)


#: This module is a DAG file too (e.g. in a DAG folder that includes the installed package): Airflow
#: collects the DAGs among its globals.
globals().update(build_dags())
