"""The window manifest format, ``ringcx-window-manifest/1``: its lines, its records and its digests.

This module is the one place that knows the format; the writer
(:mod:`~airflow_provider_ringcx.transfers.manifest`), the reader
(:mod:`~airflow_provider_ringcx.transfers.manifest_reader`) and the verifier
(:mod:`~airflow_provider_ringcx.transfers.manifest_integrity`) build and read lines only through it.

A manifest is JSON Lines (content type ``application/x-ndjson``), one standard-JSON object per line:

1. a header: ``{"kind": "header", "format", "created_at", "provider_version", "sub_account_id",
   "window_start", "window_end", ...}``;
2. one line per metadata row, in the order RingCX returned them:

   - ``{"kind": "segment", "dialog_id", "segment_id", "has_recording", "ref": {compact ref}, "row": {the
     vendor row exactly as received, segmentEvents included}}``;
   - ``{"kind": "invalid", "reason", "raw"}`` for a row that could not be parsed (raw text excerpt);

3. a summary (always last): ``{"kind": "summary", "rows", "segments", "with_recording", "invalid",
   "batch_size", "batches": [batch record, ...]}``.

A **batch record** is ``{"index", "count", "first", "last", "range": [start_byte, end_byte], "ends":
[earliest_end, latest_end], "sha256"}``: a consecutive run of the segments that have a recording, whose rows
occupy the one byte range ``[start, end)``; ``sha256`` is the hex SHA-256 of those bytes. A batch merged to
stay under Airflow's map-length cap has ``"parts": [[start, sha256], ...]`` instead of ``sha256``: its
merged range cut at each constituent batch's start, each piece's SHA-256 as it was written (a merged
range's digest cannot be derived from its pieces' digests while streaming). Every batch record carries one
or the other: a record with neither is refused (:func:`check_batch_records`), never skipped, because a
record without a digest is what an edit that drops the digest would look like.

The manifest's **identity** (:class:`ManifestIdentity`) is the write's ETag and VersionId as S3 answered
them plus the SHA-256 and size of the whole body; see
:mod:`~airflow_provider_ringcx.transfers.manifest_reader` for why it travels through XCom and not next to
the manifest.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypedDict

from airflow_provider_ringcx import __version__, jsonutil
from airflow_provider_ringcx.exceptions import RingCXError
from airflow_provider_ringcx.models import ManifestBatch, SegmentRecord, SegmentRef, format_timestamp
from airflow_provider_ringcx.scrub import scrub

MANIFEST_FORMAT = "ringcx-window-manifest/1"
MANIFEST_CONTENT_TYPE = "application/x-ndjson"

HEADER = "header"
SEGMENT = "segment"
INVALID = "invalid"
SUMMARY = "summary"
#: The row counters of a summary line.
COUNTS = ("rows", "segments", "with_recording", "invalid")

#: ``(dialog_id, segment_id)``
Ident = tuple[str, str]
#: ``[start, end)`` byte offsets in the manifest.
ByteRange = tuple[int, int]

_HEX64 = re.compile(r"[0-9a-f]{64}")


class ManifestError(RingCXError):
    """A manifest in S3 is not a complete ``ringcx-window-manifest/1`` document, or a batch disagrees
    with it."""


class ManifestIntegrityError(ManifestError):
    """A manifest's bytes are not the ones the metadata task wrote and planned from: edited, replaced or
    deleted since, or they cannot be proven to be. Not retryable: a retry would read the same bytes."""


class ManifestIdentity(TypedDict):
    """A manifest as written: ``etag`` and ``version_id`` as S3 answered the write (``version_id`` is
    ``None`` in an unversioned bucket), ``sha256`` (hex) and ``size`` of the whole body."""

    key: str
    etag: str | None
    version_id: str | None
    sha256: str
    size: int


# --- lines ---------------------------------------------------------------------------------------------
def encode_line(obj: Mapping[str, Any]) -> bytes:
    """One manifest line: standard JSON only (``NaN``/``Infinity`` raise, see :mod:`..jsonutil`)."""
    text = jsonutil.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)
    return (text + "\n").encode("utf-8")


def decode_line(line: bytes, where: str) -> dict[str, Any]:
    """One manifest line as a dict, read with the depth-checked strict reader.

    :param where: ``s3://bucket/key``, for the message.
    :raises ManifestError: the line is not a JSON object.
    """
    try:
        value = jsonutil.strict_loads(line)  # depth-checked: an edited line cannot raise RecursionError
    except ValueError as err:
        raise ManifestError(f"manifest {where} has a line that is not JSON ({err})")
    if not isinstance(value, dict):
        raise ManifestError(f"manifest {where} has a line that is not an object")
    return value


def header_line(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The header line: format, creation time, provider version and ``fields`` (window, sub-account)."""
    return {
        "kind": HEADER,
        "format": MANIFEST_FORMAT,
        "created_at": format_timestamp(datetime.now(timezone.utc)),
        "provider_version": __version__,
        **fields,
    }


def segment_line(record: SegmentRecord) -> dict[str, Any]:
    """The line of one parsed metadata row."""
    return {
        "kind": SEGMENT,
        "dialog_id": record.dialog_id,
        "segment_id": record.segment_id,
        "has_recording": record.has_recording,
        "ref": record.to_ref(),
        "row": dict(record.raw),
    }


def invalid_line(raw: str, error: Exception) -> dict[str, Any]:
    """The line of a row that could not be parsed, with the reason (scrubbed of credentials)."""
    return {"kind": INVALID, "reason": scrub(str(error)), "raw": raw}


