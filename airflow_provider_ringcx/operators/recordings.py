"""RingCXRecordingsToS3Operator: "download segments" - stream one batch of recordings into S3, verified."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.hooks.budget_rule import LIVE, check_priority
from airflow_provider_ringcx.hooks.summaries import parse_summary_kinds
from airflow_provider_ringcx.keys import DEFAULT_KEY_TEMPLATE, partition_prefix, validate_key_template
from airflow_provider_ringcx.lineage.mixins import RecordingsLineage
from airflow_provider_ringcx.links import (
    MANIFEST_LINK_XCOM_KEY,
    S3_LINK_XCOM_KEY,
    RingCXS3PrefixLink,
    RingCXWindowManifestLink,
    S3Location,
    push_location,
)
from airflow_provider_ringcx.models import SegmentRef, parse_timestamp
from airflow_provider_ringcx.operators.base import RingCXToS3BaseOperator
from airflow_provider_ringcx.runinfo import batch_table
from airflow_provider_ringcx.s3.options import OPTION_NAMES, S3WriteOptions
from airflow_provider_ringcx.transfers import manifest_reader
from airflow_provider_ringcx.transfers.batch import BatchArchiver, summarize
from airflow_provider_ringcx.transfers.landing import LandingConfig, SegmentLander
from airflow_provider_ringcx.transfers.manifest_reader import Ident, is_manifest_batch, read_rows
from airflow_provider_ringcx.transfers.progress import DEFAULT_EVERY_MB, BatchProgress, parse_every_mb
from airflow_provider_ringcx.transfers.summaries import SummaryLander
from airflow_provider_ringcx.transfers.transcripts import TranscriptLander

if TYPE_CHECKING:
    from airflow.sdk import Context
    from mypy_boto3_s3 import S3Client


MiB = 1024 * 1024


class RingCXSegmentsFailedError(AirflowException):
    """Some segments of the batch failed for a retryable reason; an Airflow retry redoes only those."""


class RingCXRecordingsToS3Operator(RecordingsLineage, RingCXToS3BaseOperator):
    """Archive one batch of RingCX recordings into S3, each verified, with a chain-of-custody sidecar.

    Map it over the batches of the metadata operator
    (:class:`~airflow_provider_ringcx.operators.metadata.RingCXInteractionMetadataOperator`)
    with ``.partial(...).expand(batch=fetch.output)``: each task gets a batch descriptor
    (:class:`~airflow_provider_ringcx.models.ManifestBatch`) and reads its segments and their vendor rows
    from the window manifest with one ranged GET. For each segment (``max_workers`` at a time, within
    the hook's download budget) it skips what is already archived (object + sidecar with matching sha256 and
    size: no download), streams the WAV from RingCX into S3 (one checksummed PutObject up to
    ``single_part_threshold``, else a multipart upload aborted on any mismatch), confirms the size with a
    HEAD and writes the sidecar ``{...}/{segmentId}.json``. See
    :mod:`airflow_provider_ringcx.transfers.landing`.

    The task log has one progress line per segment, counts and speed first (``[3/5] 0.96 MB · 6.4 MB/s ·
    archived <ids>``), and a tick every ``progress_every_mb`` inside large recordings (see
    :mod:`airflow_provider_ringcx.transfers.progress`). It ends with a table of the outcomes and of the
    segments not archived, with their reasons (:func:`airflow_provider_ringcx.runinfo.batch_table`).
    The extra link "S3 recordings" (:class:`~airflow_provider_ringcx.links.RingCXS3PrefixLink`) opens the
    narrowest S3 prefix holding the batch's recordings (their hour with the default key template: S3 lists
    by prefix only), "Window manifest" (:class:`~airflow_provider_ringcx.links.RingCXWindowManifestLink`)
    the window's manifest, which lists exactly the window's recordings.

    Outcomes per segment: ``archived``, ``already_archived``, ``forbidden`` (403), ``missing`` (404),
    ``failed`` (with the reason). The return value (XCom, a few KB) is
    ``{"segments", "counts": {outcome: n}, "retryable_failures", "bytes_archived", "bytes_downloaded",
    "not_archived": [{"dialog_id", "segment_id", "outcome", "reason", "retryable"}] (at most 50),
    "not_archived_truncated"}``; it is also pushed under the key ``summary`` before the task fails.

    After trying every segment, the task fails with :class:`RingCXSegmentsFailedError` (Airflow retries
    it; the archived segments are then ``already_archived``) if any segment failed for a retryable
    reason, and with ``AirflowFailException`` (no retry) if failures are only non-retryable, or when
    ``fail_on_forbidden`` applies. ``fail_on_missing`` fails it retryably (a 404 may be a recording that
    is not processed yet).

    :param batch: what to archive: a batch descriptor (one element of the metadata operator's XCom), or an
        explicit list of segment refs (``dialog_id``, ``segment_id``, optional ``start``/``end``).
    :param bucket: the archive bucket. (templated)
    :param prefix: key prefix. (templated)
    :param key_template: WAV key template (see :mod:`airflow_provider_ringcx.keys`). (templated)
    :param manifest_key: the window manifest, source of each segment's full vendor row for the sidecar;
        defaults to the descriptor's. (templated)
    :param ringcx_conn_id: the ``ringcx`` connection.
    :param sub_account_id: archive this sub-account with the connection's credentials instead of the
        connection's ``sub_account_id`` (one DAG per sub-account; see
        :mod:`airflow_provider_ringcx.subaccounts`): its budgets, paths and keys. (templated)
    :param aws_conn_id: the ``aws`` connection.
    :param server_side_encryption: ``AES256`` or ``aws:kms``. (templated)
    :param kms_key_id: KMS key id or ARN for ``aws:kms``. (templated)
    :param storage_class: S3 storage class. (templated)
    :param tags: object tags, a dict. (templated)
    :param object_lock_mode: ``GOVERNANCE`` or ``COMPLIANCE``. (templated)
    :param object_lock_retention_days: retain-until = segment end + this many days. (templated)
    :param object_lock_legal_hold: put a legal hold on every object. (templated)

    The compliance options are the arguments of
    :class:`~airflow_provider_ringcx.operators.base.RingCXToS3BaseOperator`, shared by every operator.
    :param max_workers: segments downloaded concurrently (default 4).
    :param segment_attempts: tries per segment for retryable failures (default 3).
    :param retry_backoff: first in-task backoff in seconds (doubles each attempt).
    :param single_part_threshold: largest Content-Length sent as a single PutObject (default 16 MiB).
    :param multipart_chunksize: multipart part size (default 8 MiB).
    :param fail_on_forbidden: fail the task if a recording is forbidden (403). Default False.
    :param fail_on_missing: fail the task if a recording is missing (404). Default False.
    :param budget_priority: ``"live"`` (default) or ``"history"``: a backfill's downloads borrow a
        budget window's reserve (10 %) only when it is back for the live DAG within one slot (see
        :mod:`~airflow_provider_ringcx.hooks.budget_rule`). (templated)
    :param progress_every_mb: inside a recording, log a progress tick every this many MB (10^6 bytes)
        read from RingCX, e.g. ``[3/5] 24.0/96.0 MB · 6.1 MB/s · <ids>``; ``0`` for none. Default 8.
        (templated)
    :param include_transcripts: also archive each segment's transcript (rows with ``hasTranscript``) as
        ``{segmentId}.transcript.json`` beside the recording, write-once, checksummed, with the recording's
        encryption and Object Lock, paced by the connection's ``transcript_budget``. A transcript RingCX
        answers 404 for is ``pending`` (not lost; a later run retries it). Default False. See
        :mod:`airflow_provider_ringcx.transfers.transcripts`.
    :param include_summaries: also archive each segment's AI summaries (rows with ``hasTranscript``) as
        ``{segmentId}.summary.{kind}.json`` beside the recording, like the transcripts and under the same
        budget (one 120/min class at RingCX): ``False`` (default), ``"agent"``, ``"auto"``, ``"both"`` (or
        ``True``), or a list of kinds. A summary RingCX answers 404 for is ``pending``. See
        :mod:`airflow_provider_ringcx.transfers.summaries`.

    Example::

        RingCXRecordingsToS3Operator.partial(
            task_id="download_segments",
            bucket="call-archive",
            server_side_encryption="aws:kms",
            kms_key_id="alias/call-archive",
            object_lock_mode="COMPLIANCE",
            object_lock_retention_days=2555,
            pool="ringcx_downloads",
        ).expand(batch=fetch.output)
    """

    template_fields: Sequence[str] = (
        "bucket",
        "prefix",
        "key_template",
        "manifest_key",
        "ringcx_conn_id",
        "sub_account_id",
        "aws_conn_id",
        "budget_priority",
        "progress_every_mb",
        *OPTION_NAMES,
    )
    template_fields_renderers = {"tags": "json"}
    ui_color = "#ffb266"
    operator_extra_links = (RingCXS3PrefixLink(), RingCXWindowManifestLink())

    def __init__(
        self,
        *,
        batch: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        bucket: str,
        prefix: str = "ringcx",
        key_template: str = DEFAULT_KEY_TEMPLATE,
        manifest_key: str | None = None,
        ringcx_conn_id: str = "ringcx_default",
        sub_account_id: str | None = None,
        aws_conn_id: str | None = "aws_default",
        max_workers: int = 4,
        segment_attempts: int = 3,
        retry_backoff: float = 2.0,
        single_part_threshold: int = 16 * MiB,
        multipart_chunksize: int = 8 * MiB,
        fail_on_forbidden: bool = False,
        fail_on_missing: bool = False,
        budget_priority: str = LIVE,
        progress_every_mb: float | str = DEFAULT_EVERY_MB,
        include_transcripts: bool = False,
        include_summaries: bool | str | Sequence[str] = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if "{{" not in key_template:
            validate_key_template(key_template)
        self.batch = batch
        self.bucket = bucket
        self.prefix = prefix
        self.key_template = key_template
        self.manifest_key = manifest_key
        self.ringcx_conn_id = ringcx_conn_id
        self.sub_account_id = sub_account_id
        self.aws_conn_id = aws_conn_id
        self.max_workers = max_workers
        self.segment_attempts = segment_attempts
        self.retry_backoff = retry_backoff
        self.single_part_threshold = single_part_threshold
        self.multipart_chunksize = multipart_chunksize
        self.fail_on_forbidden = fail_on_forbidden
        self.fail_on_missing = fail_on_missing
        self.budget_priority = budget_priority
        if "{{" not in str(budget_priority):
            check_priority(budget_priority)  # fail at parse time for a typo
        self.progress_every_mb = progress_every_mb
        self.include_transcripts = include_transcripts
        self.include_summaries = include_summaries
        parse_summary_kinds(include_summaries)  # fail at parse time for a typo
        if "{{" not in str(progress_every_mb):
            parse_every_mb(progress_every_mb)

    def landing_config(self, options: S3WriteOptions) -> LandingConfig:
        """Where and how this task's recordings land."""
        return LandingConfig(
            bucket=self.bucket,
            sub_account_id=str(self.hook.settings.sub_account_id),
            prefix=self.prefix,
            key_template=self.key_template,
            options=options,
            manifest_key=self.manifest_key or self._descriptor_key(),
            single_part_threshold=int(self.single_part_threshold),
            multipart_chunksize=int(self.multipart_chunksize),
            include_transcripts=bool(self.include_transcripts),
            summary_kinds=parse_summary_kinds(self.include_summaries),
        )

    def _descriptor_key(self) -> str | None:
        return str(self.batch["manifest_key"]) if is_manifest_batch(self.batch) else None

    def refs_and_rows(self, client: S3Client) -> tuple[list[SegmentRef], dict[Ident, dict]]:
        """The batch's refs and their vendor rows: a descriptor's from its manifest byte range, an explicit
        list's from ``manifest_key`` (if given)."""
        if is_manifest_batch(self.batch):
            return manifest_reader.load_batch(client, self.bucket, self.batch)
        refs = validate_batch(self.batch)
        rows = read_rows(client, self.bucket, self.manifest_key, refs) if self.manifest_key else {}
        return refs, rows

    def execute(self, context: Context) -> dict[str, Any]:
        if not is_manifest_batch(self.batch):
            validate_batch(self.batch)  # a bad explicit batch fails before any S3 call
        client = self.s3_hook.get_conn()
        options = self.write_options()
        options.check_bucket(client, self.bucket)  # once per task, before any download
        config = self.landing_config(options)
        try:
            refs, rows = self.refs_and_rows(client)
        except manifest_reader.ManifestError as err:  # deterministic: an Airflow retry would read the same
            raise AirflowFailException(str(err)) from err
        self.push_link(context, config, refs)
        progress = BatchProgress(self.log, every_mb=self.progress_every_mb)  # counts and ticks, one batch
        lander = SegmentLander(hook=self.hook, client=client, config=config, rows=rows, progress=progress)
        archiver = BatchArchiver(
            lander,
            max_workers=self.max_workers,
            attempts=self.segment_attempts,
            backoff=self.retry_backoff,
            logger=self.log,
            progress=progress,
            transcripts=TranscriptLander(hook=self.hook, client=client, bucket=self.bucket, options=options)
            if self.include_transcripts
            else None,
            summaries=SummaryLander(
                hook=self.hook, client=client, bucket=self.bucket, options=options, kinds=config.summary_kinds
            )
            if config.summary_kinds
            else None,
        )
        summary = summarize(archiver.run(refs))
        self.note_lineage(summary=summary)  # for the OpenLineage events, failed or not
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="summary", value=summary)
        self.log.info("%s", batch_table(summary))
        self.raise_for_outcomes(summary)
        return summary

    def push_link(self, context: Context, config: LandingConfig, refs: Sequence[SegmentRef]) -> None:
        """Push where this batch lands (its window's time partition) for the "S3 recordings" link, and its
        window's manifest for the "Window manifest" link."""
        try:
            if config.manifest_key:
                manifest = S3Location.for_hook(self.s3_hook, self.bucket, config.manifest_key)
                push_location(context, MANIFEST_LINK_XCOM_KEY, manifest)
            starts = [when for when in (_partition_time(ref) for ref in refs) if when is not None]
            prefix = partition_prefix(
                template=config.key_template,
                prefix=config.prefix,
                sub_account_id=config.sub_account_id,
                starts=starts,
            )
            location = S3Location.for_hook(self.s3_hook, self.bucket, prefix, is_prefix=True)
        except Exception as err:  # the link is a convenience: never fail a batch over it
            self.log.warning("no S3 link for this batch: %s", err)
            return
        push_location(context, S3_LINK_XCOM_KEY, location)

    def raise_for_outcomes(self, summary: Mapping[str, Any]) -> None:
        """Fail the task according to the outcomes (see the class docstring)."""
        counts = summary["counts"]
        failed, retryable = counts.get("failed", 0), summary.get("retryable_failures", 0)
        if retryable or (self.fail_on_missing and counts.get("missing")):
            raise RingCXSegmentsFailedError(
                f"{retryable} segment(s) failed retryably and {counts.get('missing', 0)} are missing "
                f"out of {summary['segments']}; an Airflow retry redoes only those: "
                f"{summary['not_archived'][:5]}"
            )
        if failed or (self.fail_on_forbidden and counts.get("forbidden")):
            raise AirflowFailException(
                f"{failed} segment(s) failed for a non-retryable reason and {counts.get('forbidden', 0)} are "
                f"forbidden out of {summary['segments']}: {summary['not_archived'][:5]}"
            )


