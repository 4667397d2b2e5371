"""Reading a window manifest (see :mod:`airflow_provider_ringcx.s3.manifest` for the format).

Everything here streams or reads byte ranges, so that a manifest of 100,000 rows costs a download task only
its own batch: :func:`batches_from_summary` turns the summary line (read from the object's tail) into the
:class:`~airflow_provider_ringcx.models.ManifestBatch` descriptors that go through XCom, and
:func:`load_batch` reads one batch's rows back with a single ranged GET.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeGuard

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError, RingCXError
from airflow_provider_ringcx.models import ManifestBatch, SegmentRef
from airflow_provider_ringcx.s3.writeonce import http_status

MANIFEST_FORMAT = "ringcx-window-manifest/1"
_TAIL_READ = 256 * 1024
_READ_CHUNK = 1024 * 1024

#: ``(dialog_id, segment_id)``
Ident = tuple[str, str]


class ManifestError(RingCXError):
    """A manifest in S3 is not a complete ``ringcx-window-manifest/1`` document, or a batch disagrees
    with it."""


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
    client: Any, bucket: str, key: str, *, byte_range: Sequence[int] | None = None
) -> Iterator[dict]:
    """Yield the manifest's lines as dicts, streaming (optionally only ``[start, end)`` bytes).

    :raises ManifestError: a line is not JSON.
    """
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if byte_range is not None:
        kwargs["Range"] = f"bytes={byte_range[0]}-{byte_range[1] - 1}"
    body = client.get_object(**kwargs)["Body"]
    pending = b""
    try:
        for chunk in body.iter_chunks(_READ_CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield _loads(line, bucket, key)
        if pending.strip():
            yield _loads(pending, bucket, key)
    finally:
        body.close()


def _loads(line: bytes, bucket: str, key: str) -> dict:
    try:
        value = json.loads(line)
    except ValueError as err:
        raise ManifestError(f"manifest s3://{bucket}/{key} has a line that is not JSON ({err})")
    if not isinstance(value, dict):
        raise ManifestError(f"manifest s3://{bucket}/{key} has a line that is not an object")
    return value


def read_summary(client: Any, bucket: str, key: str) -> dict:
    """Return the manifest's summary line (read from the object's tail with a ranged GET).

    :raises ManifestError: the last line is not a summary (the object is not a complete manifest).
    """
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
            return summary
        size *= 4


def batches_from_summary(key: str, summary: Mapping[str, Any]) -> list[ManifestBatch]:
    """The XCom descriptors of a manifest's batches, from its summary line."""
    return [
        ManifestBatch(
            manifest_key=key,
            index=int(batch["index"]),
            count=int(batch["count"]),
            range=[int(batch["range"][0]), int(batch["range"][1])],
            first=[str(part) for part in batch["first"]],
            last=[str(part) for part in batch["last"]],
            ends=[str(end) for end in batch.get("ends") or []],
        )
        for batch in summary.get("batches", [])
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
    :raises ManifestError: the range does not hold the batch (a different manifest, or one rewritten
        since); the message names the batch and the manifest.
    """
    key = str(batch["manifest_key"])
    refs: list[SegmentRef] = []
    rows: dict[Ident, dict] = {}
    for line in iter_manifest(client, bucket, key, byte_range=batch["range"]):
        if _recorded(line):
            ref = as_ref(line["ref"])
            refs.append(ref)
            rows[(ref["dialog_id"], ref["segment_id"])] = line.get("row") or {}
    ends = [[ref["dialog_id"], ref["segment_id"]] for ref in (refs[:1] + refs[-1:])] if refs else []
    if len(refs) != int(batch["count"]) or ends != [list(batch["first"]), list(batch["last"])]:
        raise ManifestError(
            f"batch {batch.get('index')} does not match manifest s3://{bucket}/{key}: bytes "
            f"{batch['range']} hold {len(refs)} recordings, the batch lists {batch['count']} from "
            f"{batch['first']} to {batch['last']}. The manifest is not the one this batch was planned "
            "from: clear the window's fetch_metadata_window task so that the batches are planned again"
        )
    return refs, rows


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
