"""Write-once streaming upload of a generated document (the window manifest, sidecar-like JSON).

Bytes are buffered up to one part: a document that fits is sent as one PutObject, otherwise parts of
``part_size`` go out as they fill (memory stays at about one part) and the multipart upload is completed at
the end. Either way the final request carries ``If-None-Match: *``, so the key is created once and never
replaced: a second writer gets ``False`` from :meth:`WriteOnceObject.commit` and its upload is aborted.
Every part carries a SHA-256 checksum that S3 verifies; any error aborts the multipart upload.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_provider_ringcx.exceptions import RingCXTransientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Smallest part S3 accepts (except the last one).
MIN_PART_SIZE = 5 * 1024 * 1024


def http_status(err: ClientError) -> int | None:
    """The HTTP status of a ClientError."""
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def error_code(err: ClientError) -> str:
    """The S3 error code of a ClientError, or the HTTP status as text."""
    return str(err.response.get("Error", {}).get("Code") or http_status(err) or "")


def is_precondition_failed(err: ClientError) -> bool:
    """Whether the error is a 412 from ``If-None-Match`` / ``If-Match``."""
    return http_status(err) == 412 or error_code(err) == "PreconditionFailed"


def is_conflict(err: ClientError) -> bool:
    """Whether the error is a 409 raised by a concurrent conditional write."""
    return http_status(err) == 409 or error_code(err) == "ConditionalRequestConflict"


def b64_sha256(data: bytes) -> str:
    """The base64 SHA-256 digest S3 expects in ``ChecksumSHA256``."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


class WriteOnceObject:
    """Stream bytes to ``s3://bucket/key``, creating the key only if it does not exist.

    :param client: a boto3 S3 client (``S3Hook(...).get_conn()``).
    :param extra_args: PutObject / CreateMultipartUpload extras (SSE, storage class, tagging, lock).
    :param part_size: multipart part size, at least 5 MiB; also the single-PutObject threshold.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        content_type: str,
        extra_args: dict[str, Any] | None = None,
        part_size: int = 8 * 1024 * 1024,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.content_type = content_type
        self.extra_args = dict(extra_args or {})
        self.part_size = max(int(part_size), MIN_PART_SIZE)
        self.bytes_written = 0
        self.version_id: str | None = None
        self.etag: str | None = None
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        """Append bytes; full parts are uploaded at once. Returns the offset the data starts at."""
        offset = self.bytes_written
        self._buffer += data
        self.bytes_written += len(data)
        self.sha256.update(data)
        while len(self._buffer) >= self.part_size:
            self._upload_part(bytes(self._buffer[: self.part_size]))
            del self._buffer[: self.part_size]
        return offset

    def _upload_part(self, chunk: bytes) -> None:
        if self._upload_id is None:
            created = self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                ContentType=self.content_type,
                ChecksumAlgorithm="SHA256",
                **self.extra_args,
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=chunk,
            ChecksumSHA256=b64_sha256(chunk),
        )
        self._parts.append(
            {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": response.get("ChecksumSHA256")}
        )

    def commit(self) -> bool:
        """Finish the object. Return ``True`` if written, ``False`` if the key already existed.

        :raises RingCXTransientError: S3 reported a concurrent conditional write (409); retry.
        """
        response: Mapping[str, Any]
        try:
            if self._upload_id is None:
                body = bytes(self._buffer)
                response = self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.key,
                    Body=body,
                    ContentType=self.content_type,
                    ChecksumAlgorithm="SHA256",  # x-amz-sdk-checksum-algorithm: Object Lock needs it
                    ChecksumSHA256=b64_sha256(body),
                    IfNoneMatch="*",
                    **self.extra_args,
                )
            else:
                if self._buffer:
                    self._upload_part(bytes(self._buffer))
                    self._buffer.clear()
                parts: Any = [{k: v for k, v in part.items() if v is not None} for part in self._parts]
                response = self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                    IfNoneMatch="*",
                )
                self._upload_id = None
        except ClientError as err:
            self.abort()
            if is_precondition_failed(err):
                return False
            if is_conflict(err):
                raise RingCXTransientError(
                    f"s3://{self.bucket}/{self.key}: a concurrent write is in progress; retry the task"
                )
            raise
        except BaseException:
            self.abort()
            raise
        self.version_id = response.get("VersionId")
        self.etag = response.get("ETag")
        return True

    def abort(self) -> None:
        """Abort the multipart upload if one is open (idempotent, never raises ClientError)."""
        upload_id, self._upload_id = self._upload_id, None
        self._buffer.clear()
        if upload_id is None:
            return
        with contextlib.suppress(ClientError):  # best effort; a lifecycle rule cleans stale uploads
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