def _partition_time(ref: Mapping[str, Any]) -> datetime | None:
    """The time a segment's key is partitioned by (its start, else its end), as the lander does."""
    try:
        return parse_timestamp(ref.get("start")) or parse_timestamp(ref.get("end"))
    except ValueError:
        return None


def validate_batch(batch: Any) -> list[SegmentRef]:
    """Check a batch (from XCom) and return it as refs.

    :raises RingCXConfigError: not a list of refs with ``dialog_id`` and ``segment_id``.
    """
    if isinstance(batch, (str, bytes)) or not isinstance(batch, Sequence):
        raise RingCXConfigError(
            "batch must be a batch descriptor (one element of the metadata task's XCom: a mapping with "
            f"manifest_key and range) or a list of segment refs, got {type(batch).__name__}"
        )
    refs: list[SegmentRef] = []
    for index, item in enumerate(batch):
        if not isinstance(item, Mapping) or not item.get("dialog_id") or not item.get("segment_id"):
            raise RingCXConfigError(f"batch item {index} is not a segment ref with dialog_id and segment_id")
        refs.append(
            SegmentRef(
                dialog_id=str(item["dialog_id"]),
                segment_id=str(item["segment_id"]),
                start=item.get("start"),
                end=item.get("end"),
                duration_ms=item.get("duration_ms"),
            )
        )
    return refs
