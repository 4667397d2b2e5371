"""The audit DAG's tasks: find the archive's gaps in the coverage ledger, re-archive them, prove it.

Airflow's run states do not say what the archive holds: a catch-up run with 0 task instances is green and
leaves no manifest and no report. The audit judges the archive by its reports only (the coverage ledger,
:mod:`airflow_provider_ringcx.coverage`) and repairs what is due and not archived, through the archive
DAGs' own operators with explicit window bounds::

    refresh_ledger ─► fetch_repair_windows[gap i] ─► plan_repairs ─► download_repairs[batch j]
        ─► report_repairs[gap i] ─► verify_coverage   (fails, and so notifies, if a gap remains)

- ``refresh_ledger`` resolves the run settings as the archive DAGs do (the same bucket, prefix, lag and
  connections), refreshes the ledger over the audited range and turns its gaps
  (:meth:`~airflow_provider_ringcx.coverage.result.CoverageResult.gaps`: consecutive missing windows of a
  day merged, an incomplete window alone) into one metadata and one report task per gap.
- The range: ``audit_from``/``audit_to`` (ISO-8601) if given, else the last ``audit_lookback_days`` days up
  to the run, never before the live DAG's first window (``RINGCX_START_DATE`` minus the lag). Windows
  outside it are neither repaired nor judged.
- **Map caps.** At most ``audit_max_repairs`` gaps a run (default 100, at most 1,000), the earliest first:
  the rest are reported by ``verify_coverage`` and left to the next run. Each gap's manifest is cut into at
  most ``1000 // gaps`` batches (the metadata operator's ``max_batches``), so all the download tasks of a
  run stay under Airflow's 1,024 map cap however many recordings the gaps hold.
- A gap whose manifest exists (an incomplete window, a run that stopped after its metadata) costs no
  metadata call: the operator rebuilds the batches from it; already archived recordings are found
  ``already_archived`` and only the missing ones are downloaded. The report is written again.
- The repair's metadata calls take ``history`` budget priority: they leave each budget window's reserve to
  the live DAG.
- ``verify_coverage`` refreshes the ledger again and fails with every remaining gap named: the DAG's
  ``on_failure_callback`` (a notifier) tells someone. A gap that cannot be repaired (a recording that
  answers 403 for good) fails every audit until it is fixed: ``allow_unarchived`` keeps the archive DAG's
  report task green, but the ledger counts a waived window as ``incomplete`` (reason ``waived: ...``), so
  the audit re-archives it and names it each run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import Param, get_current_context, task

from airflow_provider_ringcx import keys, run_settings
from airflow_provider_ringcx.coverage import CoverageGrid, CoverageLedger, CoverageResult, Gap
from airflow_provider_ringcx.coverage.grid import iso, span_label
from airflow_provider_ringcx.example_dags import shape, tasks
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.models import parse_timestamp
from airflow_provider_ringcx.operators.base import s3_hook
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from airflow_provider_ringcx.operators.report import RingCXWindowReportOperator
from airflow_provider_ringcx.s3.options import OPTION_NAMES, S3WriteOptions

if TYPE_CHECKING:
    from airflow_provider_ringcx.example_dags.factory import ArchiveDagOptions

#: Download tasks of one audit run in all (under Airflow's 1,024 map cap).
MAX_DOWNLOAD_TASKS = 1000
#: The most gaps one run repairs (each is a metadata and a report task).
MAX_REPAIRS = 1000
#: Run settings a repair's report task takes as they are.
_REPORT_ARGS: tuple[str, ...] = (
    *("bucket", "prefix", "key_template", "verify_content", "allow_unarchived", "allow_unverified_manifest"),
    *("ringcx_conn_id", "aws_conn_id", *OPTION_NAMES),
)


def audit_params(*, lookback_days: int = 7, interval_minutes: int = 15, max_repairs: int = 100) -> dict:
    """The audit's own params (beside the run settings): its range, the grid and the repair cap."""

    def number(default: int, low: int, high: int, description: str) -> Param:
        return Param(default, type="integer", minimum=low, maximum=high, description=description)

    def moment(description: str) -> Param:
        return Param(None, type=["null", "string"], description=description)

    return {
        "audit_lookback_days": number(lookback_days, 1, 3660, "Audit this many days back (no audit_from)."),
        "audit_from": moment("Audit from this ISO-8601 time (a full range: with audit_to)."),
        "audit_to": moment("Audit up to this ISO-8601 time (default: the run's time)."),
        "audit_interval_minutes": number(interval_minutes, 1, 1440, "The live DAG's window (the grid)."),
        "audit_max_repairs": number(max_repairs, 0, MAX_REPAIRS, "Gaps re-archived a run, earliest first."),
    }


