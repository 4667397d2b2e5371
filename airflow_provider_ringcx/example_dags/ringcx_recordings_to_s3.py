"""Archive RingCentral RingCX call recordings into S3, one 15-minute window per run.

Each run archives its data interval shifted back by the settle lag (default 15 minutes):

    resolve_run ─► fetch_metadata_window ─► plan_downloads ─► download_segments   (batch 1/N · 14:00-14:04)
        └─► rescan_enabled ─► fetch_rescan_window ─► plan_late_downloads ─► download_late_segments
    everything ─► report_window  (runs even if batches failed; fails if anything expected is missing)

Run settings (bucket, prefix, lag, batch size, compliance options...) are DAG params; an empty param falls
back to the Airflow Variable ``ringcx_<name>``, then the environment variable ``RINGCX_<NAME>``, then the
default (see ``airflow_provider_ringcx.dagconfig``). The schedule, start date, catchup, ``max_active_runs``
and retries come from the environment only, because they shape the DAG at parse time. Nothing here touches
a connection or a Variable at parse time.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Asset, Param, get_current_context, task

from airflow_provider_ringcx.example_dags import settings as dagconfig
from airflow_provider_ringcx.example_dags import tasks as pipeline
from airflow_provider_ringcx.links import RingCXReportLink, attach_links
from airflow_provider_ringcx.operators.base import s3_hook
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from airflow_provider_ringcx.s3.options import OPTION_NAMES

RECORDINGS_ARCHIVE = Asset(name=dagconfig.ASSET_NAME, uri=dagconfig.ASSET_URI)

PARAMS = {
    s.name: Param(
        None,
        type=["null", s.kind],
        title=s.name,
        description=f"{s.description} Empty: Variable {s.variable}, env {s.env}, default {s.default!r}.",
    )
    for s in dagconfig.SETTINGS
}


def _s3(run: dict[str, Any]) -> Any:
    return s3_hook(run["aws_conn_id"]).get_conn()


@task(multiple_outputs=True)
def resolve_run(params: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    """Resolve params > Variables > env > defaults, the window, the keys and the rescan decision.

    A configuration error (a bad setting, no data interval, an interval off the schedule's grid) fails the
    task without retries, with the setting and the fix named (see ``airflow_provider_ringcx.rungrid``).
    """
    from airflow.sdk import Variable

    from airflow_provider_ringcx.failfast import config_errors_fail_fast
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook

    with config_errors_fail_fast():
        settings = dagconfig.resolve_settings(
            params or {}, pipeline.lookup(lambda name: Variable.get(name, default=None))
        )
        dag_run = context.get("dag_run")
        return pipeline.resolve_run(
            settings,
            data_interval_start=context.get("data_interval_start"),
            data_interval_end=context.get("data_interval_end"),
            sub_account_id=str(RingCXHook(ringcx_conn_id=settings["ringcx_conn_id"]).settings.sub_account_id),
            s3=s3_hook(settings["aws_conn_id"]).get_conn(),
            timetable=getattr(context.get("dag"), "timetable", None) or dagconfig.build_timetable(),
            run_after=getattr(dag_run, "run_after", None),
        )


@task
def plan_downloads(batches: list[dict] | None, run: dict[str, Any]) -> list[dict]:
    """One mapped download task per batch (its descriptor plus the run's S3 and compliance settings)."""
    kwargs = pipeline.download_kwargs(run, batches or [], run["manifest_key"])
    get_current_context()["ti"].xcom_push(key="batch_count", value=len(kwargs))
    return kwargs


@task.short_circuit(ignore_downstream_trigger_rules=False)
def rescan_enabled(run: dict[str, Any]) -> bool:
    """Skip the late-arrival branch when it is disabled or the earlier window was never archived."""
    print(f"late-arrival rescan: {run['rescan_note']}")
    return bool(run["rescan"])


@task
def plan_late_downloads(run: dict[str, Any]) -> list[dict]:
    """Map downloads over the segments the rescan found that the earlier window's manifest lacked (read
    from the two manifests; runs after ``fetch_rescan_window``)."""
    kwargs = pipeline.plan_late_downloads(_s3(run), run)
    get_current_context()["ti"].xcom_push(key="batch_count", value=len(kwargs))
    return kwargs


def _report(hook: Any, run: dict[str, Any], ti: Any) -> dict[str, Any]:
    """Run the reconciliation with the download summaries and the manifest identity from XCom."""
    return pipeline.report_window(
        hook.get_conn(),
        run,
        summaries=ti.xcom_pull(task_ids=["download_segments"], key="summary") or [],
        late_summaries=ti.xcom_pull(task_ids=["download_late_segments"], key="summary") or [],
        run_info={"dag_id": ti.dag_id, "run_id": ti.run_id, "try_number": ti.try_number},
        manifest_identity=ti.xcom_pull(task_ids="fetch_metadata_window", key="manifest"),
    )


@task(
    trigger_rule="all_done",
    outlets=[RECORDINGS_ARCHIVE],
    retries=2,
    execution_timeout=dagconfig.task_timeout("report"),
)
def report_window(run: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    """Reconcile the window's manifest against S3, write the report, emit counts; fail if incomplete.

    Returns a readable summary (one sentence, counts, first problems); the log ends with the outcome table;
    the extra link "Window report" opens the report object.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_ringcx.links import REPORT_LINK_XCOM_KEY, S3Location, push_location
    from airflow_provider_ringcx.report import xcom_counts
    from airflow_provider_ringcx.runinfo import readable_summary, report_table
    from airflow_provider_ringcx.transfers.manifest_reader import ManifestIntegrityError

    ti = context["ti"]
    if not run:  # resolve_run failed: its XComs are missing
        raise AirflowFailException("resolve_run did not complete; see its log for the configuration error")
    hook = s3_hook(run["aws_conn_id"])
    push_location(context, REPORT_LINK_XCOM_KEY, S3Location.for_hook(hook, run["bucket"], run["report_key"]))
    try:
        report = _report(hook, run, ti)
    except ManifestIntegrityError as err:  # an edited manifest: a retry would read the same bytes
        raise AirflowFailException(str(err)) from err
    # the log ends with the outcome table (a logger, not print: stdout is buffered and may arrive late)
    logging.getLogger("airflow.task").info("%s", report_table(report))
    if not report["complete"]:
        raise AirflowFailException(pipeline.failure_message(report))
    context["outlet_events"][RECORDINGS_ARCHIVE].extra = xcom_counts(report)
    return readable_summary(report)


#: The lag as a template (the operator validates non-templated lags at parse time).
_LAG = "{{ ti.xcom_pull(task_ids='resolve_run', key='lag_minutes') }}"


def _batch_label(plan_task_id: str) -> str:
    return "{{ ringcx_batch_label(ti, task, '" + plan_task_id + "') }}"


with DAG(
    dag_id=dagconfig.DAG_ID,
    description="Archive RingCX call recordings into S3, verified, one window per run",
    schedule=dagconfig.build_timetable(),
    start_date=dagconfig.start_date(),
    catchup=dagconfig.env_flag("RINGCX_CATCHUP", True),
    max_active_runs=dagconfig.env_int("RINGCX_MAX_ACTIVE_RUNS", 4),
    max_active_tasks=16,
    default_args={
        "retries": dagconfig.env_int("RINGCX_RETRIES", 3),
        "execution_timeout": dagconfig.task_timeout("small"),  # overridden below for the long tasks
        "retry_delay": timedelta(seconds=dagconfig.env_int("RINGCX_RETRY_DELAY_SECONDS", 30)),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
    },
    params=PARAMS,
    user_defined_macros={"ringcx_batch_label": pipeline.label_for},
    tags=["ringcx", "s3", "compliance"],
    doc_md=__doc__,
) as dag:
    run = resolve_run()

    # What the window's fetch and the late-arrival rescan share.
    metadata_kwargs: dict[str, Any] = {
        "bucket": run["bucket"],
        "prefix": run["prefix"],
        "lag": _LAG,
        "batch_size": run["batch_size"],
        "ringcx_conn_id": run["ringcx_conn_id"],
        "aws_conn_id": run["aws_conn_id"],
        "pool": "ringcx_metadata",
        "execution_timeout": dagconfig.task_timeout("metadata"),
        # the run's compliance options: the manifests get the recordings' encryption, class and lock
        **{name: run[name] for name in OPTION_NAMES},
    }
    fetch = RingCXInteractionMetadataOperator(
        task_id="fetch_metadata_window", manifest_key=run["manifest_key"], **metadata_kwargs
    )
    download = RingCXRecordingsToS3Operator.partial(
        task_id="download_segments",
        execution_timeout=dagconfig.task_timeout("download"),
        pool="ringcx_downloads",
        map_index_template=_batch_label("plan_downloads"),
    ).expand_kwargs(plan_downloads(fetch.output, run))

    rescan_fetch = RingCXInteractionMetadataOperator(
        task_id="fetch_rescan_window",
        window_start=run["rescan_start"],
        window_end=run["rescan_end"],
        manifest_key=run["rescan_manifest_key"],
        **metadata_kwargs,
    )
    rescan_enabled(run) >> rescan_fetch
    late_download = RingCXRecordingsToS3Operator.partial(
        task_id="download_late_segments",
        execution_timeout=dagconfig.task_timeout("download"),
        pool="ringcx_downloads",
        map_index_template=_batch_label("plan_late_downloads"),
    ).expand_kwargs(rescan_fetch >> plan_late_downloads(run))

    [download, late_download] >> attach_links(report_window(run), RingCXReportLink())
