"""What S3 already holds at a recording's key: whether it holds given bytes, and multipart uploads that
earlier attempts left open (whether a segment is archived is
:mod:`~airflow_provider_ringcx.transfers.verdict`'s).

Helpers of :class:`~airflow_provider_ringcx.transfers.landing.SegmentLander`; they take a boto3 S3 client and
raise botocore errors, except :class:`StaleUploads`, which is best effort and never raises.

**Stale multipart uploads.** An attempt that fails mid-multipart-upload normally aborts its upload
(s3transfer does). When that abort fails too (S3 down at that moment) or never runs (the task process
SIGKILLed), the upload stays open: no object appears, but its parts are stored and billed, and nothing
else would ever abort it. So every attempt of :meth:`SegmentLander.land` does this:

1. when the attempt starts, before anything else, :meth:`StaleUploads.snapshot` lists the uploads open at
   exactly the segment's key (``ListMultipartUploads`` with ``Prefix=key``, keeping only ``Key == key``);
2. once the key holds verified bytes (landed and its sidecar written, or found ``already_archived``),
   :meth:`StaleUploads.abort` aborts the uploads of that snapshot, and only those.

Why this cannot break a concurrent run of the same window (two task instances, a retry overlapping a
zombie, a backfill over a scheduled run):

- an upload started after this attempt started is not in the snapshot, so it is never aborted: a run that
  is still writing an upload it began after us is left alone, whatever the clocks say;
- an upload in the snapshot is either a leftover (its writer is gone or has moved on), or belongs to a
  writer that began before us and is still running. That writer has already lost: the key now holds
  verified bytes, and its completion is create-only (``If-None-Match: *``), so S3 would refuse it with 412
  anyway. Aborting it only ends its upload early: its next UploadPart or CompleteMultipartUpload gets
  ``NoSuchUpload``, which the lander turns into a retryable error, and its next attempt (in-task retry,
  else the Airflow retry) finds the key ``already_archived``, so nothing is written twice. The
  abort can also prevent a second version from a writer that had found other bytes at the key and
  completes without the condition.
- this attempt's own upload is not in the snapshot (it started after it), and is completed or aborted
  by then; attempts of one segment in one task are sequential, so the snapshot of attempt N holds the
  uploads that attempts 1..N-1 failed to abort.

The rule needs no clock. S3's ``Initiated`` is not used: it is in S3's clock, not the worker's, and some
S3-compatible servers (moto) return a fixed value. An upload in the snapshot that was completed or
aborted meanwhile answers ``NoSuchUpload`` to the abort, which is fine. Listing and aborting are best
effort: a failure is logged and never fails the segment. Without ``s3:ListBucketMultipartUploads`` /
``s3:AbortMultipartUpload`` (403) or on a server without the API (501), a warning is logged once and the
cleanup is off for the task; an ``AbortIncompleteMultipartUpload`` lifecycle rule remains the safety net.
Cost: one ``ListMultipartUploads`` per attempt, plus one abort per stale upload.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from airflow_provider_ringcx.exceptions import RingCXArchiveConflictError
from airflow_provider_ringcx.s3.writeonce import error_code, http_status
from airflow_provider_ringcx.transfers.verdict import stored_object
from airflow_provider_ringcx.transfers.verdict_reads import head_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

#: Answers that mean "this credential or server cannot list/abort uploads": stop trying for this task.
_UNSUPPORTED = {403, 405, 501}


def is_no_such_upload(err: ClientError) -> bool:
    """Whether S3 answered that the multipart upload does not exist (completed or aborted)."""
    return error_code(err) == "NoSuchUpload"


def tag_sha256(client: S3Client, bucket: str, key: str, sha_hex: str, tags: Mapping[str, str]) -> str | None:
    """Tag the object with its whole-object SHA-256 and ``tags``; returns the version id.

    :param tags: the configured object tags (a tagging call replaces the whole tag set).
    """
    tag_set = {**tags, "sha256": sha_hex}
    response = client.put_object_tagging(
        Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tag_set.items()]}
    )
    return response.get("VersionId")


def holds_bytes(
    client: S3Client,
    bucket: str,
    key: str,
    sha_hex: str,
    size: int,
    tags: Mapping[str, str],
    *,
    prove_content: bool = False,
) -> tuple[bool, str | None, str | None]:
    """Whether the object at ``key`` (written by another run or attempt) holds ``size`` bytes of ``sha_hex``.

    Decided by :func:`~airflow_provider_ringcx.transfers.verdict.stored_object` (the one set of checksum
    sources).
    An object without a stored SHA-256 (an earlier attempt completed it but never tagged it) is re-read,
    and tagged when its bytes match.

    :param prove_content: read the bytes back even when S3 holds a checksum (before a sidecar is written
        for an object this attempt did not write).
    :returns: ``(True, version id, None)`` when it does; ``(False, None, why not)`` when it does not or
        is gone.
    :raises RingCXUnverifiableError: S3 answered 403.
    """
    head = head_object(client, bucket, key)
    if head is None:
        return False, None, f"no object at s3://{bucket}/{key}"
    if int(head.get("ContentLength", -1)) != size:  # decided without reading the bytes
        return False, None, f"object is {head.get('ContentLength')} bytes, expected {size}"
    found = stored_object(client, bucket, key, head, read_content=prove_content)
    if found is None:  # pragma: no cover - head is not None
        return False, None, f"no object at s3://{bucket}/{key}"
    why = found.disagreement(sha_hex, size)
    if why is not None:
        return False, None, why
    if not found.checksums:
        tag_sha256(client, bucket, key, sha_hex, tags)
    return True, found.version_id, None


def require_same_bytes(
    client: S3Client,
    bucket: str,
    key: str,
    sha_hex: str,
    size: int,
    tags: Mapping[str, str],
    *,
    prove_content: bool = False,
) -> str | None:
    """:func:`holds_bytes`, or fail: a key holding other bytes is never overwritten (it may be locked, and it
    is evidence), so the segment ends not archived with what to do.

    :returns: the version id of the object that holds the bytes.
    :raises RingCXArchiveConflictError: the key holds other bytes.
    """
    same, version_id, why = holds_bytes(client, bucket, key, sha_hex, size, tags, prove_content=prove_content)
    if same:
        return version_id
    raise RingCXArchiveConflictError(
        "not archived, nothing overwritten: the key holds other bytes than the recording and no sidecar "
        "verifies them; delete the object (or its version) if it is wrong, or fix key_template if it is "
        f"another segment's, then re-run the window. Key s3://{bucket}/{key}: {why}"
    )


class StaleUploads:
    """Best-effort cleanup of multipart uploads left open at a key (the rule is in the module docstring).

    Thread-safe: one instance serves every worker thread of a lander. Never raises botocore errors.

    :param client: a boto3 S3 client.
    """

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self._enabled = True
        self._lock = threading.Lock()

    def snapshot(self, key: str) -> tuple[str, ...]:
        """The ids of the uploads open at exactly ``key`` now (empty if they cannot be listed)."""
        if not self._enabled:
            return ()
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=key
            )
            return tuple(
                str(upload["UploadId"])
                for page in pages
                for upload in page.get("Uploads") or []
                if upload.get("Key") == key
            )
        except ClientError as err:
            if http_status(err) in _UNSUPPORTED:
                self._disable(err)
            else:
                log.warning("could not list open multipart uploads of s3://%s/%s: %s", self.bucket, key, err)
        except BotoCoreError as err:
            log.warning("could not list open multipart uploads of s3://%s/%s: %s", self.bucket, key, err)
        return ()

    def abort(self, key: str, upload_ids: tuple[str, ...]) -> int:
        """Abort ``upload_ids`` (a :meth:`snapshot` of ``key`` taken before ``key`` was verified).

        :returns: how many were aborted (gone ones, completed or aborted meanwhile, are not counted).
        """
        aborted = 0
        for upload_id in upload_ids:
            if not self._enabled:
                break
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                aborted += 1
            except ClientError as err:
                if is_no_such_upload(err) or http_status(err) == 404:
                    log.debug(
                        "multipart upload %s of s3://%s/%s is already gone", upload_id, self.bucket, key
                    )
                elif http_status(err) in _UNSUPPORTED:
                    self._disable(err)
                else:
                    log.warning(
                        "could not abort stale multipart upload %s of s3://%s/%s: %s (a later run retries; "
                        "an AbortIncompleteMultipartUpload lifecycle rule is the safety net)",
                        upload_id,
                        self.bucket,
                        key,
                        err,
                    )
            except BotoCoreError as err:
                log.warning(
                    "could not abort stale multipart upload %s of s3://%s/%s: %s (a later run retries)",
                    upload_id,
                    self.bucket,
                    key,
                    err,
                )
        if aborted:
            log.info(
                "aborted %d stale multipart upload(s) of s3://%s/%s left open by earlier attempts",
                aborted,
                self.bucket,
                key,
            )
        return aborted

    def _disable(self, err: ClientError) -> None:
        with self._lock:
            if not self._enabled:
                return
            self._enabled = False
        log.warning(
            "stale multipart uploads in s3://%s are not cleaned up by this task: %s (grant "
            "s3:ListBucketMultipartUploads and s3:AbortMultipartUpload, or rely on an "
            "AbortIncompleteMultipartUpload lifecycle rule)",
            self.bucket,
            err,
        )