def audit_range(
    params: Mapping[str, Any], *, now: datetime, first_window: datetime, grid: CoverageGrid
) -> tuple[datetime, datetime]:
    """``[from, to)`` of the audit, on the grid (see the module docstring).

    :raises RingCXConfigError: a bound that is not ISO-8601, or an empty range.
    """
    to = _moment(params.get("audit_to"), "audit_to") or now
    start = _moment(params.get("audit_from"), "audit_from")
    if start is None:
        start = max(to - timedelta(days=int(params.get("audit_lookback_days") or 7)), first_window)
    start, to = _floor(start, grid.interval), _floor(to, grid.interval)
    if to <= start:
        raise RingCXConfigError(
            f"audit range {iso(start)} - {iso(to)} is empty; give audit_from before audit_to (ISO-8601)"
        )
    return start, to


def gaps_within(result: CoverageResult, start: datetime, end: datetime) -> list[Gap]:
    """The ledger's gaps clipped to ``[start, end)`` (windows outside are not this audit's)."""
    clipped = []
    for gap in result.gaps():
        low, high = max(gap.start, start), min(gap.end, end)
        if low < high:
            windows = max(1, int((high - low) / ((gap.end - gap.start) / gap.windows)))
            clipped.append(Gap(low, high, gap.state, windows, gap.reasons))
    return clipped


