"""RingCXLegalHoldOperator: "apply legal hold" - hold or release every object of the calls a query selects.

See :mod:`airflow_provider_ringcx.holds` for why the selection reads the archive index, and for the
guarantees (scope, Object Lock, idempotence, audit record).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.holds import audit
from airflow_provider_ringcx.holds.apply import ACTIONS, Change, check_object_lock, set_holds, targets_of
from airflow_provider_ringcx.holds.query import HoldQuery, confirm, limit, select_rows
from airflow_provider_ringcx.models import printable
from airflow_provider_ringcx.operators.base import RingCXToS3BaseOperator
from airflow_provider_ringcx.s3.options import OPTION_NAMES

if TYPE_CHECKING:
    from airflow.sdk import Context


class RingCXLegalHoldOperator(RingCXToS3BaseOperator):
    """Apply (or release) an S3 Object Lock legal hold on every archived call a query selects.

    The query reads the archive index (:mod:`airflow_provider_ringcx.index`) of ``sub_account_id`` for the
    days ``date_from``..``date_to`` (UTC, a segment's day is the day it ended) and selects the segments
    whose ANI or DNIS is one of ``phone_numbers`` (digits compared) or whose dialog is one of
    ``dialog_ids`` (or every archived segment with ``all_in_range``). For each, the recording version the
    index names, its sidecar, its transcript and its AI summaries get the legal hold ``ON``
    (``action="apply"``) or ``OFF`` (``"release"``), by ``VersionId``; a version already in that status is
    left alone, so a second run changes nothing and says so.

    Before any change: the bucket must have Object Lock
    (:class:`~airflow_provider_ringcx.exceptions.RingCXObjectLockError` otherwise), and every recording key
    must be the one ``key_template`` gives the row's sub-account, dialog and segment under ``prefix`` (so
    a crafted index row of one sub-account cannot name another's call), and its sidecar and transcript the
    recording's own, and each selected row must agree with its recording's sidecar (the segment, its day
    and the numbers or dialog the request names, as the locked sidecar records them)
    (:class:`~airflow_provider_ringcx.exceptions.RingCXHoldScopeError` otherwise, naming the row and key).

    Every run writes an audit record (JSON, written once, with the compliance options) at
    :func:`~airflow_provider_ringcx.keys.hold_audit_key`: the query, ``requested_by``, the DAG run's
    triggering user, the approval (the XCom of ``approval_task_id``, e.g. an ``ApprovalOperator``), the
    ``reason``, and per object its key, version and status before and after. Its key is pushed as XCom
    ``audit_key``. The task fails (after writing the record) if an object the index names is missing; if
    S3 refuses a request midway, the record of the objects handled until then, with ``error``, is written
    before the task fails.

    **XCom**: ``{"action", "segments", "counts": {"objects", "changed", "unchanged", "missing", "failed"},
    "message", "audit_key", "days_without_index"}``; ``message`` says what changed, or "nothing to change:
    all N object version(s) already have legal hold ON".

    :param bucket: the archive bucket. (templated)
    :param prefix: the archive's key prefix; nothing outside it is touched. (templated)
    :param sub_account_id: the RingCX sub-account whose index is read. (templated)
    :param date_from: first UTC day, ``YYYY-MM-DD``. (templated)
    :param date_to: last UTC day, inclusive (default ``date_from``). (templated)
    :param phone_numbers: ANI/DNIS to select, a list or comma-separated text. (templated)
    :param dialog_ids: dialog ids to select, a list or comma-separated text. (templated)
    :param all_in_range: select every archived segment of the range. (templated)
    :param action: ``"apply"`` (legal hold ON) or ``"release"`` (OFF). (templated)
    :param requested_by: who asked (a person, a ticket): copied into the audit record. (templated)
    :param reason: why (matter, case number): copied into the audit record. (templated)
    :param approval_task_id: the approval task whose return value (chosen option, who, when) the audit
        record keeps; a rejection there skips this task in the example DAG.
    :param max_segments: refuse a selection of more segments (default 10000). (templated)
    :param aws_conn_id: the ``aws`` connection.
    :param key_template: the archive DAGs' WAV key template: a row's recording key must be the one it gives
        the row's sub-account, dialog and segment, else the request is refused. (templated)
    :param server_side_encryption: ``AES256`` or ``aws:kms`` for the audit record. (templated)
    :param kms_key_id: KMS key for ``aws:kms``. (templated)
    :param storage_class: S3 storage class of the audit record. (templated)
    :param tags: object tags of the audit record, a dict. (templated)
    :param object_lock_mode: ``GOVERNANCE`` or ``COMPLIANCE`` for the audit record. (templated)
    :param object_lock_retention_days: the audit record's retention, from the request. (templated)
    :param object_lock_legal_hold: put a legal hold on the audit record itself. (templated)

    Example::

        RingCXLegalHoldOperator(
            task_id="apply_legal_hold",
            bucket="call-archive",
            sub_account_id="12345",
            date_from="2026-03-01",
            date_to="2026-03-31",
            phone_numbers=["+1 555 010 0100"],
            requested_by="legal@example.com",
            reason="Matter 2026-17",
            approval_task_id="approve_legal_hold",
        )
    """

    template_fields: Sequence[str] = (
        "bucket", "prefix", "sub_account_id", "date_from", "date_to", "phone_numbers", "dialog_ids",
        "all_in_range", "action", "requested_by", "reason", "max_segments", "aws_conn_id", "key_template",
        *OPTION_NAMES,
    )  # fmt: skip
    template_fields_renderers = {"tags": "json", "phone_numbers": "json", "dialog_ids": "json"}
    ui_color = "#cc99ff"

    def __init__(
        self,
        *,
        bucket: str,
        sub_account_id: str,
        date_from: date | str,
        date_to: date | str | None = None,
        prefix: str = "ringcx",
        phone_numbers: Sequence[str] | str | None = None,
        dialog_ids: Sequence[str] | str | None = None,
        all_in_range: bool | str = False,
        action: str = "apply",
        requested_by: str | None = None,
        reason: str | None = None,
        approval_task_id: str | None = None,
        max_segments: int | str = 10000,
        aws_conn_id: str | None = "aws_default",
        key_template: str = keys.DEFAULT_KEY_TEMPLATE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if "{{" not in str(action):
            _status_of(action)  # fail at parse time for a typo
        if isinstance(key_template, str) and "{{" not in key_template:  # else an XComArg or a template
            keys.validate_key_template(key_template)
        self.key_template = key_template
        self.bucket = bucket
        self.prefix = prefix
        self.sub_account_id = sub_account_id
        self.date_from = date_from
        self.date_to = date_to
        self.phone_numbers = phone_numbers
        self.dialog_ids = dialog_ids
        self.all_in_range = all_in_range
        self.action = action
        self.requested_by = requested_by
        self.reason = reason
        self.approval_task_id = approval_task_id
        self.max_segments = max_segments
        self.aws_conn_id = aws_conn_id

    def query(self) -> HoldQuery:
        """The request's selection, from the rendered arguments."""
        from airflow_provider_ringcx.operators.report import as_flag

        return HoldQuery.build(
            sub_account_id=self.sub_account_id, date_from=self.date_from, date_to=self.date_to,
            phone_numbers=self.phone_numbers, dialog_ids=self.dialog_ids,
            all_in_range=as_flag(self.all_in_range, "all_in_range"),
        )  # fmt: skip

    def execute(self, context: Context) -> dict[str, Any]:
        started = datetime.now(timezone.utc)
        action, status, query = str(self.action).strip().lower(), _status_of(self.action), self.query()
        options = self.write_options()
        client = self.s3_hook.get_conn()
        check_object_lock(client, self.bucket)
        selection = select_rows(client, self.bucket, self.prefix, query)
        limit(selection.rows, int(self.max_segments))
        targets = [t for row in selection.rows for t in targets_of(row, self.prefix, self.key_template)]
        confirm(client, self.bucket, query, selection.rows)  # by each recording's locked sidecar
        self.log.info(
            "legal hold %s (%s): %d segment(s), %d object version(s) from the index of %d day(s) (%d without "
            "an index object)", action, status, len(selection.rows), len(targets), len(selection.days_read),
            len(selection.days_without_index),
        )  # fmt: skip
        done: list[Change] = []

        def progress(change: Change) -> None:
            done.append(change)
            self._log_change(change)

        audit_args = {
            "context": context, "client": client, "started": started, "action": action, "status": status,
            "query": query, "selection": selection, "options": options,
        }  # fmt: skip
        try:
            changes = set_holds(client, self.bucket, targets, status, progress=progress)
        except Exception as err:  # what changed before S3 refused is audited too, then the task fails
            self.write_audit(
                **audit_args, changes=done, index_days=None, error=f"{type(err).__name__}: {err}"
            )
            raise
        index_days = self.update_index(client, selection.rows, changes, query, options)
        record, audit_key = self.write_audit(**audit_args, changes=changes, index_days=index_days)
        return self.conclude(record, audit_key)

    def write_audit(self, *, context: Context, client: Any, started: datetime, action: str, status: str,
                    query: HoldQuery, selection: Any, options: Any, changes: Sequence[Change],
                    index_days: list[str] | None,
                    error: str | None = None) -> tuple[dict[str, Any], str]:  # fmt: skip
        """Build and write the request's audit record (once per try); push its key as XCom ``audit_key``."""
        run = _run_info(context)
        record = audit.build_record(
            action=action, status=status, query=query.as_dict(), bucket=self.bucket, prefix=self.prefix,
            changes=changes, requested_by=self.requested_by, triggered_by=_triggered_by(context),
            approval=self.approval(context), reason=self.reason, run=run, started_at=started,
            days_read=selection.days_read, days_without_index=selection.days_without_index,
            segments=len(selection.rows), index_days_updated=index_days, error=error,
        )  # fmt: skip
        # + a nonce: the same try may not write two records under one key
        request = f"{run.get('run_id') or 'manual'}_{run.get('try_number') or 0}_{uuid.uuid4().hex[:8]}"
        key = keys.hold_audit_key(self.prefix, query.sub_account_id, started, f"{action}_{request}")
        written = audit.write_record(client, self.bucket, key, record, options)
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="audit_key", value=written["key"])
        return record, written["key"]

    def conclude(self, record: dict[str, Any], audit_key: str) -> dict[str, Any]:
        """Log the outcome, fail over missing or unconfirmed objects, return the summary."""
        counts, status = record["counts"], record["legal_hold_status"]
        if counts["objects"] and counts["changed"] == 0 and counts["objects"] == counts["unchanged"]:
            message = f"nothing to change: all {counts['objects']} object version(s) already have legal hold "
            message += status
        elif not counts["objects"]:
            message = "nothing to change: the query selects no archived call"
        else:
            message = (
                f"legal hold {status}: {counts['changed']} object version(s) changed, {counts['unchanged']} "
                f"already {status}"
            )
        self.log.info("%s (audit record %s)", message, audit_key)
        bad = [obj for obj in record["objects"] if obj["result"] in ("missing", "failed")]
        if bad:
            named = ", ".join(f"{obj['kind']} {printable(obj['key'])} ({obj['result']})" for obj in bad[:5])
            raise AirflowFailException(
                f"{len(bad)} object(s) the index names could not be given legal hold "
                f"{record['legal_hold_status']}: {named}{' ...' if len(bad) > 5 else ''}; the others were, "
                f"see the audit record {audit_key}. Rebuild the index day (a stale version id) or re-archive "
                "the window (a missing object), then run the request again"
            )
        return {
            "action": record["action"], "segments": record["segments"], "counts": counts, "message": message,
            "audit_key": audit_key, "days_without_index": record["days_without_index"],
        }  # fmt: skip

    def update_index(self, client: Any, rows: Sequence[dict[str, Any]], changes: Sequence[Change],
                     query: HoldQuery, options: Any) -> list[str] | None:  # fmt: skip
        """Set ``legal_hold`` of the selected rows to what S3 now says of their recordings, in the index
        (the same conditional merge as the window reports). The holds are the record; the index is derived,
        so a failure here is logged and the record says ``index_days_updated: null``."""
        from airflow_provider_ringcx.index.store import merge_rows

        after = {(c.dialog_id, c.segment_id): c.after for c in changes if c.kind == "recording" and c.after}
        stale = []
        for row in rows:
            held = after.get((str(row.get("dialog_id")), str(row.get("segment_id"))))
            if held is not None and row.get("legal_hold") != (held == "ON"):
                stale.append({**row, "legal_hold": held == "ON"})
        if not stale:
            return []
        try:
            written = merge_rows(client, self.bucket, self.prefix, query.sub_account_id, stale,
                                 fallback_day=query.date_from, options=options)  # fmt: skip
        except Exception as err:  # the holds stand; the index is rebuilt or updated by the next report
            self.log.warning("the index was not updated with the new legal hold status: %s", err)
            return None
        return [day.day.isoformat() for day in written]

    def approval(self, context: Context) -> dict[str, Any] | None:
        """The approval task's answer as the audit record keeps it (``None`` without ``approval_task_id``)."""
        if not self.approval_task_id:
            return None
        return audit.approval_of(context["ti"].xcom_pull(task_ids=self.approval_task_id))

    def _log_change(self, change: Change) -> None:
        if change.result != "unchanged":
            self.log.info(
                "%s %s %s (version %s): %s -> %s", change.result, change.kind, printable(change.key),
                change.version_id, change.before, change.after,
            )  # fmt: skip


def _status_of(action: Any) -> str:
    """``ON`` for ``apply``, ``OFF`` for ``release``.

    :raises RingCXConfigError: another action.
    """
    status = ACTIONS.get(str(action).strip().lower())
    if status is None:
        raise RingCXConfigError(f"action={action!r}: use 'apply' (legal hold ON) or 'release' (OFF)")
    return status


def _triggered_by(context: Context | dict[str, Any]) -> str | None:
    run = context.get("dag_run")
    return getattr(run, "triggering_user_name", None) if run is not None else None


def _run_info(context: Context | dict[str, Any]) -> dict[str, Any]:
    ti = context.get("ti")
    names = ("dag_id", "run_id", "task_id", "try_number", "map_index")
    return {name: getattr(ti, name, None) for name in names} if ti is not None else {}
