"""The archive DAG factory: one call builds a RingCX-to-S3 archive DAG from the provider's operators.

The shipped DAG ``ringcx_recordings_to_s3`` is one call
(:mod:`~airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3`); other shapes are other calls with
other :class:`ArchiveDagOptions` - a history DAG (daily windows, no schedule, no rescan), one DAG per
sub-account: the shipped DAG files build one per sub-account of ``[ringcx] sub_accounts``
(:mod:`~airflow_provider_ringcx.example_dags.per_sub_account`), by hand it is::

    base = ArchiveDagOptions(dag_id="ringcx_archive", schedule=timetable, start_date=start)
    for sub in ("11111111", "22222222"):
        ringcx_archive_dag(base, dag_id=f"ringcx_archive__{sub}", sub_account_id=sub,
                           metadata_pool=f"ringcx_metadata__{sub}", download_pool=f"ringcx_downloads__{sub}")

Every DAG has the same tasks (the rescan branch only with ``rescan=True``)::

    resolve_run ─► fetch_metadata_window ─► plan_downloads ─► download_segments   (batch 1/N · 14:00-14:04)
        └─► rescan_enabled ─► fetch_rescan_window ─► plan_late_downloads ─► download_late_segments
    everything ─► report_window  (runs even if batches failed; fails if anything expected is missing)

``resolve_run`` resolves the run settings (params > Variables > env > the DAG's ``defaults`` > built-in
defaults, see :mod:`~airflow_provider_ringcx.run_settings`) into the run's
:class:`~airflow_provider_ringcx.example_dags.runplan.RunPlan`; each later task pulls the keys it needs.
Nothing touches a connection or a Variable at parse time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, get_current_context, task

from airflow_provider_ringcx import run_settings
from airflow_provider_ringcx.example_dags import settings as dagconfig
from airflow_provider_ringcx.example_dags import shape, tasks
from airflow_provider_ringcx.example_dags.runplan import RunPlan
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.notifications.file import file_notifier_from_env
from airflow_provider_ringcx.operators.base import s3_hook
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from airflow_provider_ringcx.operators.report import RingCXWindowReportOperator
from airflow_provider_ringcx.s3.options import OPTION_NAMES


@dataclass(frozen=True)
class ArchiveDagOptions:
    """The shape of an archive DAG (what is fixed when the DAG is parsed).

    :param dag_id: the DAG id (also named in the messages that suggest a backfill command).
    :param schedule: the timetable: each run archives its data interval shifted back by the settle lag, so
        it must have intervals (``CronTriggerTimetable(..., interval=...)``, see
        :func:`~airflow_provider_ringcx.example_dags.shape.build_timetable`); ``None`` for manual and
        backfill runs only.
    :param start_date: the first data interval's start (catchup starts here).
    :param catchup: run every missed interval since ``start_date``.
    :param max_active_runs: windows archived at once.
    :param max_active_tasks: tasks of the DAG running at once.
    :param retries: retries of every task (the report has ``report_retries``).
    :param retry_delay: first retry delay (doubles up to ``max_retry_delay``).
    :param max_retry_delay: the longest retry delay.
    :param report_retries: retries of ``report_window`` (a missing manifest may appear on a retry).
    :param rescan: include the late-arrival rescan branch (re-list an earlier window, archive what is new).
    :param max_window_seconds: the longest ``timeInterval`` of one metadata call, capped by the connection
        extra ``max_window_seconds``; ``None``: the connection's (see ``RingCXInteractionMetadataOperator``).
    :param budget_priority: ``"live"`` or ``"history"``: the class of the DAG's RingCX requests in the shared
        budgets (history leaves each budget window's reserve to live DAGs).
    :param is_paused_upon_creation: whether the DAG starts paused (``None``: Airflow's
        ``[core] dags_are_paused_at_creation``). A paused DAG's backfill runs never start.
    :param params: param values of this DAG, by run-setting name: shown in the trigger form, they win over
        Variables and the environment (e.g. a sub-account's ``ringcx_conn_id``).
    :param defaults: the DAG's own defaults, by run-setting name: used when no param, Variable or
        environment variable gives the setting (e.g. ``{"lag_minutes": 30}``).
    :param asset: the Asset updated once per archived window; its event's ``extra`` holds the window, the
        sub-account and the counts. Build it with :func:`airflow_provider_ringcx.assets.archive_asset`
        (``s3://{bucket}/{prefix}``, ``sub_account_id=`` for one DAG per sub-account) or
        :func:`~airflow_provider_ringcx.example_dags.settings.archive_asset` (from ``RINGCX_BUCKET``).
    :param timeouts: ``execution_timeout`` per kind of task (``metadata``, ``download``, ``report``,
        ``small``); a kind not given takes
        :func:`~airflow_provider_ringcx.example_dags.shape.task_timeout`.
    :param metadata_pool: the pool of the metadata tasks (one slot per sub-account's budget).
    :param download_pool: the pool of the download tasks.
    :param on_failure_callback: called when a run fails: a notifier (``RingCXFileNotifier``, amazon's
        ``SnsNotifier``, ``SlackNotifier``, ``SmtpNotifier``), a function of the context, or a list of them.
        Default: a ``RingCXFileNotifier`` on ``$RINGCX_ALERT_FILE`` when that is set at parse time.
    :param on_success_callback: the same, when a run succeeds.
    :param deadline: Deadline Alert(s) of every run, e.g.
        :func:`~airflow_provider_ringcx.notifications.deadline.window_deadline` (a window not archived by
        its due time plus a margin).
    :param wire: builds the DAG's tasks inside its ``with DAG`` (default: the archive tasks); the audit DAG
        passes its own (:mod:`~airflow_provider_ringcx.example_dags.audit`).
    :param extra_params: params beyond the run settings (the audit DAG's range), by name: ``Param`` objects.
    :param description: the DAG's description.
    :param tags: the DAG's tags.
    :param doc_md: the DAG's documentation (Markdown); default: this module's.
    :param sub_account_id: the sub-account this DAG archives with the connection's credentials (``None``:
        the connection's ``sub_account_id``); every RingCX operator of the DAG gets it.
    :param dag_display_name: the name the UI shows (default: the DAG id).
    """

    dag_id: str
    schedule: Any
    start_date: datetime
    catchup: bool = True
    max_active_runs: int = 4
    max_active_tasks: int = 16
    retries: int = 3
    retry_delay: timedelta = timedelta(seconds=30)
    max_retry_delay: timedelta = timedelta(minutes=15)
    report_retries: int = 2
    rescan: bool = True
    max_window_seconds: int | None = None
    budget_priority: str = "live"
    is_paused_upon_creation: bool | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    asset: Asset | None = None
    timeouts: Mapping[str, timedelta] = field(default_factory=dict)
    metadata_pool: str = "ringcx_metadata"
    download_pool: str = "ringcx_downloads"
    on_failure_callback: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None
    on_success_callback: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None
    deadline: Any = None  # a DeadlineAlert or a list of them
    wire: Callable[[ArchiveDagOptions], None] | None = None
    extra_params: Mapping[str, Any] = field(default_factory=dict)
    description: str = "Archive RingCX call recordings into S3, verified, one window per run"
    tags: Sequence[str] = ("ringcx", "s3", "compliance")
    doc_md: str | None = None
    sub_account_id: str | None = None
    dag_display_name: str | None = None

    def __post_init__(self) -> None:
        run_settings.check_setting_names(self.params, f"{self.dag_id}: params")
        run_settings.check_setting_names(self.defaults, f"{self.dag_id}: defaults")
        unknown = sorted(set(self.timeouts) - set(shape.TASK_TIMEOUTS))
        if unknown:
            raise RingCXConfigError(
                f"{self.dag_id}: timeouts for {', '.join(unknown)}: the kinds are "
                f"{', '.join(shape.TASK_TIMEOUTS)}"
            )

    def timeout(self, kind: str) -> timedelta:
        """The ``execution_timeout`` of a kind of task."""
        return self.timeouts.get(kind) or shape.task_timeout(kind)


def ringcx_archive_dag(options: ArchiveDagOptions | None = None, /, **fields: Any) -> DAG:
    """Build an archive DAG: ``ringcx_archive_dag(dag_id=..., schedule=..., start_date=...)``, or from
    options with some fields replaced: ``ringcx_archive_dag(base, dag_id="...")``.

    :param options: the DAG's shape; ``fields`` (the :class:`ArchiveDagOptions` fields) replace its values.
    :raises RingCXConfigError: an unknown setting in ``params``/``defaults`` or an unknown timeout kind.
    :raises TypeError: an unknown field.
    """
    opts = dataclasses.replace(options, **fields) if options else ArchiveDagOptions(**fields)
    with DAG(
        dag_id=opts.dag_id,
        dag_display_name=opts.dag_display_name or opts.dag_id,
        description=opts.description,
        schedule=opts.schedule,
        start_date=opts.start_date,
        catchup=opts.catchup,
        is_paused_upon_creation=opts.is_paused_upon_creation,
        max_active_runs=opts.max_active_runs,
        max_active_tasks=opts.max_active_tasks,
        default_args={
            "retries": opts.retries,
            "execution_timeout": opts.timeout("small"),  # overridden below for the long tasks
            "retry_delay": opts.retry_delay,
            "retry_exponential_backoff": True,
            "max_retry_delay": opts.max_retry_delay,
        },
        params={**dagconfig.dag_params(opts.params, opts.defaults), **opts.extra_params},
        user_defined_macros={"ringcx_batch_label": tasks.label_for},
        on_failure_callback=_callbacks(opts.on_failure_callback) or file_notifier_from_env(),
        on_success_callback=_callbacks(opts.on_success_callback),
        deadline=list(opts.deadline) if isinstance(opts.deadline, (list, tuple)) else opts.deadline,
        tags=list(opts.tags),
        doc_md=opts.doc_md or __doc__,
    ) as dag:
        (opts.wire or _wire)(opts)
    return dag


def _callbacks(value: Any) -> Any:
    """A notifier, a function or a list of them, as ``DAG`` takes them (a tuple becomes a list)."""
    return list(value) if isinstance(value, (list, tuple)) else value


def _wire(opts: ArchiveDagOptions) -> None:
    """The tasks of one archive DAG (inside its ``with DAG``)."""
    # the DAG's sub-account, else the connection's
    sub: dict[str, Any] = {"sub_account_id": opts.sub_account_id} if opts.sub_account_id else {}
    run: Any = resolve_run(defaults=dict(opts.defaults), rescan=opts.rescan, **sub)  # XComArg: run["bucket"]
    options = {name: run[name] for name in OPTION_NAMES}  # the run's compliance options, for every writer
    metadata_kwargs: dict[str, Any] = {  # what the window's fetch and the late-arrival rescan share
        "bucket": run["bucket"],
        "prefix": run["prefix"],
        "lag": "{{ ti.xcom_pull(task_ids='resolve_run', key='lag_minutes') }}",  # validated at run time
        "batch_size": run["batch_size"],
        "ringcx_conn_id": run["ringcx_conn_id"],
        "sub_account_id": opts.sub_account_id,
        "aws_conn_id": run["aws_conn_id"],
        "pool": opts.metadata_pool,
        "execution_timeout": opts.timeout("metadata"),
        "max_window_seconds": opts.max_window_seconds,
        "budget_priority": opts.budget_priority,
        **options,
    }
    download_kwargs: dict[str, Any] = {
        "execution_timeout": opts.timeout("download"),
        "pool": opts.download_pool,
        "budget_priority": opts.budget_priority,
        "sub_account_id": opts.sub_account_id,
    }
    fetch: Any = RingCXInteractionMetadataOperator(
        task_id="fetch_metadata_window", manifest_key=run["manifest_key"], **metadata_kwargs
    )
    downloads = [
        RingCXRecordingsToS3Operator.partial(
            task_id="download_segments", map_index_template=_batch_label("plan_downloads"), **download_kwargs
        ).expand_kwargs(plan_downloads(fetch.output, run))
    ]
    rescan_kwargs: dict[str, Any] = {}
    if opts.rescan:
        rescan_fetch = RingCXInteractionMetadataOperator(
            task_id="fetch_rescan_window",
            window_start=run["rescan_start"],
            window_end=run["rescan_end"],
            manifest_key=run["rescan_manifest_key"],
            **metadata_kwargs,
        )
        rescan_enabled(run) >> rescan_fetch
        downloads.append(
            RingCXRecordingsToS3Operator.partial(
                task_id="download_late_segments",
                map_index_template=_batch_label("plan_late_downloads"),
                **download_kwargs,
            ).expand_kwargs(rescan_fetch >> plan_late_downloads(run))
        )
        names = (
            "rescan",
            "rescan_start",
            "rescan_end",
            "rescan_manifest_key",
            "rescan_original_manifest_key",
        )
        rescan_kwargs = {name: run[name] for name in names}
    report = RingCXWindowReportOperator(
        task_id="report_window",
        bucket=run["bucket"],
        prefix=run["prefix"],
        key_template=run["key_template"],
        sub_account_id=run["sub_account_id"],
        window_start=run["window_start"],
        window_end=run["window_end"],
        manifest_key=run["manifest_key"],
        report_key=run["report_key"],
        metadata_task_id="fetch_metadata_window",
        rescan_metadata_task_id="fetch_rescan_window" if opts.rescan else None,
        allow_unverified_manifest=run["allow_unverified_manifest"],
        download_task_ids=["download_segments", "download_late_segments"]
        if opts.rescan
        else ["download_segments"],
        verify_content=run["verify_content"],
        allow_unarchived=run["allow_unarchived"],
        rescan_note=run["rescan_note"],
        ringcx_conn_id=run["ringcx_conn_id"],
        aws_conn_id=run["aws_conn_id"],
        trigger_rule="all_done",  # the window's verdict: it runs even if batches failed
        outlets=[opts.asset] if opts.asset else [],
        retries=opts.report_retries,
        execution_timeout=opts.timeout("report"),
        **rescan_kwargs,
        **options,
    )
    downloads >> report


def _batch_label(plan_task_id: str) -> str:
    return "{{ ringcx_batch_label(ti, task, '" + plan_task_id + "') }}"


def _s3(run: Mapping[str, Any]) -> Any:
    return s3_hook(run["aws_conn_id"]).get_conn()


@task(multiple_outputs=True)
def resolve_run(
    defaults: dict[str, Any] | None = None,
    rescan: bool = True,
    sub_account_id: str | None = None,
    params: dict[str, Any] | None = None,
    **context: Any,
) -> RunPlan:
    """Resolve params > Variables > env > the DAG's defaults > built-in defaults, the window, the keys and
    the rescan decision (the run's :class:`~airflow_provider_ringcx.example_dags.runplan.RunPlan`).

    A configuration error (a bad setting, no data interval, an interval off the schedule's grid, an
    inactive sub-account with ``refuse_inactive_sub_account``) fails the task without retries, with the
    setting and the fix named (see ``airflow_provider_ringcx.rungrid``).

    :param sub_account_id: the DAG's sub-account (``None``: the connection's).
    """
    from airflow.sdk import Variable

    from airflow_provider_ringcx.failfast import config_errors_fail_fast
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook

    with config_errors_fail_fast():
        settings = run_settings.resolve_settings(
            params or {}, tasks.lookup(lambda name: Variable.get(name, default=None)), defaults=defaults
        )
        if not rescan:  # this DAG has no rescan branch
            settings["rescan_lookback_minutes"] = 0
        dag, dag_run = context.get("dag"), context.get("dag_run")
        hook = RingCXHook(ringcx_conn_id=settings["ringcx_conn_id"], sub_account_id=sub_account_id)
        if settings["refuse_inactive_sub_account"]:
            hook.check_sub_account_active()
        return tasks.resolve_run(
            settings,
            data_interval_start=context.get("data_interval_start"),
            data_interval_end=context.get("data_interval_end"),
            sub_account_id=str(hook.settings.sub_account_id),
            s3=s3_hook(settings["aws_conn_id"]).get_conn(),
            timetable=getattr(dag, "timetable", None),
            run_after=getattr(dag_run, "run_after", None),
            dag_id=getattr(dag, "dag_id", None),
        )


@task
def plan_downloads(batches: list[dict] | None, run: RunPlan) -> list[dict]:
    """One mapped download task per batch (its descriptor plus the run's S3 and compliance settings)."""
    kwargs = tasks.download_kwargs(run, batches or [], run["manifest_key"])
    get_current_context()["ti"].xcom_push(key="batch_count", value=len(kwargs))
    return kwargs


@task.short_circuit(ignore_downstream_trigger_rules=False)
def rescan_enabled(run: RunPlan) -> bool:
    """Skip the late-arrival branch when it is disabled or the earlier window was never archived."""
    print(f"late-arrival rescan: {run['rescan_note']}")
    return bool(run["rescan"])


@task
def plan_late_downloads(run: RunPlan) -> list[dict]:
    """Map downloads over the segments the rescan found that the earlier window's manifest lacked (read
    from the two manifests; runs after ``fetch_rescan_window``)."""
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_ringcx.transfers.manifest_format import ManifestIntegrityError

    ti = get_current_context()["ti"]
    try:  # the rescan manifest as fetch_rescan_window wrote it, verified before anything is planned
        identity = ti.xcom_pull(task_ids="fetch_rescan_window", key="manifest")
        kwargs = tasks.plan_late_downloads(_s3(run), run, rescan_identity=identity)
    except ManifestIntegrityError as err:  # an edited or unverifiable manifest: a retry reads the same
        raise AirflowFailException(str(err)) from err
    ti.xcom_push(key="batch_count", value=len(kwargs))
    return kwargs
