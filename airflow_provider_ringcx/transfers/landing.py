"""Land one recording in S3: idempotency check, streaming upload, verification, sidecar.

:class:`SegmentLander` runs one attempt for one segment (:meth:`SegmentLander.land`):

1. **Idempotency**: :func:`~airflow_provider_ringcx.transfers.verdict.verify_archived`, the verdict the window
   report uses too. ``archived`` means ``already_archived`` and nothing is downloaded. A ``collision``
   (the key holds another segment's recording) or an ``unverifiable`` key (403) fails the segment, never
   retried. Any other state re-lands: when the key already holds bytes (sidecar missing or invalid, a
   mismatch), they are kept only if they are proven to be the download's (size, and SHA-256 of the bytes
   read back), and then only the sidecar is written; otherwise the segment fails with a
   :class:`~airflow_provider_ringcx.exceptions.RingCXArchiveConflictError` and nothing is overwritten (the
   object may be under Object Lock, and it is evidence: a person decides).
2. **Upload**, straight from the hook's verifying :class:`RecordingStream` (which raises at end of stream
   if the bytes do not match Content-Length or the WAV data size), hashed as it passes:

   - known Content-Length <= ``single_part_threshold`` (default 16 MiB): the body is read into a bounded
     buffer, then sent as ONE PutObject with ``ChecksumSHA256`` (S3 verifies the whole object),
     ``Metadata={"sha256": ...}`` and ``If-None-Match: *``. A 412 means a concurrent run wrote the key
     first: its ``sha256`` is compared with ours instead of writing a duplicate;
   - larger or unknown length: ``upload_fileobj`` with a ``TransferConfig`` streams a multipart upload to
     the final key with ``ChecksumAlgorithm=SHA256`` (S3 verifies each part; memory stays at a few
     parts). If the reader raises, s3transfer aborts the upload, so no object appears at the key. The
     completion carries ``If-None-Match: *`` (added by a request hook, since s3transfer does not pass it:
     :mod:`~airflow_provider_ringcx.s3.streamed`). The whole-object SHA-256 (a multipart checksum is a
     checksum of parts) goes to the ``sha256`` object tag, which changes no version and is allowed under
     Object Lock.

3. **Verification**: HEAD confirms the size, and the full-object ``ChecksumSHA256`` where S3 returns one.
4. **Sidecar** (:mod:`~airflow_provider_ringcx.transfers.sidecar`), written last: a sidecar exists only for a
   verified object.
5. **Stale uploads**: once the key holds verified bytes (step 1 or 4), the multipart uploads that were
   already open at the key when the attempt started (left by attempts whose abort failed) are aborted,
   best effort; uploads started after that are never touched (:mod:`~airflow_provider_ringcx.s3.existing`
   explains why this is safe for a concurrent run of the same window).

Objects are written with the compliance options of :class:`~airflow_provider_ringcx.s3.options.S3WriteOptions`
(SSE, storage class, tags, Object Lock retention until segment end + N days, legal hold); locked writes
always carry a SHA-256 checksum header, as S3 requires.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_provider_ringcx import __version__
from airflow_provider_ringcx.exceptions import (
    RingCXArchiveConflictError,
    RingCXBadPayloadError,
    RingCXError,
    RingCXTransientError,
    RingCXUnverifiableError,
)
from airflow_provider_ringcx.keys import (
    DEFAULT_KEY_TEMPLATE,
    recording_key,
    sidecar_key,
    summary_key,
    transcript_key,
)
from airflow_provider_ringcx.models import SegmentRef, parse_timestamp
from airflow_provider_ringcx.s3.existing import StaleUploads, require_same_bytes, tag_sha256
from airflow_provider_ringcx.s3.hashing import HashingReader
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.s3.streamed import StreamedUploads
from airflow_provider_ringcx.s3.writeonce import is_precondition_failed
from airflow_provider_ringcx.transfers.progress import BatchProgress
from airflow_provider_ringcx.transfers.sidecar import (
    DownloadEvidence,
    StoredRecording,
    build_sidecar,
    write_sidecar,
)
from airflow_provider_ringcx.transfers.transcripts import has_transcript
from airflow_provider_ringcx.transfers.verdict import COLLISION, UNVERIFIABLE, Identity, verify_archived
from airflow_provider_ringcx.transfers.verdict_reads import head_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
_READ_SIZE = 1 * MiB


@dataclass(frozen=True)
class LandingConfig:
    """Where and how recordings land.

    :param single_part_threshold: largest known Content-Length sent as one PutObject (buffered).
    :param multipart_chunksize: part size of streamed multipart uploads (>= 5 MiB).
    :param transfer_concurrency: s3transfer threads per upload (parts in flight = memory per upload).
    :param include_transcripts: transcripts are archived too: a sidecar names its transcript's key.
    :param summary_kinds: the AI summary kinds archived too (``agent``, ``auto``): a sidecar names their keys.
    """

    bucket: str
    sub_account_id: str
    prefix: str = "ringcx"
    key_template: str = DEFAULT_KEY_TEMPLATE
    options: S3WriteOptions = field(default_factory=S3WriteOptions)
    manifest_key: str | None = None
    single_part_threshold: int = 16 * MiB
    multipart_chunksize: int = 8 * MiB
    transfer_concurrency: int = 2
    include_transcripts: bool = False
    summary_kinds: tuple[str, ...] = ()


@dataclass
class Landed:
    """The result of one successful attempt (``archived`` or ``already_archived``)."""

    outcome: str
    key: str
    size: int
    downloaded: int = 0
    sha256: str | None = None
    version_id: str | None = None


def expected_duration(ref: Mapping[str, Any]) -> float | None:
    """The recording's expected length in seconds from the metadata: ``segmentDurationMs``, else segment end
    - start; ``None`` when neither is known. The download accepts a body whose length nothing else proves
    only if its audio lasts this long (issue #12 item 2, :mod:`~airflow_provider_ringcx.hooks.download`)."""
    duration_ms = ref.get("duration_ms")
    if isinstance(duration_ms, (int, float)) and not isinstance(duration_ms, bool) and duration_ms >= 0:
        return float(duration_ms) / 1000
    start, end = parse_timestamp(ref.get("start")), parse_timestamp(ref.get("end"))
    if start is not None and end is not None and end >= start:
        return (end - start).total_seconds()
    return None


def segment_keys(ref: Mapping[str, Any], config: LandingConfig) -> tuple[str, str]:
    """The WAV and sidecar keys of a segment ref (partitioned by its start, else its end)."""
    when = parse_timestamp(ref.get("start")) or parse_timestamp(ref.get("end"))
    if when is None:
        raise RingCXError(  # not retryable: the listing itself lacks the times
            f"segment {ref.get('dialog_id')!r}/{ref.get('segment_id')!r} has neither a start nor an end "
            "time; "
            "its S3 partition cannot be chosen (report the metadata row to RingCentral support)"
        )
    wav = recording_key(
        template=config.key_template,
        prefix=config.prefix,
        sub_account_id=config.sub_account_id,
        dialog_id=str(ref["dialog_id"]),
        segment_id=str(ref["segment_id"]),
        when=when,
    )
    return wav, sidecar_key(wav)


class SegmentLander:
    """Lands segments of one batch; thread-safe (one boto3 client and one hook shared by the pool).

    :param hook: a RingCXHook (``stream_recording``, ``recording_path``).
    :param client: a boto3 S3 client.
    :param rows: vendor metadata rows by ``(dialog_id, segment_id)`` (from the window manifest).
    :param progress: the batch's progress lines: in-recording ticks while streaming (none by default).
    """

    def __init__(
        self,
        *,
        hook: Any,
        client: S3Client,
        config: LandingConfig,
        rows: Mapping[tuple[str, str], Mapping] | None,
        progress: BatchProgress | None = None,
    ) -> None:
        self.hook = hook
        self.progress = progress
        self.client = client
        self.config = config
        self.rows = rows or {}
        self._stale_uploads = StaleUploads(client, config.bucket)
        # Build the hook's lazy parts (settings, session, token manager) here, once, before worker threads
        # share it: a lazily created part must not be created twice by racing threads.
        for part in ("settings", "downloads"):
            getattr(hook, part, None)
        self._streamed = StreamedUploads(
            client,
            config.bucket,
            threshold=config.single_part_threshold,
            part_size=config.multipart_chunksize,
            concurrency=config.transfer_concurrency,
        )

    # --- one attempt -------------------------------------------------------------------------------
    def land(self, ref: SegmentRef) -> Landed:
        """Archive one segment (one attempt). Raises the hook's typed errors or botocore errors."""
        key, side_key = segment_keys(ref, self.config)
        stale = self._stale_uploads.snapshot(key)  # first: uploads started after this are never aborted
        head = self._head(key)
        if head is not None:
            done = self._verified_existing(ref, key, side_key, head)
            if done is not None:
                self._stale_uploads.abort(key, stale)
                return done
        end, now, options = parse_timestamp(ref.get("end")), datetime.now(timezone.utc), self.config.options
        lock_args, retention = options.extra_args(segment_end=end, now=now), options.retention(end, now=now)
        with self.hook.stream_recording(
            str(ref["dialog_id"]), str(ref["segment_id"]), expected_duration_seconds=expected_duration(ref)
        ) as stream:
            length = getattr(stream, "content_length", None)
            ident = f"{ref['dialog_id']}/{ref['segment_id']}"  # ticks every N MB when the batch logs them
            reader = self.progress.reader(stream, ident, length) if self.progress else HashingReader(stream)
            checksum: str | None
            if length is not None and length <= self.config.single_part_threshold:
                upload = "put"
                version_id, checksum = self._put_small(reader, key, head, lock_args)
            else:
                upload = "multipart"
                version_id, checksum = self._put_streamed(reader, key, lock_args, existed=head is not None)
            sha = reader.hexdigest()
            self._check_stream_digest(stream, sha, key)
            self._verify_upload(key, reader.size, checksum if upload == "put" else None)
            stored = StoredRecording(
                self.config.bucket, key, version_id, upload, checksum, lock_args, retention
            )
            sidecar = self._sidecar(ref, stream, reader, stored)
        write_sidecar(self.client, self.config.bucket, side_key, sidecar, lock_args)
        self._stale_uploads.abort(key, stale)
        return Landed("archived", key, reader.size, downloaded=reader.size, sha256=sha, version_id=version_id)

    def _head(self, key: str) -> dict | None:
        return head_object(self.client, self.config.bucket, key)

    def identity(self, ref: Mapping[str, Any]) -> Identity:
        """The (sub-account, dialog, segment) a segment's key must hold."""
        return Identity(self.config.sub_account_id, str(ref["dialog_id"]), str(ref["segment_id"]))

    def _verified_existing(
        self, ref: Mapping[str, Any], key: str, side_key: str, head: Mapping[str, Any]
    ) -> Landed | None:
        """``already_archived`` when the one verdict says archived; ``None`` to re-land; raises on a
        collision or a key S3 does not let us verify."""
        bucket = self.config.bucket
        verdict = verify_archived(self.client, bucket, self.identity(ref), key, side_key, head=head)
        if verdict.archived:
            if verdict.stored is not None and not verdict.stored.checksums:  # proven by its bytes: tag it
                tag_sha256(self.client, bucket, key, str(verdict.sha256), self.config.options.tags)
            size, sha, version = int(verdict.size or 0), verdict.sha256, verdict.version_id
            return Landed("already_archived", key, size, sha256=sha, version_id=version)
        if verdict.state == COLLISION:
            raise RingCXArchiveConflictError(verdict.reason)
        if verdict.state == UNVERIFIABLE:
            raise RingCXUnverifiableError(verdict.reason, status_code=403)
        return None

    # --- uploads -------------------------------------------------------------------------------------
    def _put_small(
        self, reader: HashingReader, key: str, head: Mapping[str, Any] | None, lock_args: dict
    ) -> tuple[str | None, str]:
        """Buffer (bounded) and PutObject once; returns (version id, base64 ChecksumSHA256)."""
        limit = self.config.single_part_threshold
        buffer = bytearray()
        while chunk := reader.read(_READ_SIZE):
            buffer += chunk
            if len(buffer) > limit:
                raise RingCXBadPayloadError(
                    f"recording body for s3://{self.config.bucket}/{key} exceeds its Content-Length; retry"
                )
        body = bytes(buffer)
        digest = reader.digest()  # the stream's own SHA-256: the body is not hashed again
        sha_hex, checksum = digest.hex(), base64.b64encode(digest).decode("ascii")
        if head is not None:  # bytes left without a verifying sidecar: kept only if they are the same
            return self._concurrent_winner(key, sha_hex, len(body), prove_content=True), checksum
        args = {
            **lock_args,
            "Metadata": {"sha256": sha_hex, "provider-version": __version__},
            "Tagging": "&".join(t for t in (lock_args.get("Tagging"), f"sha256={sha_hex}") if t),
            "IfNoneMatch": "*",  # head is None here: bytes already at the key returned above
        }
        try:
            response = self.client.put_object(
                Bucket=self.config.bucket,
                Key=key,
                Body=body,
                ContentType="audio/wav",
                ChecksumAlgorithm="SHA256",  # x-amz-sdk-checksum-algorithm: Object Lock needs it
                ChecksumSHA256=checksum,
                **args,
            )
        except ClientError as err:
            if not is_precondition_failed(err):
                raise
            return self._concurrent_winner(key, sha_hex, len(body)), checksum
        return response.get("VersionId"), checksum

    def _put_streamed(
        self, reader: HashingReader, key: str, lock_args: dict, *, existed: bool = False
    ) -> tuple[str | None, str | None]:
        """Multipart-stream to the final key; the sha256 tag is added once the digest is known."""
        extra = {
            **lock_args,
            "ContentType": "audio/wav",
            "ChecksumAlgorithm": "SHA256",
            "Metadata": {"provider-version": __version__},
        }
        # Create-only even when the key exists (an earlier attempt completed but its answer, tag or sidecar
        # was lost): S3 refuses the completion (412) and _concurrent_winner checks the bytes there.
        if not self._streamed.upload(reader, key, extra):
            return self._concurrent_winner(key, reader.hexdigest(), reader.size, prove_content=existed), None
        tags = self.config.options.tags
        return tag_sha256(self.client, self.config.bucket, key, reader.hexdigest(), tags), None

    def _concurrent_winner(
        self, key: str, sha_hex: str, size: int, *, prove_content: bool = False
    ) -> str | None:
        """The key holds bytes this attempt did not write: accept them only if they are the download's."""
        options = self.config.options
        return require_same_bytes(
            self.client, self.config.bucket, key, sha_hex, size, options.tags, prove_content=prove_content
        )

    # --- verification and sidecar --------------------------------------------------------------------
    @staticmethod
    def _check_stream_digest(stream: Any, sha_hex: str, key: str) -> None:
        if getattr(stream, "complete", True) is False:
            raise RingCXTransientError(f"the upload to {key} ended before the end of the recording; retry")
        theirs = getattr(stream, "sha256_hex", None)
        if theirs and theirs != sha_hex:  # pragma: no cover - would mean a bug in the reader
            raise RingCXBadPayloadError(f"SHA-256 of the bytes sent to {key} differs from the download's")

    def _verify_upload(self, key: str, size: int, checksum: str | None) -> None:
        head = self._head(key)
        if head is None or int(head.get("ContentLength", -1)) != size:
            found = None if head is None else head.get("ContentLength")
            raise RingCXTransientError(
                f"after upload, s3://{self.config.bucket}/{key} has size {found}, expected {size}; retry"
            )
        stored = head.get("ChecksumSHA256")
        if checksum and stored and "-" not in str(stored) and stored != checksum:
            raise RingCXTransientError(
                f"after upload, s3://{self.config.bucket}/{key} has ChecksumSHA256 {stored}, "
                f"expected {checksum}"
            )

    def _sidecar(
        self,
        ref: SegmentRef,
        stream: Any,
        reader: HashingReader,
        stored: StoredRecording,
    ) -> dict[str, Any]:
        dialog_id, segment_id = str(ref["dialog_id"]), str(ref["segment_id"])
        path_of = getattr(self.hook, "recording_path", None)
        download = DownloadEvidence(
            sha256=reader.hexdigest(),
            size=reader.size,
            wav=getattr(stream, "wav", None),
            source_path=path_of(dialog_id, segment_id) if callable(path_of) else "",
            content_length=getattr(stream, "content_length", None),
            content_type=getattr(stream, "content_type", None),
        )
        row = self.rows.get((dialog_id, segment_id))
        with_transcript = self.config.include_transcripts and has_transcript(row)
        kinds = self.config.summary_kinds if has_transcript(row) else ()  # summaries.has_summaries
        return build_sidecar(
            ref,
            sub_account_id=self.config.sub_account_id,
            row=row,
            download=download,
            stored=stored,
            manifest_key=self.config.manifest_key,
            retrieved_at=datetime.now(timezone.utc),
            transcript_key=transcript_key(stored.key) if with_transcript else None,
            summary_keys={kind: summary_key(stored.key, kind) for kind in kinds},
        )
