"""RingCXInteractionMetadataOperator: "fetch metadata window" -> window manifest + its batch descriptors.

Long waits defer (issue #12 item 13): the metadata budget (9 calls per 15 minutes by default) or a 429's
``Retry-After`` can ask for many minutes of waiting, and a sleeping task holds a worker and the only slot
of the ``ringcx_metadata`` pool. With ``defer_waits_over`` set (120 s by default) the hook raises
:class:`~airflow_provider_ringcx.exceptions.RingCXWaitRequired` instead of sleeping; the operator defers on
Airflow's ``DateTimeTrigger`` until the wait ends and then fetches again. The budget state is shared
through files, so the resumed task acquires its slot like any other caller.

Deferral always terminates (issue #12 item 3). A window needs ``ceil(window / max_window_seconds)`` calls
(more across a DST fall-back hour), and a deferral throws away what the task fetched: the manifest is one
write-once upload that commits only whole, and the rows cannot travel through the trigger. If the task
deferred at every long wait, a window needing more calls than one budget window admits (e.g. 12 one-hour
calls against 9 per 15 minutes) would spend its slots, defer, resume, spend them again on the same first
calls, and never finish. So a fetch may defer only while deferring loses nothing:

* only before its first metadata call was answered 2xx (the budget's ``on_success`` turns deferral off:
  every later wait, budget or ``Retry-After``, is slept in the worker, bounded by ``retry_max_wait_seconds``
  as any sleeping caller is), and
* only once per task try: :meth:`execute_after_wait` fetches with deferral off.

A window therefore costs exactly its planned calls, plus any the vendor refused or cut short (a 429, a 5xx,
a broken body), however its waits fall. The price is a worker held while a long window waits for later
budget slots; the pool's slot would be idle anyway, as no other metadata task can call RingCX while the
shared budget is full. Keeping the fetched rows across deferrals instead would mean unlocked partial copies
of the rows in S3 beside the write-once, Object-Locked manifest, and a resume protocol for them: more to get
wrong than a worker slot is worth.

A window whose planned calls cannot fit in ``execution_timeout`` at the budget's pace is refused before the
first call (a :class:`~airflow_provider_ringcx.exceptions.RingCXConfigError` naming ``max_window_seconds``,
the window, ``metadata_budget`` and the timeout), since each retry would time out the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ringcx.exceptions import (
    RingCXConfigError,
    RingCXWaitRequired,
    RingCXWindowNotReadyError,
)
from airflow_provider_ringcx.hooks.bounds import MAX_WINDOW_LIMIT, RANGES
from airflow_provider_ringcx.hooks.budget import DEFER_WAIT_SECONDS, format_budget, pacing_seconds
from airflow_provider_ringcx.hooks.budget_rule import LIVE, check_priority
from airflow_provider_ringcx.hooks.metadata import plan_windows
from airflow_provider_ringcx.keys import manifest_key as default_manifest_key
from airflow_provider_ringcx.lineage.mixins import MetadataLineage
from airflow_provider_ringcx.models import ManifestBatch
from airflow_provider_ringcx.operators.base import RingCXToS3BaseOperator
from airflow_provider_ringcx.s3.options import OPTION_NAMES
from airflow_provider_ringcx.transfers.manifest import fetch_window_manifest
from airflow_provider_ringcx.transfers.manifest_reader import ManifestIntegrityError, manifest_exists
from airflow_provider_ringcx.triggers.window import WindowReadyTrigger
from airflow_provider_ringcx.windows import DEFAULT_LAG, Window, parse_lag, run_window

if TYPE_CHECKING:
    from airflow.sdk import Context


class RingCXInteractionMetadataOperator(MetadataLineage, RingCXToS3BaseOperator):
    """List one window's RingCX segments, write the window manifest to S3, return its batches.

    The window is ``[data_interval_start - lag, data_interval_end - lag)``, or ``[window_start,
    window_end)`` when both are given. It may be queried once its end is ``lag`` old; before that the
    task fails with :class:`~airflow_provider_ringcx.exceptions.RingCXWindowNotReadyError` saying when it
    will be ready, or, with ``deferrable=True``, defers on
    :class:`~airflow_provider_ringcx.triggers.window.WindowReadyTrigger` until then (no worker slot held).

    Every metadata row (with or without a recording, and rows that failed to parse, with the reason) is
    written to the window manifest, JSON Lines at
    ``{prefix}/_manifests/sub_account={id}/window={START}_{END}.jsonl`` (see
    :mod:`airflow_provider_ringcx.transfers.manifest`). The manifest is written once (``If-None-Match: *``)
    and
    never replaced: when it already exists (a retry, a re-run, a concurrent run) RingCX is not queried
    again and the batches are rebuilt from it, so retries spend no metadata budget and every run of a
    window maps the same batches.

    **XCom**: the return value is a list of batch descriptors
    (:class:`~airflow_provider_ringcx.models.ManifestBatch`, about 700 bytes each), one per batch of
    ``batch_size`` segments with ``hasRecording``: the manifest key, the batch's byte range in the manifest,
    its count and its first and last ids. Each mapped download task reads its own batch's rows from the
    manifest with one ranged GET, so the XCom grows with the batch count, not the rows, and the task keeps
    ~100 bytes per row (the hook's de-duplication digests): a window of 100,000 segments is 1,000
    descriptors (~335 KB), not 25 MB of refs. The batch size is raised
    automatically so that a window never yields more than ``max_batches`` (default 1000) batches, under
    Airflow's 1024 map-length cap.
    The manifest key and counts are pushed under the XCom keys ``manifest_key``, ``window`` and ``counts``,
    and the manifest's identity (ETag, VersionId, SHA-256 and size of the whole body, about 200 bytes) under
    ``manifest``: the report checks the manifest against it before trusting it, and each descriptor carries
    its range's SHA-256 and the ETag and VersionId (see
    :mod:`airflow_provider_ringcx.transfers.manifest_reader`).

    The manifest is written with the run's compliance options, as the recordings are: encryption, storage
    class, tags, and Object Lock retained until the window's end + ``object_lock_retention_days`` (see
    :mod:`airflow_provider_ringcx.s3.options`).

    :param bucket: S3 bucket of the archive. (templated)
    :param prefix: key prefix of the archive. (templated)
    :param window_start: explicit window start (ISO-8601 or aware datetime), overrides the data interval.
        (templated)
    :param window_end: explicit window end. (templated)
    :param lag: settle lag, a ``timedelta`` or minutes; default 15, never under 5. (templated)
    :param batch_size: segment refs per batch (default 100). (templated)
    :param max_batches: most batches per window (default 1000, under the 1024 map-length cap).
    :param manifest_key: explicit manifest key (e.g. for a late-arrival rescan that must not reuse the
        window's original manifest). (templated)
    :param ringcx_conn_id: the ``ringcx`` connection.
    :param sub_account_id: archive this sub-account with the connection's credentials instead of the
        connection's ``sub_account_id`` (one DAG per sub-account; see
        :mod:`airflow_provider_ringcx.subaccounts`): its budgets, paths and keys. (templated)
    :param aws_conn_id: the ``aws`` connection (AWS, MinIO or any S3-compatible endpoint).
    :param server_side_encryption: ``AES256`` or ``aws:kms`` for the manifest. (templated)
    :param kms_key_id: KMS key for ``aws:kms``. (templated)
    :param storage_class: S3 storage class of the manifest. (templated)
    :param tags: object tags, a dict. (templated)
    :param object_lock_mode: ``GOVERNANCE`` or ``COMPLIANCE``. (templated)
    :param object_lock_retention_days: retain-until = window end + this many days. (templated)
    :param object_lock_legal_hold: put a legal hold on the manifest. (templated)
    :param deferrable: defer until the window is ready instead of failing.
    :param defer_waits_over: a budget or ``Retry-After`` wait longer than this many seconds defers the task
        (no worker or pool slot held) instead of sleeping; ``None`` always sleeps. Default 120. Deferring
        needs a running triggerer (``airflow triggerer``; ``airflow standalone`` starts one).
    :param budget_priority: ``"live"`` (default) or ``"history"``: a backfill's metadata calls borrow a
        budget window's reserve only when it is back for the live DAG within one slot, so they never delay
        it by more than one slot (see :mod:`~airflow_provider_ringcx.hooks.budget_rule`). (templated)
    :param max_window_seconds: the longest ``timeInterval`` of one metadata call, at most the connection
        extra ``max_window_seconds`` (what the account accepts, which stays the cap); ``None`` (default): the
        connection's. The history DAG asks 10800 (the vendor's largest), so a day takes 8 calls wherever the
        connection allows 10800, and 24 at the connection's default 3600.

    Example::

        fetch = RingCXInteractionMetadataOperator(
            task_id="fetch_metadata_window",
            bucket="call-archive",
            prefix="ringcx",
            pool="ringcx_metadata",
        )
        RingCXRecordingsToS3Operator.partial(
            task_id="download_segments",
            bucket="call-archive",
        ).expand(batch=fetch.output)
    """

    template_fields: Sequence[str] = (
        "window_start",
        "window_end",
        "bucket",
        "prefix",
        "lag",
        "batch_size",
        "manifest_key",
        "ringcx_conn_id",
        "sub_account_id",
        "aws_conn_id",
        "budget_priority",
        *OPTION_NAMES,
    )
    ui_color = "#ff8800"

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "ringcx",
        window_start: datetime | str | None = None,
        window_end: datetime | str | None = None,
        lag: timedelta | float | str = DEFAULT_LAG,
        batch_size: int | str = 100,
        max_batches: int = 1000,
        manifest_key: str | None = None,
        ringcx_conn_id: str = "ringcx_default",
        sub_account_id: str | None = None,
        aws_conn_id: str | None = "aws_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        defer_waits_over: float | None = DEFER_WAIT_SECONDS,
        budget_priority: str = LIVE,
        max_window_seconds: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        problem = RANGES["max_window_seconds"].problem("max_window_seconds", max_window_seconds)
        if problem:
            raise RingCXConfigError(f"{problem}; None (default) uses the connection's max_window_seconds")
        self.max_window_seconds = max_window_seconds
        if defer_waits_over is not None and not 0 < float(defer_waits_over) <= 86400:
            raise RingCXConfigError(
                f"defer_waits_over={defer_waits_over!r}: use seconds in (0, 86400], or None to always sleep"
            )
        self.defer_waits_over = None if defer_waits_over is None else float(defer_waits_over)
        if not (isinstance(lag, str) and "{{" in lag):
            parse_lag(lag, name="lag")  # fail at parse time for a lag under 5 minutes
        if not 1 <= int(max_batches) <= 1024:
            raise RingCXConfigError(f"max_batches={max_batches}: use 1..1024 (Airflow's max_map_length)")
        self.bucket = bucket
        self.prefix = prefix
        self.window_start = window_start
        self.window_end = window_end
        self.lag = lag
        self.batch_size = batch_size
        self.max_batches = int(max_batches)
        self.manifest_key = manifest_key
        self.ringcx_conn_id = ringcx_conn_id
        self.sub_account_id = sub_account_id
        self.aws_conn_id = aws_conn_id
        self.deferrable = deferrable
        self.budget_priority = budget_priority
        if "{{" not in str(budget_priority):
            check_priority(budget_priority)  # fail at parse time for a typo

    def execute(self, context: Context) -> list[ManifestBatch]:
        window = self.resolve_window(context)
        ready_at = window.end + parse_lag(self.lag, name="lag")
        if datetime.now(timezone.utc) < ready_at:
            if self.deferrable:
                self.log.info("window %s is not ready; deferring until %s", window.key, ready_at.isoformat())
                self.defer(
                    trigger=WindowReadyTrigger(
                        ready_at=ready_at, window_start=window.start, window_end=window.end
                    ),
                    method_name="execute_complete",
                )
            raise RingCXWindowNotReadyError(
                f"window {window.key} ends at {window.end.isoformat()} and can be queried only once it is "
                f"{self.lag} old, at {ready_at.isoformat()}; retry after that time or use deferrable=True",
                ready_at=ready_at,
            )
        return self.fetch_or_defer(window, context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[ManifestBatch]:
        """Resume after :class:`WindowReadyTrigger` fired."""
        if not event or event.get("status") != "ready":
            raise RingCXConfigError(f"unexpected trigger event {event!r}")
        return self.fetch_or_defer(self.resolve_window(context), context)

    def execute_after_wait(self, context: Context, event: Any = None) -> list[ManifestBatch]:
        """Resume after a long budget or ``Retry-After`` wait was deferred (``DateTimeTrigger`` fired).

        The fetch does not defer again (module doc): any further wait is slept, so the try terminates.
        """
        self.log.info(
            "the deferred wait ended (%s); fetching the window, sleeping any further wait (a task defers at "
            "most once per try)",
            event,
        )
        return self.fetch_or_defer(self.resolve_window(context), context, may_defer=False)

    def fetch_or_defer(
        self, window: Window, context: Context | dict[str, Any], *, may_defer: bool = True
    ) -> list[ManifestBatch]:
        """:meth:`fetch`; a wait longer than ``defer_waits_over`` defers the task until it ends, as long as
        no metadata call has been answered yet (module doc).

        :param may_defer: ``False`` sleeps every wait (the resume after a deferral).
        :raises TaskDeferred: on :class:`RingCXWaitRequired` (resumes in :meth:`execute_after_wait`).
        """
        metadata, tokens = self.hook.metadata.budget, self.hook.tokens.budget
        metadata.defer_over = tokens.defer_over = self.defer_waits_over if may_defer else None

        def progressed() -> None:  # rows arrive: from now on a deferral would throw them away
            if metadata.defer_over is not None:
                self.log.info("first metadata call answered; later waits are slept, not deferred")
            metadata.defer_over = tokens.defer_over = None

        metadata.on_success = progressed
        try:
            return self.fetch(window, context)
        except RingCXWaitRequired as wait:
            self.log.info(
                "deferring until %s instead of holding a worker and a pool slot: %s",
                wait.until.isoformat(timespec="seconds"),
                wait.reason,
            )
            self.defer(trigger=DateTimeTrigger(moment=wait.until), method_name="execute_after_wait")
        finally:
            metadata.on_success = None

    def check_pace(self, window: Window) -> None:
        """Refuse a window whose planned calls cannot all be made within ``execution_timeout``.

        :raises RingCXConfigError: naming the window, ``max_window_seconds``, ``metadata_budget`` and the
            timeout, and what to change.
        """
        timeout = self.execution_timeout
        settings = self.hook.settings
        seconds = self.window_seconds()
        if timeout is None or not settings.metadata_budget:
            return
        calls = len(plan_windows(window.start, window.end, settings.timezone, seconds))
        pace = pacing_seconds(settings.metadata_budget, calls, self.hook.budget_priority)
        if pace < timeout.total_seconds():
            return
        length = (window.end - window.start).total_seconds()
        raise RingCXConfigError(
            f"window {window.key} ({length:g} s) needs {calls} interaction-metadata calls at connection "
            f"{seconds} s (connection extra max_window_seconds={settings.max_window_seconds} of "
            f"{settings.conn_id!r}, task max_window_seconds={self.max_window_seconds}), and its "
            f"metadata_budget={format_budget(settings.metadata_budget)!r} admits them "
            f"({self.hook.budget_priority} priority) no sooner than "
            f"{pace:g} s, not within this task's execution_timeout of {timeout.total_seconds():g} s: every "
            f"try would time out and start again from the first call. Raise max_window_seconds (up to "
            f"{MAX_WINDOW_LIMIT}, what the account allows), archive shorter windows (the DAG's interval or "
            "rescan lookback), or raise execution_timeout (RINGCX_METADATA_TIMEOUT_MINUTES in the example "
            "DAG)"
        )

    def window_seconds(self) -> int:
        """The ``timeInterval`` of this task's calls: ``max_window_seconds`` capped by the connection's
        (set on the hook's metadata client, which plans the calls)."""
        return self.hook.metadata.limit_window(self.max_window_seconds)

    def resolve_window(self, context: Context | Mapping[str, Any]) -> Window:
        """The window of this run (see :func:`~airflow_provider_ringcx.windows.run_window`)."""
        return run_window(self.window_start, self.window_end, self.lag, context)

    def fetch(self, window: Window, context: Context | dict[str, Any]) -> list[ManifestBatch]:
        """Write (or reuse) the window manifest and return its batch descriptors."""
        sub_account = str(self.hook.settings.sub_account_id)
        key = self.manifest_key or default_manifest_key(self.prefix, sub_account, window.start, window.end)
        self.note_lineage(window=(window.start, window.end), key=key)  # for the OpenLineage events
        client = self.s3_hook.get_conn()
        options = self.write_options()
        options.check_bucket(client, self.bucket)  # before spending a metadata call
        if not manifest_exists(client, self.bucket, key):
            seconds, cap = self.window_seconds(), self.hook.settings.max_window_seconds
            if self.max_window_seconds is not None and self.max_window_seconds > cap:
                self.log.info(
                    "metadata calls of %d s: the connection extra max_window_seconds=%d of %r caps the %d s "
                    "asked (raise it, up to %d, if the account accepts longer windows: fewer calls)",
                    seconds, cap, self.ringcx_conn_id, self.max_window_seconds, MAX_WINDOW_LIMIT,
                )  # fmt: skip
            self.check_pace(window)
        try:
            batches, counts, identity = fetch_window_manifest(
                hook=self.hook,
                client=client,
                bucket=self.bucket,
                key=key,
                start=window.start,
                end=window.end,
                sub_account_id=sub_account,
                batch_size=int(self.batch_size),
                max_batches=self.max_batches,
                extra_args=options.extra_args(segment_end=window.end),
                log=self.log,
            )
        except ManifestIntegrityError as err:  # an edited manifest: a retry would read the same bytes
            raise AirflowFailException(str(err)) from err
        self.note_lineage(counts=counts, identity=dict(identity))
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="manifest_key", value=key)
            ti.xcom_push(key="window", value=window.as_dict())
            ti.xcom_push(key="counts", value=counts)
            ti.xcom_push(key="manifest", value=dict(identity))
        return batches
