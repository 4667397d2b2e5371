"""Whole-manifest integrity: verify a manifest against its recorded identity, or establish that identity.

:func:`check_identity` and :func:`iter_verified` are how the report (and the late-arrival planner) read a
manifest: the identity the metadata task recorded in XCom must be there and name the key, the current
version must be the recorded one, and the bytes are read pinned to the ETag and VersionId, hashed as they
stream and refused at the end if the SHA-256 or the size differs. Without that identity nothing proves the
manifest is the one written, so the read is refused unless the run opts out
(``allow_unverified_manifest``, default off), and then the report says ``"verified": false``.

:func:`describe` is how a task that did not write a manifest in this attempt (a retry, a concurrent run)
establishes its identity and its batches' range digests, in one streaming pass pinned to one version; every
batch record must carry its digest (:func:`~.manifest_format.check_batch_records`). See
:mod:`airflow_provider_ringcx.transfers.manifest_reader` for why the trust anchor is XCom.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx.models import SegmentRef
from airflow_provider_ringcx.transfers.manifest_format import (
    ManifestError,
    ManifestIdentity,
    ManifestIntegrityError,
    RangeHasher,
    as_ref,
    batch_range,
    check_batch_records,
    digest_ranges,
    is_recorded,
)
from airflow_provider_ringcx.transfers.manifest_reader import (
    READ_CHUNK,
    get_pinned,
    iter_manifest,
    pin_args,
    read_tail,
    version_of,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: The run setting that lets a report read a manifest whose identity XCom is absent (default off).
ALLOW_UNVERIFIED = "allow_unverified_manifest"


class ManifestUnverifiedError(ManifestIntegrityError):
    """A manifest is about to be trusted but the identity its metadata task recorded is absent: nothing
    proves its bytes are the ones written. Not retryable: a retry would find the same XCom."""


def check_identity(
    client: S3Client,
    bucket: str,
    key: str,
    identity: Mapping[str, Any] | None,
    *,
    what: str,
    task_id: str,
    allow_unverified: bool = False,
) -> dict[str, Any]:
    """What the report says about a manifest's integrity (its ``manifest`` section), before reading it.

    With an identity, it must name ``key``, and in a versioned bucket the current version must still be
    the recorded one: a write-once manifest with a newer version was written over (the pinned read would
    still see the original, but the tampering must not pass silently).

    :param what: the manifest's window, for the messages (``window 20260302T1400Z_20260302T1415Z``).
    :param task_id: the task that wrote it and recorded its identity in its XCom ``manifest``.
    :param allow_unverified: the run's ``allow_unverified_manifest``: read without an identity.
    :raises ManifestUnverifiedError: no identity and no opt-out.
    :raises ManifestIntegrityError: the identity is of another key, or the manifest has a newer version.
    """
    if not identity:
        if not allow_unverified:
            raise ManifestUnverifiedError(
                f"{what}: the {task_id} task's XCom 'manifest' (the identity of s3://{bucket}/{key} as "
                "it was written) is absent, so the manifest cannot be verified and the window cannot be "
                f"reported complete. Clear {task_id} (and the tasks after it) so that the metadata task runs "
                f"again and records it; or, to report from the unverified manifest, set "
                f"{ALLOW_UNVERIFIED}=true"
            )
        return {
            "key": key,
            "verified": False,
            "note": f"the {task_id} task's XCom 'manifest' is absent in this run: read without verification "
            f"({ALLOW_UNVERIFIED}=true)",
        }
    if identity.get("key") != key:
        raise ManifestIntegrityError(
            f"the {task_id} task recorded manifest {identity.get('key')!r}, the report reads {key!r}: clear "
            "the whole run so that both use the same window"
        )
    current = client.head_object(Bucket=bucket, Key=key).get("VersionId")
    if identity.get("version_id") and current != identity["version_id"]:
        raise ManifestIntegrityError(
            f"manifest s3://{bucket}/{key} now has version {current}, but the {task_id} task wrote version "
            f"{identity['version_id']} and manifests are write-once: it was written over. Find who wrote it; "
            "restore the original (delete the newer version), or delete the manifest and re-run the window"
        )
    return {**dict(identity), "verified": True}


def iter_lines(client: S3Client, bucket: str, key: str, identity: Mapping[str, Any] | None) -> Iterator[dict]:
    """The manifest's lines: verified against ``identity`` when there is one (see :func:`iter_verified`),
    else as stored (only after :func:`check_identity` allowed that)."""
    return iter_verified(client, bucket, identity) if identity else iter_manifest(client, bucket, key)


def iter_recorded_refs(
    client: S3Client, bucket: str, key: str, identity: Mapping[str, Any] | None
) -> Iterator[SegmentRef]:
    """The refs of every segment with a recording, in manifest order, read as :func:`iter_lines` does."""
    for line in iter_lines(client, bucket, key, identity):
        if is_recorded(line):
            yield as_ref(line["ref"])


def iter_verified(client: S3Client, bucket: str, identity: Mapping[str, Any]) -> Iterator[dict]:
    """Yield every line of the manifest ``identity`` names, pinned to it; after the last line, raise
    :class:`ManifestIntegrityError` if the bytes read do not hash to ``identity["sha256"]`` (so a caller
    that consumes the whole iterator never trusts an edited manifest)."""
    key = str(identity["key"])
    digest = hashlib.sha256()
    size = _Counter()
    pin = pin_args(identity.get("etag"), identity.get("version_id"))
    try:
        yield from iter_manifest(client, bucket, key, pin=pin, digest=_Tee(digest, size))
    except ManifestIntegrityError:
        raise
    except ManifestError as err:
        raise ManifestIntegrityError(f"{err}; the metadata task wrote valid JSON, so it was edited") from err
    if digest.hexdigest() != identity["sha256"] or size.count != int(identity["size"]):
        raise ManifestIntegrityError(
            f"manifest s3://{bucket}/{key} hashes to {digest.hexdigest()} ({size.count} bytes), the metadata "
            f"task wrote {identity['sha256']} ({identity['size']} bytes): it was edited after it was written "
            "and cannot be trusted. Restore the original version, or delete the manifest and clear the "
            "window's fetch_metadata_window task so that the window is listed again"
        )


class _Counter:
    count = 0


class _Tee:
    """A ``hashlib``-like sink that updates a digest and counts the bytes."""

    def __init__(self, digest: Any, counter: _Counter) -> None:
        self.digest, self.counter = digest, counter

    def update(self, data: bytes) -> None:
        self.digest.update(data)
        self.counter.count += len(data)


def describe(client: S3Client, bucket: str, key: str) -> tuple[dict, ManifestIdentity, list[str]]:
    """Read an existing manifest whole, once, pinned to the version its tail was read from: return its
    summary, its identity (ETag, VersionId, SHA-256, size of the bytes read) and each batch range's SHA-256.

    Used when a task reuses a manifest it did not write in this attempt, and after a write whose batches
    were merged (a merged range's digest cannot be derived from its parts' digests).

    :raises ManifestIntegrityError: a batch record has no digest, or a range (a merged batch's part) does
        not hash to the digest the summary recorded when it was written (an edit that left the summary
        alone).
    """
    summary, etag, version_id = read_tail(client, bucket, key)
    where = f"s3://{bucket}/{key}"
    check_batch_records(summary, where)  # a record without its digest is refused, never skipped
    batches = summary.get("batches", [])
    recorded = [digest_ranges(batch) for batch in batches]
    ranges = list(dict.fromkeys([*map(batch_range, batches), *(r for pieces in recorded for r, _ in pieces)]))
    hasher, whole = RangeHasher(ranges), hashlib.sha256()
    response = get_pinned(client, {"Bucket": bucket, "Key": key, **pin_args(etag, version_id)})
    try:
        for chunk in response["Body"].iter_chunks(READ_CHUNK):
            whole.update(chunk)
            hasher.update(chunk)
    finally:
        response["Body"].close()
    found = dict(zip(ranges, hasher.hexdigests(), strict=True))
    for batch, pieces in zip(batches, recorded, strict=True):
        for piece, sha in pieces:
            if found[piece] != sha:
                raise ManifestIntegrityError(
                    f"batch {batch.get('index')} of manifest {where}: bytes {list(piece)} hash to "
                    f"{found[piece]}, the manifest's summary recorded {sha} when it was written: the "
                    "manifest was edited. Delete it and clear the window's fetch_metadata_window task"
                )
    identity = ManifestIdentity(
        key=key,
        etag=response.get("ETag") or etag,
        version_id=version_of(response) or version_id,
        sha256=whole.hexdigest(),
        size=hasher.pos,
    )
    return summary, identity, [found[batch_range(batch)] for batch in batches]
