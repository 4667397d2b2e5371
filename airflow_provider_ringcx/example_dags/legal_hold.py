"""The legal-hold DAG's tasks: resolve the request, a person approves it, then the holds change.

``ringcx_legal_hold`` is an instance of the archive factory (its ``wire`` and ``extra_params``), so it
resolves the bucket, prefix, connections and compliance options exactly as the archive DAGs do (params >
Variables > env > defaults) and holds what they archived::

    resolve_hold_request ─► approve_legal_hold (ApprovalOperator) ─► apply_legal_hold

``resolve_hold_request`` checks the request and previews it from the index (how many calls and objects
it selects, a few dialog ids), so the approver sees what will change; Airflow's ``ApprovalOperator``
(human in the loop, Airflow 3.1+) waits in the Required Actions view; on "Approve"
:class:`~airflow_provider_ringcx.operators.holds.RingCXLegalHoldOperator` applies (or releases) the holds
and writes the audit record with the approver; on "Reject" it is skipped and nothing changes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, task

from airflow_provider_ringcx import run_settings
from airflow_provider_ringcx.example_dags import tasks
from airflow_provider_ringcx.example_dags.factory import ArchiveDagOptions
from airflow_provider_ringcx.s3.options import OPTION_NAMES

RESOLVE, APPROVE, APPLY = "resolve_hold_request", "approve_legal_hold", "apply_legal_hold"
#: How long a request waits for its approver before the approval task fails (and nothing changes).
APPROVAL_TIMEOUT = timedelta(days=7)
#: Dialog ids shown to the approver.
PREVIEW = 10
_REQUEST = "{{ ti.xcom_pull(task_ids='" + RESOLVE + "')['%s'] }}"


def hold_params() -> dict[str, Param]:
    """The request's params (beside the run settings), shown in the trigger form."""

    def text(description: str, default: Any = None) -> Param:
        return Param(default, type=["null", "string"], description=description, section="Legal hold")

    return {
        "hold_action": Param(
            "apply",
            type="string",
            enum=["apply", "release"],
            section="Legal hold",
            description="apply: legal hold ON; release: OFF (the same approval is asked)",
        ),
        "hold_sub_account_id": text("The sub-account whose calls are held (default: the connection's)."),
        "hold_date_from": text("First UTC day, YYYY-MM-DD (a call's day is the day it ended)."),
        "hold_date_to": text("Last UTC day, inclusive (default: hold_date_from)."),
        "hold_phone_numbers": text("ANI or DNIS to hold, comma-separated (digits are compared)."),
        "hold_dialog_ids": text("Dialog ids to hold, comma-separated."),
        "hold_all_in_range": Param(
            False,
            type="boolean",
            section="Legal hold",
            description="Hold every archived call of the range (no numbers or dialogs needed).",
        ),
        "requested_by": text("Who asks (name, e-mail, ticket): kept in the audit record."),
        "hold_reason": text("Why (matter, case number): kept in the audit record."),
    }


