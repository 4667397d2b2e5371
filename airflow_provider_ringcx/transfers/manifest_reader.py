"""Reading a window manifest (the format is :mod:`airflow_provider_ringcx.transfers.manifest_format`).

Everything here streams or reads byte ranges, so that a manifest of 100,000 rows costs a download task only
its own batch: :func:`read_tail` reads the summary line from the object's tail (its batch records become the
:class:`~airflow_provider_ringcx.models.ManifestBatch` descriptors that go through XCom), and
:func:`load_batch` reads one batch's rows back with a single ranged GET.

Integrity (why the count and the first and last ids are not enough: a same-length rewrite that renames a
middle row passes them). The metadata task records the manifest's identity as S3 answered the write, its
ETag and VersionId, with the SHA-256 of the whole body (:class:`ManifestIdentity`, XCom key ``manifest``),
and gives every batch descriptor the SHA-256 of its byte range plus the ETag and VersionId. The trust anchor
is therefore XCom, which whoever can rewrite the bucket cannot change; a digest stored next to the manifest
(a ``.sha256`` object, the summary line) would be rewritten along with it. Readers pin the object:

- a download task GETs its range with ``If-Match: <etag>`` (and ``VersionId`` in a versioned bucket, where
  it then reads the very version that was planned, whatever was written over it since) and compares the
  range's SHA-256 with the descriptor's before the count and id checks;
- the report streams the whole manifest the same way, hashing as it reads, and compares the digest and size
  with the recorded identity at the end, before anything is written
  (:func:`~airflow_provider_ringcx.transfers.manifest_integrity.iter_verified`).

Any difference raises :class:`ManifestIntegrityError`, which the operators turn into a failure without
Airflow retries: reading again would read the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from botocore.exceptions import ClientError

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError
from airflow_provider_ringcx.models import SegmentRef
from airflow_provider_ringcx.s3.writeonce import error_code, http_status
from airflow_provider_ringcx.transfers.manifest_format import (
    MANIFEST_FORMAT,
    SEGMENT,
    Ident,
    ManifestError,
    ManifestIdentity,
    ManifestIntegrityError,
    as_ref,
    decode_line,
    is_recorded,
    is_summary,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

__all__ = [  # the format's names that readers have always imported from here
    "Ident",
    "ManifestError",
    "ManifestIdentity",
    "ManifestIntegrityError",
    "get_pinned",
    "is_manifest_batch",
    "iter_manifest",
    "iter_refs",
    "load_batch",
    "manifest_exists",
    "pin_args",
    "read_rows",
    "read_summary",
    "read_tail",
    "version_of",
]

_TAIL_READ = 256 * 1024
READ_CHUNK = 1024 * 1024


def version_of(response: Mapping[str, Any]) -> str | None:
    """A response's ``VersionId``; ``None`` in an unversioned bucket (where some answers say ``"null"``)."""
    version = response.get("VersionId")
    return None if version in (None, "", "null") else str(version)


def pin_args(etag: str | None, version_id: str | None) -> dict[str, str]:
    """``GetObject`` arguments that read exactly the object written: ``IfMatch`` and ``VersionId``."""
    args = {"IfMatch": etag} if etag else {}
    return {**args, "VersionId": version_id} if version_id else args


def manifest_exists(client: S3Client, bucket: str, key: str) -> bool:
    """Whether the manifest object exists (one HEAD)."""
    try:
        client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as err:
        if http_status(err) == 404:
            return False
        raise
    return True


