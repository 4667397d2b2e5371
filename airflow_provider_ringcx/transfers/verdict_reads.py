"""The S3 reads behind the verdict: HEAD, sidecar GET, ``sha256`` tag and read-back hashing.

:mod:`~airflow_provider_ringcx.transfers.verdict` decides "archived and verified"; this module only fetches
what that decision looks at, kept apart so the decision reads as rules and these reads stay one set. They
are verdict reads, not generic S3 helpers: they map S3 errors the way the verdict's module docstring says
(404 is absent; 403 raises :class:`~airflow_provider_ringcx.exceptions.RingCXUnverifiableError` naming the
permission; a refused or missing tagging call is "no tag") and the reads after the HEAD are pinned to the
HEAD's ``VersionId``, so a version written in between cannot lend its tag or bytes to the verdict.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_provider_ringcx.exceptions import RingCXUnverifiableError
from airflow_provider_ringcx.models import printable
from airflow_provider_ringcx.s3.writeonce import error_code, http_status

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_READ_SIZE = 1024 * 1024
_ABSENT_CODES = {"NoSuchKey", "NotFound", "404"}
_NO_TAGS = {403, 405, 501}


def _absent(err: ClientError) -> bool:
    return http_status(err) == 404 or error_code(err) in _ABSENT_CODES


def _denied(err: ClientError, action: str, bucket: str, key: str) -> RingCXUnverifiableError | None:
    if http_status(err) != 403 and error_code(err) != "AccessDenied":
        return None
    return RingCXUnverifiableError(
        printable(
            f"S3 denied {action} of s3://{bucket}/{key} (403), so its archive state cannot be verified: "
            f"grant s3:GetObject, s3:GetObjectTagging and s3:ListBucket on the archive prefix"
        ),
        status_code=403,
    )


def head_object(client: S3Client, bucket: str, key: str) -> dict | None:
    """HEAD the object with its full-object checksum; ``None`` if there is none.

    :raises RingCXUnverifiableError: S3 answered 403.
    """
    try:
        return dict(client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED"))
    except ClientError as err:
        if _absent(err):
            return None
        raise _denied(err, "HEAD", bucket, key) or err


def get_body(client: S3Client, bucket: str, key: str) -> bytes | None:
    """The whole (small: a sidecar or a transcript) object's bytes; ``None`` if there is none.

    :raises RingCXUnverifiableError: S3 answered 403.
    """
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as err:
        if _absent(err):
            return None
        raise _denied(err, "GET", bucket, key) or err


def _version(version_id: str | None) -> dict[str, Any]:
    """``VersionId`` for a read pinned to the HEAD's version (none for an unversioned object)."""
    return {"VersionId": version_id} if version_id and version_id != "null" else {}


def sha256_tag(client: S3Client, bucket: str, key: str, version_id: str | None = None) -> str | None:
    """The ``sha256`` object tag (exact key, value in lower case) of ``version_id``; ``None`` when there is
    none or the store refuses (403/405) or lacks (501) tagging: the bytes are hashed instead."""
    try:
        tags = client.get_object_tagging(Bucket=bucket, Key=key, **_version(version_id)).get("TagSet", [])
    except ClientError as err:
        if _absent(err) or http_status(err) in _NO_TAGS or error_code(err) == "NotImplemented":
            return None
        raise
    return next((str(t.get("Value", "")).lower() for t in tags if t.get("Key") == "sha256"), None)


def hash_object(client: S3Client, bucket: str, key: str, version_id: str | None = None) -> tuple[str, int]:
    """SHA-256 and length of the object's bytes (of ``version_id`` when given), read back from S3.

    :raises RingCXUnverifiableError: S3 answered 403, the version was deleted after the HEAD, or the store
        answered with another version.
    """
    pinned = _version(version_id)
    try:
        response = client.get_object(Bucket=bucket, Key=key, **pinned)
    except ClientError as err:
        if pinned and _absent(err):
            raise RingCXUnverifiableError(printable(f"s3://{bucket}/{key} {version_id!r} deleted after HEAD"))
        raise _denied(err, "GET", bucket, key) or err
    body = response["Body"]
    if pinned and response.get("VersionId") != version_id:  # a store that ignores VersionId
        body.close()
        raise RingCXUnverifiableError(printable(f"s3://{bucket}/{key}: GET of {version_id!r} read another"))
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(_READ_SIZE), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