def wire_legal_hold(opts: ArchiveDagOptions) -> None:
    """The legal-hold DAG's tasks (inside its ``with DAG``; the factory's ``wire``)."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    from airflow_provider_ringcx.operators.holds import RingCXLegalHoldOperator

    request: Any = resolve_hold_request(defaults=dict(opts.defaults), sub_account_id=opts.sub_account_id)
    approve = ApprovalOperator(
        task_id=APPROVE,
        subject=_REQUEST % "subject",
        body=_REQUEST % "body",
        response_timeout=APPROVAL_TIMEOUT,
        retries=0,
    )
    hold = RingCXLegalHoldOperator(
        task_id=APPLY,
        approval_task_id=APPROVE,
        retries=0,  # a failed request is looked at, not repeated
        execution_timeout=opts.timeout("report"),
        **{name: request[name] for name in (
            "bucket", "prefix", "aws_conn_id", "sub_account_id", "date_from", "date_to", "phone_numbers",
            "dialog_ids", "all_in_range", "action", "requested_by", "reason", "key_template", *OPTION_NAMES,
        )},
    )  # fmt: skip
    request >> approve >> hold


@task
def resolve_hold_request(
    defaults: dict[str, Any] | None = None, sub_account_id: str | None = None,
    params: dict[str, Any] | None = None, dag_run: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Resolve the run settings and the request, check it, and preview it from the index: the operator's
    arguments plus ``subject``/``body`` for the approver."""
    from airflow.sdk import Variable

    from airflow_provider_ringcx.failfast import config_errors_fail_fast
    from airflow_provider_ringcx.holds.apply import ACTIONS, check_object_lock, targets_of
    from airflow_provider_ringcx.holds.query import HoldQuery, select_rows
    from airflow_provider_ringcx.keys import DEFAULT_KEY_TEMPLATE
    from airflow_provider_ringcx.operators.base import s3_hook

    params = params or {}
    with config_errors_fail_fast():
        run = run_settings.resolve_settings(
            params, tasks.lookup(lambda name: Variable.get(name, default=None)), defaults=defaults
        )
        sub = params.get("hold_sub_account_id") or sub_account_id or _connection_sub_account(run)
        action = str(params.get("hold_action") or "apply")
        query = HoldQuery.build(
            sub_account_id=sub, date_from=params.get("hold_date_from"), date_to=params.get("hold_date_to"),
            phone_numbers=params.get("hold_phone_numbers"), dialog_ids=params.get("hold_dialog_ids"),
            all_in_range=bool(params.get("hold_all_in_range")),
        )  # fmt: skip
        client = s3_hook(run["aws_conn_id"]).get_conn()
        check_object_lock(client, run["bucket"])  # before anyone is asked to approve
        selection = select_rows(client, run["bucket"], run["prefix"], query)
        template = run.get("key_template") or DEFAULT_KEY_TEMPLATE  # the archive DAGs' layout
        objects = sum(
            len(targets_of(row, run["prefix"], template)) for row in selection.rows
        )  # scope-checked
    requested_by = params.get("requested_by") or getattr(dag_run, "triggering_user_name", None)
    dialogs = sorted({str(row.get("dialog_id")) for row in selection.rows})
    numbers = ", ".join(query.phone_numbers) or "-"
    subject = (
        f"Legal hold {ACTIONS[action]} ({action}): {len(selection.rows)} call segment(s) of sub-account "
        f"{query.sub_account_id}, {query.date_from}..{query.date_to}"
    )
    body = "\n".join([
        f"**Requested by**: {requested_by or 'unknown'}  ",
        f"**Reason**: {params.get('hold_reason') or '-'}  ",
        f"**Archive**: s3://{run['bucket']}/{run['prefix']}  ",
        f"**Numbers**: {numbers}; **dialogs**: {', '.join(query.dialog_ids) or '-'}  ",
        f"**Selected**: {len(selection.rows)} segment(s), {objects} object version(s) (recording, sidecar, "
        f"transcript); days without an index: {', '.join(selection.days_without_index) or 'none'}  ",
        f"**First dialogs**: {', '.join(dialogs[:PREVIEW]) or 'none'}{' ...' * (len(dialogs) > PREVIEW)}",
    ])  # fmt: skip
    return {
        "bucket": run["bucket"], "prefix": run["prefix"], "aws_conn_id": run["aws_conn_id"],
        "sub_account_id": query.sub_account_id, "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(), "phone_numbers": list(query.phone_numbers),
        "dialog_ids": list(query.dialog_ids), "all_in_range": query.all_in_range, "action": action,
        "requested_by": requested_by, "reason": params.get("hold_reason"), "key_template": template,
        "segments": len(selection.rows), "objects": objects, "subject": subject, "body": body,
        **{name: run.get(name) for name in OPTION_NAMES},
    }  # fmt: skip


def _connection_sub_account(run: dict[str, Any]) -> str:
    """The sub-account of the run's RingCX connection (no request to RingCX)."""
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook

    return str(RingCXHook(ringcx_conn_id=run["ringcx_conn_id"]).settings.sub_account_id)