def iter_manifest(
    client: S3Client,
    bucket: str,
    key: str,
    *,
    byte_range: Sequence[int] | None = None,
    pin: Mapping[str, str] | None = None,
    digest: Any = None,
) -> Iterator[dict]:
    """Yield the manifest's lines as dicts, streaming (optionally only ``[start, end)`` bytes).

    :param pin: :func:`pin_args` of the object that must be read (``IfMatch``, ``VersionId``).
    :param digest: a ``hashlib`` object updated with every byte read, as read.
    :raises ManifestError: a line is not JSON.
    :raises ManifestIntegrityError: with ``pin``, the object is no longer the one written.
    """
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, **(pin or {})}
    if byte_range is not None:
        kwargs["Range"] = f"bytes={byte_range[0]}-{byte_range[1] - 1}"
    body = get_pinned(client, kwargs)["Body"]
    pending = b""
    try:
        for chunk in body.iter_chunks(READ_CHUNK):
            if digest is not None:
                digest.update(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield _decode(line, bucket, key)
        if pending.strip():
            yield _decode(pending, bucket, key)
    finally:
        body.close()


def get_pinned(client: S3Client, kwargs: Mapping[str, Any]) -> GetObjectOutputTypeDef:
    """``GetObject``; with ``IfMatch`` or ``VersionId``, a refusal or another ETag is an integrity error."""
    where = f"s3://{kwargs['Bucket']}/{kwargs['Key']}"
    try:
        response = client.get_object(**kwargs)
    except ClientError as err:
        pinned = "IfMatch" in kwargs or "VersionId" in kwargs
        if not pinned or not (http_status(err) in (404, 412) or error_code(err) == "NoSuchVersion"):
            raise
        raise ManifestIntegrityError(
            f"manifest {where} is no longer the object the metadata task wrote (ETag "
            f"{kwargs.get('IfMatch')}, version {kwargs.get('VersionId')}): S3 answered {error_code(err)}. "
            "It was replaced or deleted: restore that version, or delete the manifest and clear the window's "
            "fetch_metadata_window task so that the window is listed and planned again"
        ) from None
    etag = kwargs.get("IfMatch")
    if etag and response.get("ETag") and response["ETag"] != etag:  # a store that ignores If-Match
        response["Body"].close()
        raise ManifestIntegrityError(
            f"manifest {where} has ETag {response['ETag']}, the metadata task wrote {etag}: it was replaced. "
            "Delete it and clear the window's fetch_metadata_window task"
        )
    return response


def read_summary(client: S3Client, bucket: str, key: str) -> dict:
    """Return the manifest's summary line (read from the object's tail with a ranged GET).

    :raises ManifestError: the last line is not a summary (the object is not a complete manifest).
    """
    return read_tail(client, bucket, key)[0]


def read_tail(client: S3Client, bucket: str, key: str) -> tuple[dict, str | None, str | None]:
    """The summary line, and the ETag and VersionId of the object it was read from."""
    size = _TAIL_READ
    while True:
        response = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{size}")
        data = response["Body"].read()
        total = int(str(response.get("ContentRange", "/0")).rsplit("/", 1)[-1] or 0)
        text = data.rstrip(b"\n")
        whole = total <= len(data) or not response.get("ContentRange")
        if b"\n" in text or whole:
            summary = _decode(text.rsplit(b"\n", 1)[-1], bucket, key)
            if not is_summary(summary):
                raise ManifestError(
                    f"manifest s3://{bucket}/{key} does not end with a summary line; it is incomplete or "
                    f"not a {MANIFEST_FORMAT} document - delete it only if you are sure no task is writing it"
                )
            return summary, response.get("ETag"), version_of(response)
        size *= 4


def is_manifest_batch(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """Whether ``value`` looks like a :class:`ManifestBatch` (a mapping with a key and a byte range)."""
    return isinstance(value, Mapping) and "manifest_key" in value and "range" in value


def load_batch(
    client: S3Client, bucket: str, batch: Mapping[str, Any]
) -> tuple[list[SegmentRef], dict[Ident, dict]]:
    """Read one batch's refs and vendor rows with one ranged GET of the manifest.

    :param batch: a :class:`ManifestBatch` (from the metadata task's XCom).
    :return: ``(refs, rows by (dialog_id, segment_id))``, refs in manifest order.
    :raises ManifestIntegrityError: the range's bytes are not the ones the batch was planned from (the
        manifest was replaced or edited: ETag, version or SHA-256 differ), or the descriptor has no digest.
    :raises ManifestError: the range does not hold the batch; the message names the batch and the manifest.
    """
    key = str(batch["manifest_key"])
    name = f"batch {batch.get('index')} of manifest s3://{bucket}/{key}"
    expected = str(batch.get("sha256") or "")
    if not expected:
        raise ManifestIntegrityError(
            f"{name} has no sha256 (planned by an older provider version), so its bytes cannot be verified: "
            "clear the window's fetch_metadata_window task so that the batches are planned again"
        )
    refs: list[SegmentRef] = []
    rows: dict[Ident, dict] = {}
    digest = hashlib.sha256()
    pin = pin_args(batch.get("manifest_etag"), batch.get("manifest_version"))
    lines = iter_manifest(client, bucket, key, byte_range=batch["range"], pin=pin, digest=digest)
    try:
        for line in lines:
            if is_recorded(line):
                ref = as_ref(line["ref"])
                refs.append(ref)
                rows[(ref["dialog_id"], ref["segment_id"])] = line.get("row") or {}
    except ManifestIntegrityError:
        raise
    except ManifestError as err:  # not JSON where the metadata task wrote JSON
        raise ManifestIntegrityError(f"{name} was edited: {err}. {_EDITED_FIX}") from err
    if digest.hexdigest() != expected:
        raise ManifestIntegrityError(
            f"{name}: bytes {batch['range']} hash to {digest.hexdigest()}, the batch was planned from bytes "
            f"that hash to {expected}: the manifest was edited after it was written. {_EDITED_FIX}"
        )
    ends = [[ref["dialog_id"], ref["segment_id"]] for ref in (refs[:1] + refs[-1:])] if refs else []
    if len(refs) != int(batch["count"]) or ends != [list(batch["first"]), list(batch["last"])]:
        raise ManifestError(
            f"batch {batch.get('index')} does not match manifest s3://{bucket}/{key}: bytes "
            f"{batch['range']} hold {len(refs)} recordings, the batch lists {batch['count']} from "
            f"{batch['first']} to {batch['last']}. The manifest is not the one this batch was planned "
            "from: clear the window's fetch_metadata_window task so that the batches are planned again"
        )
    return refs, rows


_EDITED_FIX = (
    "Do not archive from it: restore the original version of the manifest, or delete it and clear the "
    "window's fetch_metadata_window task so that the window is listed and planned again"
)


def iter_refs(client: S3Client, bucket: str, key: str) -> Iterator[SegmentRef]:
    """Yield the refs of every segment with a recording, in manifest order (one streaming pass)."""
    for line in iter_manifest(client, bucket, key):
        if is_recorded(line):
            yield as_ref(line["ref"])


def read_rows(
    client: S3Client, bucket: str, key: str, refs: Sequence[Mapping[str, Any]]
) -> dict[Ident, dict]:
    """Return the vendor rows of an explicit list of ``refs`` by ``(dialog_id, segment_id)``.

    Uses the summary's byte range of the batch that starts with ``refs[0]`` (one ranged GET), then a full
    streaming scan for anything not found there. Refs absent from the manifest are absent from the result.
    """
    wanted = {(str(ref["dialog_id"]), str(ref["segment_id"])) for ref in refs}
    found: dict[Ident, dict] = {}
    if not wanted:
        return found
    ranges = []
    try:
        summary = read_summary(client, bucket, key)
        first = [str(refs[0]["dialog_id"]), str(refs[0]["segment_id"])]
        ranges = [batch["range"] for batch in summary.get("batches", []) if batch.get("first") == first]
    except (ManifestError, RingCXBadPayloadError):
        ranges = []
    for byte_range in [*ranges[:1], None]:
        for line in iter_manifest(client, bucket, key, byte_range=byte_range):
            pair = (str(line.get("dialog_id")), str(line.get("segment_id")))
            if line.get("kind") == SEGMENT and pair in wanted:
                found[pair] = line.get("row") or {}
        if wanted <= found.keys():
            break
    return found


def _decode(line: bytes, bucket: str, key: str) -> dict:
    return decode_line(line, f"s3://{bucket}/{key}")
