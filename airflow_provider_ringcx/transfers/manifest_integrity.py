"""Whole-manifest integrity: verify a manifest against its recorded identity, or establish that identity.

:func:`iter_verified` is how the report reads a window manifest: pinned to the ETag and VersionId the
metadata task recorded, hashed as it streams, and refused at the end if the SHA-256 or the size differs.
:func:`describe` is how a task that did not write a manifest in this attempt (a retry, a concurrent run)
establishes its identity and its batches' range digests, in one streaming pass pinned to one version.
See :mod:`airflow_provider_ringcx.transfers.manifest_reader` for why the trust anchor is XCom.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

from airflow_provider_ringcx.transfers.manifest_reader import (
    READ_CHUNK,
    ManifestError,
    ManifestIdentity,
    ManifestIntegrityError,
    get_pinned,
    iter_manifest,
    pin_args,
    read_tail,
    version_of,
)


def iter_verified(client: Any, bucket: str, identity: Mapping[str, Any]) -> Iterator[dict]:
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


def describe(client: Any, bucket: str, key: str) -> tuple[dict, ManifestIdentity, list[str]]:
    """Read an existing manifest whole, once, pinned to the version its tail was read from: return its
    summary, its identity (ETag, VersionId, SHA-256, size of the bytes read) and each batch range's SHA-256.

    Used when a task reuses a manifest it did not write in this attempt, and after a write whose batches
    were merged (a merged range's digest cannot be derived from its parts' digests).

    :raises ManifestIntegrityError: a batch's range does not hash to the digest the summary recorded when
        it was written (an edit that left the summary alone).
    """
    summary, etag, version_id = read_tail(client, bucket, key)
    ranges = [(int(batch["range"][0]), int(batch["range"][1])) for batch in summary.get("batches", [])]
    hashers = [hashlib.sha256() for _ in ranges]
    whole, pos, first = hashlib.sha256(), 0, 0
    kwargs = {"Bucket": bucket, "Key": key, **pin_args(etag, version_id)}
    response = get_pinned(client, kwargs)
    try:
        for chunk in response["Body"].iter_chunks(READ_CHUNK):
            whole.update(chunk)
            end = pos + len(chunk)
            while first < len(ranges) and ranges[first][1] <= pos:
                first += 1
            for index in range(first, len(ranges)):
                start, stop = ranges[index]
                if start >= end:
                    break
                hashers[index].update(chunk[max(start, pos) - pos : min(stop, end) - pos])
            pos = end
    finally:
        response["Body"].close()
    digests = [hasher.hexdigest() for hasher in hashers]
    for batch, digest in zip(summary.get("batches", []), digests, strict=True):
        if batch.get("sha256") and batch["sha256"] != digest:
            raise ManifestIntegrityError(
                f"batch {batch.get('index')} of manifest s3://{bucket}/{key}: bytes {batch['range']} hash "
                f"to {digest}, the manifest's summary recorded {batch['sha256']} when it was written: the "
                "manifest was edited. Delete it and clear the window's fetch_metadata_window task"
            )
    identity = ManifestIdentity(
        key=key,
        etag=response.get("ETag") or etag,
        version_id=version_of(response) or version_id,
        sha256=whole.hexdigest(),
        size=pos,
    )
    return summary, identity, digests
