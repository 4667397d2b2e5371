"""Reading a window manifest (see :mod:`airflow_provider_ringcx.transfers.manifest` for the format).

Everything here streams or reads byte ranges, so that a manifest of 100,000 rows costs a download task only
its own batch: :func:`batches_from_summary` turns the summary line (read from the object's tail) into the
:class:`~airflow_provider_ringcx.models.ManifestBatch` descriptors that go through XCom, and
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
from typing import Any, TypedDict, TypeGuard

from botocore.exceptions import ClientError

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError, RingCXError
from airflow_provider_ringcx.jsonutil import strict_loads
from airflow_provider_ringcx.models import ManifestBatch, SegmentRef
from airflow_provider_ringcx.s3.writeonce import error_code, http_status

MANIFEST_FORMAT = "ringcx-window-manifest/1"
_TAIL_READ = 256 * 1024
READ_CHUNK = 1024 * 1024

#: ``(dialog_id, segment_id)``
Ident = tuple[str, str]


class ManifestError(RingCXError):
    """A manifest in S3 is not a complete ``ringcx-window-manifest/1`` document, or a batch disagrees
    with it."""


class ManifestIntegrityError(ManifestError):
    """A manifest's bytes are not the ones the metadata task wrote and planned from: edited, replaced or
    deleted since. Not retryable: a retry would read the same bytes."""


class ManifestIdentity(TypedDict):
    """A manifest as written: ``etag`` and ``version_id`` as S3 answered the write (``version_id`` is
    ``None`` in an unversioned bucket), ``sha256`` (hex) and ``size`` of the whole body."""

    key: str
    etag: str | None
    version_id: str | None
    sha256: str
    size: int


def version_of(response: Mapping[str, Any]) -> str | None:
    """A response's ``VersionId``; ``None`` in an unversioned bucket (where some answers say ``"null"``)."""
    version = response.get("VersionId")
    return None if version in (None, "", "null") else str(version)


def pin_args(etag: str | None, version_id: str | None) -> dict[str, str]:
    """``GetObject`` arguments that read exactly the object written: ``IfMatch`` and ``VersionId``."""
    args = {"IfMatch": etag} if etag else {}
    return {**args, "VersionId": version_id} if version_id else args


def manifest_exists(client: Any, bucket: str, key: str) -> bool:
    """Whether the manifest object exists (one HEAD)."""
    try:
        client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as err:
        if http_status(err) == 404:
            return False
        raise
    return True


def iter_manifest(
    client: Any,
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
                    yield _loads(line, bucket, key)
        if pending.strip():
            yield _loads(pending, bucket, key)
    finally:
        body.close()


def get_pinned(client: Any, kwargs: Mapping[str, Any]) -> dict:
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


def _loads(line: bytes, bucket: str, key: str) -> dict:
    try:
        value = strict_loads(line)  # depth-checked: an edited line cannot raise RecursionError
    except ValueError as err:
        raise ManifestError(f"manifest s3://{bucket}/{key} has a line that is not JSON ({err})")
    if not isinstance(value, dict):
        raise ManifestError(f"manifest s3://{bucket}/{key} has a line that is not an object")
    return value


def read_summary(client: Any, bucket: str, key: str) -> dict:
    """Return the manifest's summary line (read from the object's tail with a ranged GET).

    :raises ManifestError: the last line is not a summary (the object is not a complete manifest).
    """
    return read_tail(client, bucket, key)[0]


def read_tail(client: Any, bucket: str, key: str) -> tuple[dict, str | None, str | None]:
    """The summary line, and the ETag and VersionId of the object it was read from."""
    size = _TAIL_READ
    while True:
        response = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{size}")
        data = response["Body"].read()
        total = int(str(response.get("ContentRange", "/0")).rsplit("/", 1)[-1] or 0)
        text = data.rstrip(b"\n")
        whole = total <= len(data) or not response.get("ContentRange")
        if b"\n" in text or whole:
            summary = _loads(text.rsplit(b"\n", 1)[-1], bucket, key)
            if summary.get("kind") != "summary":
                raise ManifestError(
                    f"manifest s3://{bucket}/{key} does not end with a summary line; it is incomplete or "
                    f"not a {MANIFEST_FORMAT} document - delete it only if you are sure no task is writing it"
                )
            return summary, response.get("ETag"), version_of(response)
        size *= 4


def batches_from_summary(
    key: str,
    summary: Mapping[str, Any],
    *,
    identity: Mapping[str, Any] | None = None,
    digests: Sequence[str] | None = None,
) -> list[ManifestBatch]:
    """The XCom descriptors of a manifest's batches, from its summary line.

    :param identity: the manifest as written (ETag, VersionId), copied into each descriptor.
    :param digests: each batch's range SHA-256, computed from the bytes; else the summary's (as written).
    """
    identity = identity or {}
    return [
        ManifestBatch(
            manifest_key=key,
            index=int(batch["index"]),
            count=int(batch["count"]),
            range=[int(batch["range"][0]), int(batch["range"][1])],
            first=[str(part) for part in batch["first"]],
            last=[str(part) for part in batch["last"]],
            ends=[str(end) for end in batch.get("ends") or []],
            sha256=str(digests[index] if digests is not None else batch.get("sha256") or ""),
            manifest_etag=identity.get("etag"),
            manifest_version=identity.get("version_id"),
        )
        for index, batch in enumerate(summary.get("batches", []))
    ]


def is_manifest_batch(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """Whether ``value`` looks like a :class:`ManifestBatch` (a mapping with a key and a byte range)."""
    return isinstance(value, Mapping) and "manifest_key" in value and "range" in value


def as_ref(ref: Mapping[str, Any]) -> SegmentRef:
    """A :class:`SegmentRef` from a manifest line's ``ref`` (or any mapping with its fields)."""
    return SegmentRef(
        dialog_id=str(ref["dialog_id"]),
        segment_id=str(ref["segment_id"]),
        start=ref.get("start"),
        end=ref.get("end"),
        duration_ms=ref.get("duration_ms"),
    )


def _recorded(line: Mapping[str, Any]) -> bool:
    return line.get("kind") == "segment" and bool(line.get("has_recording"))


def load_batch(
    client: Any, bucket: str, batch: Mapping[str, Any]
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
            if _recorded(line):
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


def iter_refs(client: Any, bucket: str, key: str) -> Iterator[SegmentRef]:
    """Yield the refs of every segment with a recording, in manifest order (one streaming pass)."""
    for line in iter_manifest(client, bucket, key):
        if _recorded(line):
            yield as_ref(line["ref"])


def read_rows(client: Any, bucket: str, key: str, refs: Sequence[Mapping[str, Any]]) -> dict[Ident, dict]:
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
            if line.get("kind") == "segment" and pair in wanted:
                found[pair] = line.get("row") or {}
        if wanted <= found.keys():
            break
    return found
