"""RingCXWindowReportOperator: "report window" - the window's verdict, reconciled against S3.

The last step of an archive DAG: after the downloads (whatever their state), every segment the window
manifest expects is checked in S3 by the one verdict, the report object is written, the Asset event
carries the counts, and the task fails if anything expected is not archived. See
:mod:`airflow_provider_ringcx.window_report` for the data path and :mod:`airflow_provider_ringcx.report`
for the report's content.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ringcx import jsonutil, keys
from airflow_provider_ringcx.assets import event_extra, names_this_archive
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.lineage.mixins import ReportLineage
from airflow_provider_ringcx.links import REPORT_LINK_XCOM_KEY, RingCXReportLink, S3Location, push_location
from airflow_provider_ringcx.operators.base import RingCXToS3BaseOperator
from airflow_provider_ringcx.report import NOT_ARCHIVED_STATUSES
from airflow_provider_ringcx.runinfo import readable_summary, report_table
from airflow_provider_ringcx.s3.options import OPTION_NAMES
from airflow_provider_ringcx.transfers.manifest_reader import ManifestIntegrityError
from airflow_provider_ringcx.window_report import (
    RUN_NOTE_XCOM_KEY,
    WindowReportSpec,
    failure_message,
    report_window,
    run_note,
)
from airflow_provider_ringcx.windows import DEFAULT_LAG, Window, run_window

if TYPE_CHECKING:
    from airflow.sdk import Context

#: The task log (a logger, not print: stdout is buffered and may arrive after the task's end).
task_log = logging.getLogger("airflow.task")

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off", "none"}
#: What ``allow_unarchived`` may name: the statuses of a segment that is not archived, and manifest rows
#: that could not be parsed.
ALLOWABLE_STATUSES = (*NOT_ARCHIVED_STATUSES, "unparseable")


class RingCXWindowIncompleteError(AirflowFailException):
    """Expected recordings of the window are not archived; the message names them and the report.

    Not retried: a second reconciliation finds the same gaps. Clear the failed download tasks (they land
    what is missing) and this task with them.
    """


class RingCXWindowReportOperator(ReportLineage, RingCXToS3BaseOperator):
    """Reconcile one window's manifest against S3, write the window report, fail if anything is missing.

    Every segment the window manifest lists with a recording is judged by
    :func:`~airflow_provider_ringcx.transfers.verdict.verify_archived` (object present, this segment's valid
    sidecar, sizes and stored checksums agreeing; with ``verify_content`` the bytes are re-read and hashed).
    The download tasks' summaries (XCom ``summary`` of ``download_task_ids``) give the reason of what is not
    in S3 (403, 404, a failure). With ``metadata_task_id`` the manifest is first checked against the identity
    that task recorded (XCom ``manifest``): an edited or overwritten manifest fails the task without retries.
    With ``rescan`` the late arrivals the rescan manifest lists (and ``rescan_original_manifest_key`` lacks)
    are checked too.

    The report (JSON, see :mod:`airflow_provider_ringcx.report`) is written to ``report_key`` with the
    compliance options, as the recordings are. The task log ends with the outcome table
    (:func:`airflow_provider_ringcx.runinfo.report_table`); the return value (XCom, a few hundred bytes) is
    :func:`~airflow_provider_ringcx.runinfo.readable_summary`; every :class:`~airflow.sdk.Asset` in
    ``outlets`` gets an event whose ``extra`` holds the window (``window_start``/``window_end``), the
    sub-account, the counts and the archive's S3 location (:mod:`airflow_provider_ringcx.assets`); the
    extra link "Window report" (:class:`~airflow_provider_ringcx.links.RingCXReportLink`) opens the report
    object. The report in one
    line (:func:`~airflow_provider_ringcx.window_report.run_note`, e.g. ``14:00-14:15 · 53/53 archived ·
    16.3 MB``) is pushed as XCom ``ringcx_run_note``, complete or not; the provider's listener
    (:mod:`airflow_provider_ringcx.run_notes`) makes it the DAG run's note when the run ends.

    The task fails with :class:`RingCXWindowIncompleteError` (an ``AirflowFailException``: not retried) when
    a segment that is not allowed by ``allow_unarchived`` is not archived, or rows of the manifest could not
    be parsed; a configuration error (a bad option, no data interval) fails it without retries too. A
    missing manifest (the metadata task did not complete) fails it retryably.

    **Trigger rule**: ``all_done`` by default, unlike most operators: the report is the window's verdict,
    so it runs when the downloads are over whether they succeeded or not (a failed batch is then named in
    the report). Pass ``trigger_rule`` to choose another.

    :param bucket: the archive bucket. (templated)
    :param prefix: key prefix of the archive. (templated)
    :param key_template: WAV key template of the download tasks (see :mod:`airflow_provider_ringcx.keys`).
        (templated)
    :param sub_account_id: the RingCX sub-account; default: that of ``ringcx_conn_id``. (templated)
    :param window_start: window start (ISO-8601 or aware datetime); default: the data interval shifted back
        by ``lag``, as the metadata operator does. (templated)
    :param window_end: window end. (templated)
    :param lag: settle lag (minutes or ``timedelta``), for the default window. (templated)
    :param manifest_key: the window manifest; default: the standard key of the window. (templated)
    :param report_key: where the report is written; default: the standard key of the window. (templated)
    :param metadata_task_id: the metadata task whose XCom ``manifest`` identifies the manifest. Without
        it (or without that XCom) the task fails, unless ``allow_unverified_manifest``.
    :param rescan_metadata_task_id: the same for the rescan's manifest (``fetch_rescan_window`` in the
        example DAGs).
    :param allow_unverified_manifest: read a manifest whose identity is absent, unverified (the report
        says ``"verified": false``). Default False. (templated)
    :param download_task_ids: the download tasks (mapped or not) whose XCom ``summary`` explain failures.
    :param verify_content: re-read and re-hash every object (slower). (templated)
    :param allow_unarchived: statuses that do not fail the task, e.g. ``["forbidden"]`` (any of
        :data:`ALLOWABLE_STATUSES`; another name fails the task as a configuration error). (templated)
    :param rescan: check the late arrivals of a rescan (needs the three ``rescan_*`` keys and bounds).
        (templated)
    :param rescan_start: start of the rescanned earlier window. (templated)
    :param rescan_end: end of the rescanned earlier window. (templated)
    :param rescan_manifest_key: the rescan's manifest. (templated)
    :param rescan_original_manifest_key: the earlier window's own manifest. (templated)
    :param rescan_note: a sentence on the rescan decision, copied into the report. (templated)
    :param ringcx_conn_id: the ``ringcx`` connection (only read for the default ``sub_account_id``).
    :param aws_conn_id: the ``aws`` connection.
    :param server_side_encryption: ``AES256`` or ``aws:kms`` for the report. (templated)
    :param kms_key_id: KMS key for ``aws:kms``. (templated)
    :param storage_class: S3 storage class of the report. (templated)
    :param tags: object tags, a dict. (templated)
    :param object_lock_mode: ``GOVERNANCE`` or ``COMPLIANCE``. (templated)
    :param object_lock_retention_days: retain-until = window end + this many days. (templated)
    :param object_lock_legal_hold: put a legal hold on the report. (templated)

    Example::

        fetch = RingCXInteractionMetadataOperator(task_id="fetch_metadata_window", bucket="call-archive")
        download = RingCXRecordingsToS3Operator.partial(
            task_id="download_segments", bucket="call-archive"
        ).expand(batch=fetch.output)
        download >> RingCXWindowReportOperator(
            task_id="report_window",
            bucket="call-archive",
            metadata_task_id="fetch_metadata_window",
            download_task_ids=["download_segments"],
            outlets=[archive_asset("call-archive")],  # from airflow_provider_ringcx.assets
        )
    """

    template_fields: Sequence[str] = (
        "bucket",
        "prefix",
        "key_template",
        "sub_account_id",
        "window_start",
        "window_end",
        "lag",
        "manifest_key",
        "report_key",
        "verify_content",
        "allow_unarchived",
        "rescan",
        "rescan_start",
        "rescan_end",
        "rescan_manifest_key",
        "rescan_original_manifest_key",
        "rescan_note",
        "allow_unverified_manifest",
        "ringcx_conn_id",
        "aws_conn_id",
        *OPTION_NAMES,
    )
    template_fields_renderers = {"tags": "json", "allow_unarchived": "json"}
    ui_color = "#99ccff"
    operator_extra_links = (RingCXReportLink(),)

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "ringcx",
        key_template: str | None = None,
        sub_account_id: str | None = None,
        window_start: datetime | str | None = None,
        window_end: datetime | str | None = None,
        lag: timedelta | float | str = DEFAULT_LAG,
        manifest_key: str | None = None,
        report_key: str | None = None,
        metadata_task_id: str | None = None,
        rescan_metadata_task_id: str | None = None,
        allow_unverified_manifest: bool | str = False,
        download_task_ids: Sequence[str] = (),
        verify_content: bool | str = False,
        allow_unarchived: Sequence[str] | str = (),
        rescan: bool | str = False,
        rescan_start: datetime | str | None = None,
        rescan_end: datetime | str | None = None,
        rescan_manifest_key: str | None = None,
        rescan_original_manifest_key: str | None = None,
        rescan_note: str | None = None,
        ringcx_conn_id: str = "ringcx_default",
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.key_template = key_template
        self.sub_account_id = sub_account_id
        self.window_start = window_start
        self.window_end = window_end
        self.lag = lag
        self.manifest_key = manifest_key
        self.report_key = report_key
        self.metadata_task_id = metadata_task_id
        self.rescan_metadata_task_id = rescan_metadata_task_id
        self.allow_unverified_manifest = allow_unverified_manifest
        self.download_task_ids = (
            [download_task_ids] if isinstance(download_task_ids, str) else download_task_ids
        )
        self.verify_content = verify_content
        self.allow_unarchived = allow_unarchived
        self.rescan = rescan
        self.rescan_start = rescan_start
        self.rescan_end = rescan_end
        self.rescan_manifest_key = rescan_manifest_key
        self.rescan_original_manifest_key = rescan_original_manifest_key
        self.rescan_note = rescan_note
        self.ringcx_conn_id = ringcx_conn_id
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        spec = self.spec(context)
        self.note_lineage(spec=spec)  # for the OpenLineage events
        location = S3Location.for_hook(self.s3_hook, spec["bucket"], spec["report_key"])
        push_location(context, REPORT_LINK_XCOM_KEY, location)  # first: a failed report still has its link
        ti = context["ti"]
        try:
            report = report_window(
                self.s3_hook.get_conn(),
                spec,
                summaries=self.download_summaries(ti),
                run_info={"dag_id": ti.dag_id, "run_id": ti.run_id, "try_number": ti.try_number},
                manifest_identity=self.manifest_identity(ti),
                rescan_identity=self.manifest_identity(ti, self.rescan_metadata_task_id),
                metadata_task_id=self.metadata_task_id or "the metadata",
                rescan_task_id=self.rescan_metadata_task_id or "the rescan's metadata",
            )
        except ManifestIntegrityError as err:  # an edited manifest: a retry would read the same bytes
            raise AirflowFailException(str(err)) from err
        task_log.info("%s", report_table(report))
        self.note_lineage(report=report)
        ti.xcom_push(key=RUN_NOTE_XCOM_KEY, value=run_note(report))  # the run's note, failed or not
        if not report["complete"]:
            raise RingCXWindowIncompleteError(failure_message(report))
        self.emit_asset_events(context, report, spec)
        return readable_summary(report)

    def emit_asset_events(self, context: Context, report: Mapping[str, Any], spec: WindowReportSpec) -> None:
        """Give every Asset in ``outlets`` this window's event: window, sub-account, counts, locations
        (:func:`~airflow_provider_ringcx.assets.event_extra`). An ``s3://`` Asset that names another place
        than this run's archive (its URI was fixed at parse time, the run's bucket came from a param) is
        still updated, with a warning: ``extra["archive"]`` says where the window really is."""
        extra = event_extra(report, spec.get("prefix"))
        for outlet in self.outlets or ():
            if not isinstance(outlet, Asset):
                continue
            if not names_this_archive(outlet.uri, spec["bucket"], spec.get("prefix"), spec["sub_account_id"]):
                task_log.warning(
                    "Asset %s has URI %s, but this run archived to %s (the run's bucket or prefix is not the "
                    "one the DAG was parsed with: set RINGCX_BUCKET/RINGCX_PREFIX where the DAG is parsed); "
                    "the event's extra['archive'] names the real location",
                    outlet.name, outlet.uri, extra["archive"],
                )  # fmt: skip
            context["outlet_events"][outlet].extra = extra

    def spec(self, context: Context | Mapping[str, Any]) -> WindowReportSpec:
        """What the report reads, from the rendered arguments (defaults filled in, types checked).

        :raises AirflowFailException: ``bucket`` rendered empty: the task that provides it did not run.
        :raises RingCXConfigError: a bad window bound, lag, flag or ``allow_unarchived``.
        """
        if not self.bucket:
            raise AirflowFailException(
                f"{self.task_id}: no bucket - the task that provides it (resolve_run in the example DAGs) "
                "did not complete; see its log for the configuration error"
            )
        window = self.resolve_window(context)
        sub_account = str(self.sub_account_id or self.hook.settings.sub_account_id)
        spec: WindowReportSpec = {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "key_template": self.key_template or None,
            "sub_account_id": sub_account,
            "window_start": window.as_dict()["start"],
            "window_end": window.as_dict()["end"],
            "manifest_key": self.manifest_key
            or keys.manifest_key(self.prefix, sub_account, window.start, window.end),
            "report_key": self.report_key
            or keys.report_key(self.prefix, sub_account, window.start, window.end),
            "verify_content": as_flag(self.verify_content, "verify_content"),
            "allow_unarchived": _statuses(self.allow_unarchived),
            "rescan": as_flag(self.rescan, "rescan"),
            "rescan_start": _iso(self.rescan_start),
            "rescan_end": _iso(self.rescan_end),
            "rescan_manifest_key": self.rescan_manifest_key or None,
            "rescan_original_manifest_key": self.rescan_original_manifest_key or None,
            "rescan_note": self.rescan_note,
            "allow_unverified_manifest": as_flag(self.allow_unverified_manifest, "allow_unverified_manifest"),
        }
        spec.update({name: getattr(self, name) for name in OPTION_NAMES})  # type: ignore[typeddict-item]
        self.write_options()  # a bad compliance option fails here, before any S3 call
        return spec

    def resolve_window(self, context: Context | Mapping[str, Any]) -> Window:
        """The window of this run (see :func:`~airflow_provider_ringcx.windows.run_window`)."""
        return run_window(self.window_start, self.window_end, self.lag, context)

    def download_summaries(self, ti: Any) -> list[Any]:
        """The XCom ``summary`` of every (mapped) download task; ``None`` for one that did not push it."""
        found: list[Any] = []
        for task_id in self.download_task_ids:
            found += ti.xcom_pull(task_ids=[task_id], key="summary") or []
        return found

    def manifest_identity(self, ti: Any, task_id: str | None = "") -> Mapping[str, Any] | None:
        """A manifest's identity as its metadata task (default ``metadata_task_id``) recorded it, or
        ``None`` (then the report fails unless ``allow_unverified_manifest``)."""
        task_id = self.metadata_task_id if task_id == "" else task_id
        if not task_id:
            return None
        value = ti.xcom_pull(task_ids=task_id, key="manifest")
        return value if isinstance(value, Mapping) else None


def as_flag(value: Any, name: str) -> bool:
    """A flag that may come from a template (text): ``bool("false")`` would be True.

    :raises RingCXConfigError: not a bool nor true/false, 1/0, yes/no, on/off.
    """
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise RingCXConfigError(f"{name}={value!r} is not a boolean; use true or false")


def _statuses(value: Sequence[str] | str | None) -> list[str]:
    if isinstance(value, str):  # a rendered template: JSON, or comma-separated
        try:
            value = jsonutil.strict_loads(value) if value.strip().startswith("[") else value.split(",")
        except ValueError as err:
            raise RingCXConfigError(f"allow_unarchived={value!r} is not a JSON list ({err})") from None
    if not isinstance(value, Sequence) or not all(isinstance(item, str) for item in value):
        raise RingCXConfigError(
            f'allow_unarchived={value!r} must be a list of statuses, e.g. ["forbidden"] or '
            '"forbidden,missing"'
        )
    statuses = [item.strip() for item in value if item.strip()]
    unknown = [status for status in statuses if status not in ALLOWABLE_STATUSES]
    if unknown:  # a typo would allow nothing, silently
        raise RingCXConfigError(
            f"allow_unarchived names {', '.join(map(repr, unknown))}, not a status of the report; use some "
            f"of {', '.join(ALLOWABLE_STATUSES)}"
        )
    return statuses


def _iso(value: datetime | str | None) -> str | None:
    if not value:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)