def repair_kwargs(
    gaps: Sequence[Gap], run: Mapping[str, Any], sub_account_id: str
) -> tuple[list[dict], list[dict]]:
    """One metadata and one report task per gap: explicit bounds and the run's settings."""
    per_gap = max(1, MAX_DOWNLOAD_TASKS // max(1, len(gaps)))
    options = {name: run[name] for name in OPTION_NAMES}
    fetch, report = [], []
    for gap in gaps:
        bounds = {"window_start": iso(gap.start), "window_end": iso(gap.end)}
        fetch.append({
            **bounds, "bucket": run["bucket"], "prefix": run["prefix"], "lag": run["lag_minutes"],
            "batch_size": run["batch_size"], "max_batches": per_gap, "ringcx_conn_id": run["ringcx_conn_id"],
            "aws_conn_id": run["aws_conn_id"], **options,
        })  # fmt: skip
        report.append({**bounds, "sub_account_id": sub_account_id, **{n: run.get(n) for n in _REPORT_ARGS}})
    return fetch, report


def describe(gaps: Sequence[Gap], limit: int = 10) -> str:
    lines = [
        f"{gap.start:%Y-%m-%d} {span_label(gap.start, gap.end)} {gap.state}"
        + (f" ({'; '.join(gap.reasons[:2])})" if gap.reasons else "")
        for gap in gaps[:limit]
    ]
    more = f"; ... and {len(gaps) - limit} more" if len(gaps) > limit else ""
    return "; ".join(lines) + more


class RingCXRepairReportOperator(RingCXWindowReportOperator):
    """The window report of one mapped repair: its own gap's manifest identity and download summaries.

    A mapped report of the audit reads the metadata task instance of the same map index (its gap), and only
    the download batches ``plan_repairs`` planned for that gap (XCom ``batch_gaps``).
    """

    def manifest_identity(self, ti: Any, task_id: str | None = "") -> Mapping[str, Any] | None:
        task_id = self.metadata_task_id if task_id == "" else task_id
        if not task_id:
            return None
        value = ti.xcom_pull(task_ids=task_id, key="manifest", map_indexes=ti.map_index)
        return value if isinstance(value, Mapping) else None

    def download_summaries(self, ti: Any) -> list[Any]:
        owners = ti.xcom_pull(task_ids="plan_repairs", key="batch_gaps", map_indexes=None) or []
        mine = [index for index, gap in enumerate(owners) if gap == ti.map_index]
        found: list[Any] = []
        for task_id in self.download_task_ids:
            if mine:
                found += ti.xcom_pull(task_ids=task_id, key="summary", map_indexes=mine) or []
        return found


def wire_audit(opts: ArchiveDagOptions) -> None:
    """The audit DAG's tasks (inside its ``with DAG``; the factory's ``wire``)."""
    # the DAG's sub-account, else the connection's
    sub: dict[str, Any] = {"sub_account_id": opts.sub_account_id} if opts.sub_account_id else {}
    ledger: Any = refresh_ledger(defaults=dict(opts.defaults), **sub)  # one item per gap; XCom "plan"
    label = "{{ task.window_start[:16] }}\u2013{{ task.window_end[11:16] }}"
    fetch = RingCXInteractionMetadataOperator.partial(
        task_id="fetch_repair_windows", pool=opts.metadata_pool, execution_timeout=opts.timeout("metadata"),
        max_window_seconds=opts.max_window_seconds, budget_priority=opts.budget_priority,
        map_index_template=label, sub_account_id=opts.sub_account_id,
    ).expand_kwargs(ledger.map(fetch_of))  # fmt: skip
    planned = plan_repairs(ledger["plan"])
    fetch >> planned
    downloads = RingCXRecordingsToS3Operator.partial(
        task_id="download_repairs", pool=opts.download_pool, execution_timeout=opts.timeout("download"),
        budget_priority=opts.budget_priority, sub_account_id=opts.sub_account_id,
    ).expand_kwargs(planned)  # fmt: skip
    reports = RingCXRepairReportOperator.partial(
        task_id="report_repairs", metadata_task_id="fetch_repair_windows",
        download_task_ids=["download_repairs"], trigger_rule="all_done", retries=opts.report_retries,
        execution_timeout=opts.timeout("report"), map_index_template=label,
    ).expand_kwargs(ledger.map(report_of))  # fmt: skip
    downloads >> reports >> verify_coverage(ledger["plan"])


def fetch_of(item: Mapping[str, Any]) -> dict:
    """A gap's metadata task arguments (``XComArg.map`` over ``refresh_ledger``)."""
    return dict(item["fetch"])


def report_of(item: Mapping[str, Any]) -> dict:
    """A gap's report task arguments."""
    return dict(item["report"])


@task
def refresh_ledger(
    defaults: dict[str, Any] | None = None,
    sub_account_id: str | None = None,
    params: dict[str, Any] | None = None,
) -> list:
    """Resolve the settings, refresh the ledger over the audited range, plan one repair per gap: returns
    ``[{"fetch": metadata task kwargs, "report": report task kwargs}]``, pushes the ``plan`` (settings,
    range) and the ``gaps``. ``sub_account_id``: the DAG's sub-account (``None``: the connection's)."""
    from airflow.sdk import Variable

    from airflow_provider_ringcx.failfast import config_errors_fail_fast
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook

    context = get_current_context()
    params = params or {}
    with config_errors_fail_fast():
        run = run_settings.resolve_settings(
            params, tasks.lookup(lambda name: Variable.get(name, default=None)), defaults=defaults
        )
        grid = _grid(params, run)
        now = datetime.now(timezone.utc)
        first = shape.start_date() - timedelta(minutes=int(run["lag_minutes"]))
        start, end = audit_range(params, now=now, first_window=first, grid=grid)
        hook = RingCXHook(ringcx_conn_id=run["ringcx_conn_id"], sub_account_id=sub_account_id)
        if run["refuse_inactive_sub_account"]:
            hook.check_sub_account_active()
        sub = str(hook.settings.sub_account_id)
    # force: the audit lists every day, final ones too (a final day's rollup is otherwise trusted without a
    # LIST, so a report deleted or rewritten after the day was complete would go unseen).
    result = _ledger(run).refresh(sub, start.date(), _day_after(end), grid, force=True)
    gaps = gaps_within(result, start, end)
    limit = min(int(params.get("audit_max_repairs", 100)), MAX_REPAIRS)
    repaired = gaps[:limit]
    print(
        f"coverage of {iso(start)} - {iso(end)}: {len(gaps)} gap(s) to re-archive"
        + (f", {len(repaired)} this run (audit_max_repairs)" if len(repaired) < len(gaps) else "")
        + (f": {describe(gaps)}" if gaps else "")
    )
    fetch, reports = repair_kwargs(repaired, run, sub)
    plan = {"run": run, "sub_account_id": sub, "from": iso(start), "to": iso(end), "gaps": len(repaired)}
    context["ti"].xcom_push(key="gaps", value=[gap.as_dict() for gap in repaired])
    context["ti"].xcom_push(key="plan", value=plan)
    return [{"fetch": one, "report": two} for one, two in zip(fetch, reports, strict=True)]


@task(trigger_rule="all_done")
def plan_repairs(plan: dict[str, Any]) -> list[dict]:
    """The download batches of every repaired gap whose metadata task succeeded (one list for the map)."""
    ti = get_current_context()["ti"]
    run, sub, count = plan["run"], plan["sub_account_id"], int(plan["gaps"])
    gaps = ti.xcom_pull(task_ids="refresh_ledger", key="gaps", map_indexes=None) or []
    kwargs: list[dict] = []
    owners: list[int] = []
    for index in range(count):
        batches = ti.xcom_pull(task_ids="fetch_repair_windows", map_indexes=index)
        if not isinstance(batches, list):  # that gap's metadata task failed: verify_coverage names it
            continue
        gap = gaps[index]
        manifest = keys.manifest_key(run["prefix"], sub, _moment(gap["start"]), _moment(gap["end"]))
        planned = tasks.download_kwargs(run, batches, manifest)
        kwargs += planned
        owners += [index] * len(planned)
    ti.xcom_push(key="batch_gaps", value=owners)
    print(f"{len(kwargs)} download batch(es) for {count} gap(s)")
    return kwargs


@task(trigger_rule="all_done")
def verify_coverage(plan: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, int]:
    """Refresh the ledger again; fail naming every gap still due and not archived."""
    from airflow.sdk.exceptions import AirflowFailException

    run, start, end = plan["run"], _moment(plan["from"]), _moment(plan["to"])
    grid = _grid(params or {}, run)
    result = _ledger(run).refresh(plan["sub_account_id"], start.date(), _day_after(end), grid, force=True)
    left = gaps_within(result, start, end)
    counts = result.counts()
    if left:
        raise AirflowFailException(
            f"{len(left)} gap(s) of {iso(start)} - {iso(end)} are still not archived after the repair: "
            f"{describe(left)}. See the report_repairs tasks, or run python -m airflow_provider_ringcx "
            f"coverage --bucket {run['bucket']} --prefix {run['prefix']} --sub-account-id "
            f"{plan['sub_account_id']} --start {start.date()} --end {_day_after(end)}"
        )
    print(f"coverage of {iso(start)} - {iso(end)}: every due window archived ({plan['gaps']} repaired)")
    return {name: counts[name] for name in ("complete", "pending", "recordings")}


def _grid(params: Mapping[str, Any], run: Mapping[str, Any]) -> CoverageGrid:
    minutes = int(params.get("audit_interval_minutes") or 15)
    return CoverageGrid(timedelta(minutes=minutes), timedelta(minutes=int(run["lag_minutes"])))


def _ledger(run: Mapping[str, Any]) -> CoverageLedger:
    client = s3_hook(run["aws_conn_id"]).get_conn()
    return CoverageLedger(client, run["bucket"], run["prefix"], options=S3WriteOptions.from_settings(run))


def _day_after(moment: datetime) -> date:
    """The ledger's exclusive end day for a range ending at ``moment``."""
    day = moment.date()
    at_midnight = moment == datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
    return day if at_midnight else day + timedelta(days=1)


def _floor(moment: datetime, interval: timedelta) -> datetime:
    midnight = datetime.combine(moment.date(), datetime.min.time(), tzinfo=timezone.utc)
    return midnight + ((moment - midnight) // interval) * interval


def _moment(value: Any, name: str = "bound") -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    try:
        return parse_timestamp(str(value))
    except ValueError:
        raise RingCXConfigError(f"{name}={value!r} is not ISO-8601, e.g. 2026-03-02T14:00Z") from None
