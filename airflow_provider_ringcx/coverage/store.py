"""The ledger's S3 requests: GET (size-capped), paginated LIST and PUT, each counted, with typed errors.

The counts (:class:`~airflow_provider_ringcx.coverage.result.RequestCounts`) are what the ledger promises
to bound (a year read in at most 366 GETs); the tests and the benchmark count on the wire as well.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_provider_ringcx.coverage.result import RequestCounts
from airflow_provider_ringcx.exceptions import RingCXError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NEEDS = (
    "the ledger needs s3:ListBucket and s3:GetObject on the archive prefix, s3:PutObject on its _coverage/"
)


class CoverageError(RingCXError):
    """S3 refused a ledger request for another reason than a missing object."""


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code"))


class ArchiveStore:
    """One bucket, its requests counted in :attr:`requests` (thread-safe: report GETs run in a pool)."""

    def __init__(self, s3_client: S3Client, bucket: str) -> None:
        self.s3 = s3_client
        self.bucket = bucket
        self.requests = RequestCounts()
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.requests, name, getattr(self.requests, name) + 1)

    def get(self, key: str, limit: int) -> bytes | str | None:
        """The object's bytes; ``None`` when absent; a text saying why when it is over ``limit`` bytes.

        :raises CoverageError: S3 refused the GET (403...).
        """
        self._count("get")
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _code(err) in ("NoSuchKey", "404"):
                return None
            raise CoverageError(f"S3 refused GET s3://{self.bucket}/{key} ({_code(err)}): {_NEEDS}") from None
        stream = response["Body"]
        try:
            if int(response.get("ContentLength") or 0) > limit:
                return f"larger than {limit} bytes"
            data = stream.read(limit + 1)
        finally:
            stream.close()
        return data if len(data) <= limit else f"larger than {limit} bytes"

    def list(self, prefix: str) -> Iterator[Any]:
        """Every object under ``prefix`` (``Contents`` entries), page by page (each page counts one LIST).

        :raises CoverageError: S3 refused the LIST.
        """
        token: str | None = None
        while True:
            self._count("list")
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                args["ContinuationToken"] = token
            try:
                page = self.s3.list_objects_v2(**args)
            except ClientError as err:
                raise CoverageError(
                    f"S3 refused LIST s3://{self.bucket}/{prefix} ({_code(err)}): {_NEEDS}"
                ) from None
            yield from page.get("Contents", [])
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return

    def put_json(self, key: str, body: bytes, extra: dict[str, Any]) -> None:
        """PUT a JSON object with a SHA-256 checksum (Object Lock buckets require one).

        :raises CoverageError: S3 refused the PUT.
        """
        self._count("put")
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                ChecksumAlgorithm="SHA256",
                **extra,
            )
        except ClientError as err:
            raise CoverageError(
                f"S3 refused PUT s3://{self.bucket}/{key} ({_code(err)}): {_NEEDS} (and the KMS key, with "
                "SSE-KMS)"
            ) from None
