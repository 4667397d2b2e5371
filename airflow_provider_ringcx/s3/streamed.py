"""The streamed multipart upload of a recording: bounded memory, and a create-only completion.

Split out of :class:`~airflow_provider_ringcx.transfers.landing.SegmentLander` because it is one mechanism
with its own state: s3transfer's ``upload_fileobj`` does not pass ``If-None-Match`` to
CompleteMultipartUpload, so a botocore request hook adds ``If-None-Match: *`` for the keys being uploaded
right now. With it, S3 refuses (412) a completion at a key that already holds bytes (an earlier attempt
completed but its answer, tag or sidecar was lost; a concurrent run landed first) instead of adding a
second version; the lander then checks the bytes there. A key holding other bytes is never overwritten.

Memory: s3transfer reads up to 10 parts ahead of a non-seekable stream (10 x 8 MiB); that is capped at the
parts in flight plus one, so memory per upload stays a few parts whatever the recording's size.
"""

from __future__ import annotations

import threading
from typing import IO, TYPE_CHECKING, Any, cast

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from airflow_provider_ringcx.exceptions import RingCXTransientError
from airflow_provider_ringcx.s3.existing import is_no_such_upload
from airflow_provider_ringcx.s3.writeonce import is_precondition_failed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class StreamedUploads:
    """Create-only streamed multipart uploads to one bucket; thread-safe (one per lander and client).

    :param client: the boto3 S3 client; a request hook is registered on it.
    :param threshold: multipart threshold (the lander's ``single_part_threshold``).
    :param part_size: part size (>= 5 MiB).
    :param concurrency: s3transfer threads per upload (parts in flight = memory per upload).
    """

    def __init__(
        self, client: S3Client, bucket: str, *, threshold: int, part_size: int, concurrency: int
    ) -> None:
        self.client = client
        self.bucket = bucket
        self._threshold, self._part_size, self._concurrency = threshold, part_size, concurrency
        self._create_only: set[str] = set()
        self._lock = threading.Lock()
        client.meta.events.register("before-parameter-build.s3.CompleteMultipartUpload", self._if_none_match)

    def _if_none_match(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            if params.get("Key") in self._create_only:
                params.setdefault("IfNoneMatch", "*")

    def upload(self, reader: Any, key: str, extra_args: dict[str, Any]) -> bool:
        """Stream ``reader`` to ``key``; ``False`` when S3 refused the create-only completion (412: the key
        holds bytes this upload did not write), ``True`` when the upload completed.

        :raises RingCXTransientError: the upload was aborted while in progress (``NoSuchUpload``).
        """
        config = TransferConfig(
            multipart_threshold=self._threshold,
            multipart_chunksize=self._part_size,
            max_concurrency=self._concurrency,
        )
        config.max_in_memory_upload_chunks = self._concurrency + 1
        with self._lock:
            self._create_only.add(key)
        try:
            self.client.upload_fileobj(
                cast("IO[bytes]", reader), self.bucket, key, ExtraArgs=extra_args, Config=config
            )  # a file-like reader: s3transfer only calls read()
        except ClientError as err:
            if is_no_such_upload(err):  # a concurrent run landed the key and aborted our (older) upload
                raise RingCXTransientError(
                    f"the multipart upload to s3://{self.bucket}/{key} was aborted while in progress "
                    "(by a concurrent run that landed the key first); the retry verifies the key"
                ) from err
            if not is_precondition_failed(err):
                raise
            return False
        finally:
            with self._lock:
                self._create_only.discard(key)
        return True