def summary_line(counts: Mapping[str, int], batch_size: int, batches: Sequence[Mapping[str, Any]]) -> dict:
    """The summary line (always last): the row counters and the batch records."""
    counters = {name: counts[name] for name in COUNTS}
    return {"kind": SUMMARY, **counters, "batch_size": batch_size, "batches": list(batches)}


def is_summary(line: Mapping[str, Any]) -> bool:
    return line.get("kind") == SUMMARY


def is_recorded(line: Mapping[str, Any]) -> bool:
    """Whether a line is a segment with a recording (one the archive must hold)."""
    return line.get("kind") == SEGMENT and bool(line.get("has_recording"))


def as_ref(ref: Mapping[str, Any]) -> SegmentRef:
    """A :class:`SegmentRef` from a manifest line's ``ref`` (or any mapping with its fields)."""
    return SegmentRef(
        dialog_id=str(ref["dialog_id"]),
        segment_id=str(ref["segment_id"]),
        start=ref.get("start"),
        end=ref.get("end"),
        duration_ms=ref.get("duration_ms"),
    )


# --- batch records -------------------------------------------------------------------------------------
def batch_record(index: int, batch: Mapping[str, Any]) -> dict[str, Any]:
    """The summary's record of one batch, from the writer's counters (``start``/``end`` offsets, ``sha256``
    or, merged, ``parts``)."""
    digest = {"parts": batch["parts"]} if batch.get("parts") else {"sha256": batch["sha256"]}
    return {
        "index": index,
        "count": batch["count"],
        "first": batch["first"],
        "last": batch["last"],
        "range": [batch["start"], batch["end"]],
        "ends": batch["ends"],
        **digest,
    }


def batch_range(batch: Mapping[str, Any]) -> ByteRange:
    return int(batch["range"][0]), int(batch["range"][1])


def digest_ranges(batch: Mapping[str, Any]) -> list[tuple[ByteRange, str]]:
    """The byte ranges a batch record vouches for, each with the SHA-256 recorded when it was written:
    the batch's range, or its merged parts (``[start_i, start_i+1)``, the last up to the range's end)."""
    start, end = batch_range(batch)
    parts = batch.get("parts")
    if not parts:
        return [((start, end), str(batch.get("sha256")))]
    starts = [int(part[0]) for part in parts]
    stops = [*starts[1:], end]
    return [((a, b), str(part[1])) for a, b, part in zip(starts, stops, parts, strict=True)]


def check_batch_records(summary: Mapping[str, Any], where: str) -> None:
    """Refuse a summary whose batch records do not each vouch for their bytes with a digest.

    :raises ManifestIntegrityError: a record has neither ``sha256`` nor ``parts``, a digest is not 64 hex
        digits, or merged parts do not tile the record's range.
    """
    for batch in summary.get("batches", []):
        name = f"batch {batch.get('index')} of manifest {where}"
        try:
            start, end = batch_range(batch)
            pieces = digest_ranges(batch)
        except (KeyError, TypeError, ValueError, IndexError):
            raise ManifestIntegrityError(f"{name} has a malformed range or parts. {DROPPED_DIGEST_FIX}")
        tiled = pieces[0][0][0] == start and all(a < b for (a, b), _ in pieces)
        if not tiled or not all(_HEX64.fullmatch(sha) for _, sha in pieces):
            raise ManifestIntegrityError(
                f"{name} has no sha256 for its bytes {[start, end]} (or its merged parts do not cover "
                f"them), so they cannot be proven to be the ones written. {DROPPED_DIGEST_FIX}"
            )


DROPPED_DIGEST_FIX = (
    "The metadata task writes a digest for every batch: the summary was edited, or written by an older "
    "provider version. Delete the manifest and clear the window's fetch_metadata_window task so that the "
    "window is listed and planned again"
)


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
            range=list(batch_range(batch)),
            first=[str(part) for part in batch["first"]],
            last=[str(part) for part in batch["last"]],
            ends=[str(end) for end in batch.get("ends") or []],
            sha256=str(digests[index] if digests is not None else batch.get("sha256") or ""),
            manifest_etag=identity.get("etag"),
            manifest_version=identity.get("version_id"),
        )
        for index, batch in enumerate(summary.get("batches", []))
    ]


# --- digests over byte ranges ---------------------------------------------------------------------------
class RangeHasher:
    """SHA-256 of several byte ranges of one stream, fed chunk by chunk in one pass.

    Ranges may nest or overlap (a merged batch's range and its parts); each gets its own digest.
    """

    def __init__(self, ranges: Iterable[ByteRange]) -> None:
        self.ranges = list(ranges)
        self._hashers = [hashlib.sha256() for _ in self.ranges]
        self._order = sorted(range(len(self.ranges)), key=lambda i: self.ranges[i][0])
        self._next = 0  # index into _order of the first range not yet started
        self._open: list[int] = []
        self.pos = 0

    def update(self, chunk: bytes) -> None:
        end = self.pos + len(chunk)
        while self._next < len(self._order) and self.ranges[self._order[self._next]][0] < end:
            self._open.append(self._order[self._next])
            self._next += 1
        still_open = []
        for index in self._open:
            start, stop = self.ranges[index]
            low, high = max(start, self.pos) - self.pos, min(stop, end) - self.pos
            if high > low:
                self._hashers[index].update(chunk[low:high])
            if stop > end:
                still_open.append(index)
        self._open = still_open
        self.pos = end

    def hexdigests(self) -> list[str]:
        return [hasher.hexdigest() for hasher in self._hashers]
