"""Writing the window manifest: every metadata row of one window, written once to S3 as JSON Lines.

The format (line kinds, batch records, digests) is :mod:`~airflow_provider_ringcx.transfers.manifest_format`;
reading is :mod:`~airflow_provider_ringcx.transfers.manifest_reader`.

Why JSON Lines: a 100,000-row window is written as it streams from the hook (memory stays at one 8 MiB part,
see :mod:`~airflow_provider_ringcx.s3.writeonce`) and read line by line; the summary's byte ranges let a
download task fetch only its batch's rows with one ranged GET, so what goes through XCom is a small
descriptor per batch (:class:`~airflow_provider_ringcx.models.ManifestBatch`), not the refs: the writer keeps
only per-batch counters, so neither its memory nor the XCom grows with the window's row count. Batches are
consecutive runs of the segments that have a recording, so each batch's rows occupy one contiguous byte
range.

The manifest is written with ``If-None-Match: *`` and never replaced: a retried or concurrent task finds it
and reuses its batches instead of querying RingCX again. The writer hashes every byte as it streams: the
whole body's SHA-256 and the write's ETag and VersionId are the manifest's identity
(:class:`~airflow_provider_ringcx.transfers.manifest_format.ManifestIdentity`), and every batch record carries
its range's SHA-256 (a merged batch, its parts'), so readers can prove they read what was written.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx.models import ManifestBatch, SegmentRecord, format_timestamp, parse_timestamp
from airflow_provider_ringcx.s3.writeonce import WriteOnceObject
from airflow_provider_ringcx.transfers.manifest_format import (
    COUNTS,
    MANIFEST_CONTENT_TYPE,
    ManifestIdentity,
    ManifestIntegrityError,
    batch_record,
    batches_from_summary,
    encode_line,
    header_line,
    invalid_line,
    segment_line,
    summary_line,
)
from airflow_provider_ringcx.transfers.manifest_integrity import describe
from airflow_provider_ringcx.transfers.manifest_reader import manifest_exists, version_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from airflow_provider_ringcx.hooks.ringcx import RingCXHook

#: Airflow's default ``[core] max_map_length``; batches are merged so that a window never needs more.
MAX_MAP_LENGTH = 1024
#: The default most batches of a window (a margin under ``MAX_MAP_LENGTH``).
MAX_BATCHES = 1000


class ManifestWriter:
    """Stream one window's metadata into a write-once manifest and plan its batches.

    Use :meth:`add` for each parsed row and :meth:`add_invalid` (the hook's ``on_invalid`` callback) for
    rows that failed to parse, then :meth:`finish`. An exception before ``finish`` aborts the upload.
    Only per-batch counters and byte offsets are kept in memory, never the rows or refs.

    :param target: the write-once object (bucket, key, SSE options).
    :param header: extra header fields (window bounds, sub-account, query settings).
    :param batch_size: refs per batch (raised automatically if the batch count would exceed ``max_batches``).
    :param max_batches: the most batches a window may produce (default 1000, under the 1024 map cap).
    """

    def __init__(
        self,
        target: WriteOnceObject,
        *,
        header: Mapping[str, Any],
        batch_size: int,
        max_batches: int = MAX_BATCHES,
    ) -> None:
        if batch_size < 1 or max_batches < 1:
            raise ValueError("batch_size and max_batches must be >= 1")
        self.target = target
        self.batch_size = batch_size
        self.max_batches = min(max_batches, MAX_MAP_LENGTH)
        self.rows = self.segments = self.with_recording = self.invalid = 0
        self._batches: list[dict[str, Any]] = []
        self._range_hash: Any = None  # SHA-256 of the open batch's bytes so far (one hasher at a time)
        self.identity: ManifestIdentity | None = None
        self.target.write(encode_line(header_line(header)))

    def add(self, record: SegmentRecord) -> None:
        """Write one parsed row; a row with a recording joins the current batch."""
        line = encode_line(segment_line(record))
        offset = self.target.write(line)
        self.rows += 1
        self.segments += 1
        if not record.has_recording:
            self._hash_line(line)
            return
        self.with_recording += 1
        ident = [record.dialog_id, record.segment_id]
        if not self._batches or self._batches[-1]["count"] >= self.batch_size:
            if self._batches:  # the closing batch's extent, up to this row: a part if batches are merged
                self._batches[-1]["extent_sha256"] = self._range_hash.hexdigest()
            self._batches.append({"count": 0, "start": offset, "first": ident, "ends": []})
            self._range_hash = hashlib.sha256()
        self._hash_line(line)
        batch = self._batches[-1]
        batch["count"] += 1
        batch["end"] = offset + len(line)
        batch["last"] = ident
        batch["sha256"] = self._range_hash.hexdigest()  # the range ends here, unless another row joins
        end = format_timestamp(record.segment_end)
        if end:
            batch["ends"] = _span(batch["ends"], [end])

    def _hash_line(self, line: bytes) -> None:
        """Bytes written while a batch is open may fall inside its range (rows without a recording
        between two of its rows): hash them; only the digest at the batch's last row is kept."""
        if self._range_hash is not None:
            self._range_hash.update(line)

    def add_invalid(self, raw: str, error: Exception) -> None:
        """Write a row that could not be parsed, with the reason (signature of the hook's ``on_invalid``)."""
        line = encode_line(invalid_line(raw, error))
        self.target.write(line)
        self._hash_line(line)
        self.rows += 1
        self.invalid += 1

    def finish(self) -> tuple[bool, list[ManifestBatch]]:
        """Write the summary and commit. Return ``(written, batches)``; ``written`` is ``False`` if another
        task created the manifest first (then use that one's batches)."""
        batches = _merge(self._batches, self.max_batches)
        summary = summary_line(
            {name: getattr(self, name) for name in COUNTS},
            max((batch["count"] for batch in batches), default=self.batch_size),
            [batch_record(index, batch) for index, batch in enumerate(batches)],
        )
        self.target.write(encode_line(summary))
        written = self.target.commit()
        if not written:
            return False, []
        target = self.target
        self.identity = ManifestIdentity(
            key=target.key,
            etag=target.etag,
            version_id=version_of({"VersionId": target.version_id}),
            sha256=target.sha256.hexdigest(),
            size=target.bytes_written,
        )
        if not any(batch.get("parts") for batch in batches):
            return True, batches_from_summary(target.key, summary, identity=self.identity)
        # merged batches: hash their whole ranges from what S3 now holds, pinned to this write
        _, read, digests = describe(target.client, target.bucket, target.key)
        if read["sha256"] != self.identity["sha256"]:
            raise ManifestIntegrityError(
                f"manifest s3://{target.bucket}/{target.key} reads back as {read['sha256']}, this task wrote "
                f"{self.identity['sha256']}: it was replaced at once. Delete it and retry the task"
            )
        return True, batches_from_summary(target.key, summary, identity=self.identity, digests=digests)


def _span(a: list[str], b: list[str]) -> list[str]:
    """The earliest and latest of two ``[earliest, latest]`` spans of ISO-8601 UTC strings, compared as
    instants (``...:40Z`` and ``...:40.500Z`` do not sort as text)."""
    both = [*a, *b]
    return [min(both, key=_instant), max(both, key=_instant)] if both else []


def _instant(text: str) -> datetime:
    return parse_timestamp(text) or datetime.min.replace(tzinfo=timezone.utc)


def _merge(batches: list[dict[str, Any]], max_batches: int) -> list[dict[str, Any]]:
    if len(batches) <= max_batches:
        return batches
    factor = math.ceil(len(batches) / max_batches)
    merged = []
    for i in range(0, len(batches), factor):
        group = batches[i : i + factor]
        ends: list[str] = []
        for batch in group:
            ends = _span(ends, batch["ends"])
        # each part is a batch's extent (its range and the rows after it, up to the next batch's start),
        # the last one its range only: together they tile the merged range
        parts = [[batch["start"], batch["extent_sha256"]] for batch in group[:-1]]
        merged.append(
            {
                "parts": [*parts, [group[-1]["start"], group[-1]["sha256"]]],
                "count": sum(batch["count"] for batch in group),
                "start": group[0]["start"],
                "end": group[-1]["end"],
                "first": group[0]["first"],
                "last": group[-1]["last"],
                "ends": ends,
            }
        )
    return merged


def fetch_window_manifest(
    *,
    hook: RingCXHook,
    client: S3Client,
    bucket: str,
    key: str,
    start: datetime,
    end: datetime,
    sub_account_id: str,
    batch_size: int,
    max_batches: int = MAX_BATCHES,
    extra_args: Mapping[str, Any] | None = None,
    log: Any = None,
) -> tuple[list[ManifestBatch], dict[str, int], ManifestIdentity]:
    """Return the window's batches: from the existing manifest, else by querying RingCX and writing it.

    RingCX is queried only when no manifest exists at ``key``. If another task creates the manifest while
    this one is querying, this one's upload is aborted and the other's batches are returned, so every
    task of the window maps the same batches.

    :return: ``(batches, counts, identity)``; counts are ``rows``, ``segments``, ``with_recording``,
        ``invalid``, ``batches`` and ``reused`` (1 when an existing manifest was used); ``identity`` is the
        manifest's ETag, VersionId and SHA-256 (as written, or as read back once when reused).
    """
    if manifest_exists(client, bucket, key):
        if log is not None:
            log.info("manifest s3://%s/%s exists; reusing it (RingCX is not queried again)", bucket, key)
        return _reuse(client, bucket, key)
    target = WriteOnceObject(
        client, bucket, key, content_type=MANIFEST_CONTENT_TYPE, extra_args=dict(extra_args or {})
    )
    header = {
        "sub_account_id": sub_account_id,
        "window_start": format_timestamp(start),
        "window_end": format_timestamp(end),
        "filter": "segmentEndTime in [window_start, window_end)",
    }
    try:
        writer = ManifestWriter(target, header=header, batch_size=batch_size, max_batches=max_batches)
        for record in hook.iter_interaction_metadata(start, end, on_invalid=writer.add_invalid):
            writer.add(record)
        written, batches = writer.finish()
    except BaseException:
        target.abort()
        raise
    if not written:
        if log is not None:
            log.info("manifest s3://%s/%s was written concurrently by another task; using it", bucket, key)
        return _reuse(client, bucket, key)
    counts = {
        "rows": writer.rows,
        "segments": writer.segments,
        "with_recording": writer.with_recording,
        "invalid": writer.invalid,
        "batches": len(batches),
        "reused": 0,
    }
    assert writer.identity is not None  # set by a successful finish()
    if log is not None:
        log.info(
            "window manifest s3://%s/%s: %d rows, %d with a recording in %d batches, %d unparseable",
            bucket,
            key,
            writer.rows,
            writer.with_recording,
            len(batches),
            writer.invalid,
        )
    return batches, counts, writer.identity


def _reuse(
    client: S3Client, bucket: str, key: str
) -> tuple[list[ManifestBatch], dict[str, int], ManifestIdentity]:
    """Batches of a manifest this attempt did not write: read it whole once, so that the identity and the
    range digests handed on are those of the bytes the batches are planned from."""
    summary, identity, digests = describe(client, bucket, key)
    batches = batches_from_summary(key, summary, identity=identity, digests=digests)
    counts = {name: int(summary.get(name, 0)) for name in COUNTS}
    return batches, {**counts, "batches": len(batches), "reused": 1}, identity
