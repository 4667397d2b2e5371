"""Archive RingCentral RingCX call recordings into S3, one 15-minute window per run.

Each run archives its data interval shifted back by the settle lag (default 15 minutes):

    resolve_run ─► fetch_metadata_window ─► plan_downloads ─► download_segments   (batch 1/N · 14:00-14:04)
        └─► rescan_enabled ─► fetch_rescan_window ─► plan_late_downloads ─► download_late_segments
    everything ─► report_window  (runs even if batches failed; fails if anything expected is missing)

Run settings (bucket, prefix, lag, batch size, compliance options...) are DAG params; an empty param falls
back to the Airflow Variable ``ringcx_<name>``, then the environment variable ``RINGCX_<NAME>``, then the
default (see ``airflow_provider_ringcx.example_dags.settings``). The schedule, start date, catchup,
``max_active_runs`` and retries come from the environment only, because they shape the DAG at parse time.
Nothing here touches a connection or a Variable at parse time. The DAG is one call of
``airflow_provider_ringcx.example_dags.factory.ringcx_archive_dag``.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from airflow_provider_ringcx.example_dags import settings, shape
from airflow_provider_ringcx.example_dags.factory import ArchiveDagOptions, ringcx_archive_dag
from airflow_provider_ringcx.example_dags.per_sub_account import build_dags as per_sub_account
from airflow_provider_ringcx.example_dags.per_sub_account import for_sub_account
from airflow_provider_ringcx.subaccounts.listing import SubAccount

DAG_ID = "ringcx_recordings_to_s3"
#: Asset updated once per archived window: ``s3://{RINGCX_BUCKET}/{RINGCX_PREFIX}`` when the bucket is set
#: where the DAG is parsed, else ``ringcx://recordings-archive``; ``extra`` carries the window, the
#: sub-account and the report's counts (``airflow_provider_ringcx.assets``). Rebuilt at each parse.
RECORDINGS_ARCHIVE = settings.archive_asset()


def build_dag(sub_account: SubAccount | None = None) -> DAG:
    """The DAG, shaped by the parse-time environment of the moment (a DAG file calls this at each parse);
    ``sub_account``'s copy (``ringcx_recordings_to_s3__<id>``) when given."""
    options = ArchiveDagOptions(
        dag_id=DAG_ID,
        schedule=shape.build_timetable(),
        start_date=shape.start_date(),
        catchup=shape.env_flag("RINGCX_CATCHUP", True),
        max_active_runs=shape.env_int("RINGCX_MAX_ACTIVE_RUNS", 4),
        retries=shape.env_int("RINGCX_RETRIES", 3),
        retry_delay=timedelta(seconds=shape.env_int("RINGCX_RETRY_DELAY_SECONDS", 30)),
        asset=settings.archive_asset(),
        doc_md=__doc__,
    )
    return ringcx_archive_dag(for_sub_account(options, sub_account))


def build_dags() -> dict[str, DAG]:
    """This DAG, or one per sub-account of ``[ringcx] sub_accounts`` (by DAG id)."""
    return per_sub_account(build_dag)


#: This module is a DAG file too (e.g. in a DAG folder that includes the installed package): Airflow
#: collects the DAGs among its globals.
globals().update(build_dags())
