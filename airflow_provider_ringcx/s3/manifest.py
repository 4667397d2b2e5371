"""The window manifest: every metadata row of one window, written once to S3 as JSON Lines.

Format ``ringcx-window-manifest/1`` (content type ``application/x-ndjson``), one JSON object per line:

1. a header: ``{"kind": "header", "format", "sub_account_id", "window_start", "window_end", "created_at",
   "provider_version", ...}``;
2. one line per metadata row, in the order RingCX returned them:

   - ``{"kind": "segment", "dialog_id", "segment_id", "has_recording", "ref": {compact ref}, "row": {the
     vendor row exactly as received, segmentEvents included}}``;
   - ``{"kind": "invalid", "reason", "raw"}`` for a row that could not be parsed (raw text excerpt);

3. a summary (always last): ``{"kind": "summary", "rows", "segments", "with_recording", "invalid",
   "batch_size", "batches": [{"index", "count", "first", "last", "range": [start_byte, end_byte]}]}``.

Why JSON Lines: a 100,000-row window is written as it streams from the hook (memory stays at one 8 MiB part,
see :mod:`~airflow_provider_ringcx.s3.writeonce`) and read line by line; the summary's byte ranges let a
download task fetch only its batch's rows with one ranged GET. Batches are consecutive runs of the segments
that have a recording, so each batch's rows occupy one contiguous byte range.

The manifest is written with ``If-None-Match: *`` and never replaced: a retried or concurrent task finds it
and reuses its batches instead of querying RingCX again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from airflow_provider_ringcx import __version__
from airflow_provider_ringcx.exceptions import RingCXBadPayloadError, RingCXError
from airflow_provider_ringcx.models import SegmentRecord, SegmentRef, format_timestamp
from airflow_provider_ringcx.s3.writeonce import WriteOnceObject

MANIFEST_FORMAT = "ringcx-window-manifest/1"
MANIFEST_CONTENT_TYPE = "application/x-ndjson"
#: Airflow's default ``[core] max_map_length``; batches are merged so that a window never needs more.
MAX_MAP_LENGTH = 1024
_TAIL_READ = 256 * 1024
_READ_CHUNK = 1024 * 1024


def _dumps(obj: Any) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str) + "\n").encode("utf-8")


class ManifestError(RingCXError):
    """A manifest in S3 is not a complete ``ringcx-window-manifest/1`` document."""


class ManifestWriter:
    """Stream one window's metadata into a write-once manifest and collect the batches of refs.

    Use :meth:`add` for each parsed row and :meth:`add_invalid` (the hook's ``on_invalid`` callback) for
    rows that failed to parse, then :meth:`finish`. An exception before ``finish`` aborts the upload.

    :param target: the write-once object (bucket, key, SSE options).
    :param header: extra header fields (window bounds, sub-account, query settings).
    :param batch_size: refs per batch (raised automatically if the batch count would exceed ``max_batches``).
    :param max_batches: the most batches a window may produce (default 1000, under the 1024 map cap).
    """

    def __init__(
        self, target: WriteOnceObject, *, header: Mapping[str, Any], batch_size: int, max_batches: int = 1000
    ) -> None:
        if batch_size < 1 or max_batches < 1:
            raise ValueError("batch_size and max_batches must be >= 1")
        self.target = target
        self.batch_size = batch_size
        self.max_batches = min(max_batches, MAX_MAP_LENGTH)
        self.rows = self.segments = self.with_recording = self.invalid = 0
        self._batches: list[dict[str, Any]] = []
        self.target.write(
            _dumps(
                {
                    "kind": "header",
                    "format": MANIFEST_FORMAT,
                    "created_at": format_timestamp(datetime.now(timezone.utc)),
                    "provider_version": __version__,
                    **header,
                }
            )
        )

    def add(self, record: SegmentRecord) -> None:
        """Write one parsed row; a row with a recording joins the current batch."""
        ref = record.to_ref()
        line = _dumps(
            {
                "kind": "segment",
                "dialog_id": record.dialog_id,
                "segment_id": record.segment_id,
                "has_recording": record.has_recording,
                "ref": ref,
                "row": dict(record.raw),
            }
        )
        offset = self.target.write(line)
        self.rows += 1
        self.segments += 1
        if not record.has_recording:
            return
        self.with_recording += 1
        if not self._batches or len(self._batches[-1]["refs"]) >= self.batch_size:
            self._batches.append({"refs": [], "start": offset})
        self._batches[-1]["refs"].append(ref)
        self._batches[-1]["end"] = offset + len(line)

    def add_invalid(self, raw: str, error: Exception) -> None:
        """Write a row that could not be parsed, with the reason (signature of the hook's ``on_invalid``)."""
        self.target.write(_dumps({"kind": "invalid", "reason": str(error), "raw": raw}))
        self.rows += 1
        self.invalid += 1

    def finish(self) -> tuple[bool, list[list[SegmentRef]]]:
        """Write the summary and commit. Return ``(written, batches)``; ``written`` is ``False`` if another
        task created the manifest first (then read that one: :func:`read_batches`)."""
        batches = _merge(self._batches, self.max_batches)
        summary = {
            "kind": "summary",
            "rows": self.rows,
            "segments": self.segments,
            "with_recording": self.with_recording,
            "invalid": self.invalid,
            "batch_size": max((len(b["refs"]) for b in batches), default=self.batch_size),
            "batches": [
                {
                    "index": index,
                    "count": len(batch["refs"]),
                    "first": _ref_key(batch["refs"][0]),
                    "last": _ref_key(batch["refs"][-1]),
                    "range": [batch["start"], batch["end"]],
                }
                for index, batch in enumerate(batches)
            ],
        }
        self.target.write(_dumps(summary))
        written = self.target.commit()
        return written, [batch["refs"] for batch in batches]


def _merge(batches: list[dict[str, Any]], max_batches: int) -> list[dict[str, Any]]:
    if len(batches) <= max_batches:
        return batches
    factor = math.ceil(len(batches) / max_batches)
    merged = []
    for i in range(0, len(batches), factor):
        group = batches[i : i + factor]
        merged.append(
            {
                "refs": [ref for batch in group for ref in batch["refs"]],
                "start": group[0]["start"],
                "end": group[-1]["end"],
            }
        )
    return merged


def _as_ref(ref: Mapping[str, Any]) -> SegmentRef:
    return SegmentRef(
        dialog_id=str(ref["dialog_id"]),
        segment_id=str(ref["segment_id"]),
        start=ref.get("start"),
        end=ref.get("end"),
        duration_ms=ref.get("duration_ms"),
    )


def _ref_key(ref: Mapping[str, Any]) -> list[str]:
    return [str(ref["dialog_id"]), str(ref["segment_id"])]


def manifest_exists(client: Any, bucket: str, key: str) -> bool:
    """Whether the manifest object exists (one HEAD)."""
    try:
        client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as err:
        if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
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
                    "not a "
                    f"{MANIFEST_FORMAT} document - delete it only if you are sure no task is writing it"
                )
            return summary
        size *= 4


def read_batches(client: Any, bucket: str, key: str) -> list[list[SegmentRef]]:
    """Rebuild the batches of refs of an existing manifest (one streaming pass).

    :raises ManifestError: the manifest is incomplete or its summary disagrees with its rows.
    """
    refs: list[SegmentRef] = []
    summary: dict | None = None
    for line in iter_manifest(client, bucket, key):
        kind = line.get("kind")
        if kind == "segment" and line.get("has_recording"):
            refs.append(_as_ref(line["ref"]))
        elif kind == "summary":
            summary = line
    if summary is None:
        raise ManifestError(f"manifest s3://{bucket}/{key} has no summary line")
    counts = [int(batch["count"]) for batch in summary["batches"]]
    if sum(counts) != len(refs):
        raise ManifestError(
            f"manifest s3://{bucket}/{key}: summary lists {sum(counts)} recordings, rows hold {len(refs)}"
        )
    batches, start = [], 0
    for count in counts:
        batches.append(refs[start : start + count])
        start += count
    return batches


def read_rows(
    client: Any, bucket: str, key: str, refs: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], dict]:
    """Return the vendor rows of ``refs`` by ``(dialog_id, segment_id)``.

    Uses the summary's byte range of the batch that starts with ``refs[0]`` (one ranged GET), then a full
    streaming scan for anything not found there. Refs absent from the manifest are absent from the result.
    """
    wanted = {(str(ref["dialog_id"]), str(ref["segment_id"])) for ref in refs}
    found: dict[tuple[str, str], dict] = {}
    if not wanted:
        return found
    ranges = []
    try:
        summary = read_summary(client, bucket, key)
        first = _ref_key(refs[0])
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


def fetch_window_manifest(
    *,
    hook: Any,
    client: Any,
    bucket: str,
    key: str,
    start: datetime,
    end: datetime,
    sub_account_id: str,
    batch_size: int,
    max_batches: int = 1000,
    extra_args: Mapping[str, Any] | None = None,
    log: Any = None,
) -> tuple[list[list[SegmentRef]], dict[str, int]]:
    """Return the window's batches: from the existing manifest, else by querying RingCX and writing it.

    RingCX is queried only when no manifest exists at ``key``. If another task creates the manifest while
    this one is querying, this one's upload is aborted and the other's batches are returned, so every
    task of the window maps the same batches.

    :return: ``(batches, counts)``; counts are ``rows``, ``segments``, ``with_recording``, ``invalid``,
        ``batches`` and ``reused`` (1 when an existing manifest was used).
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
    return batches, counts


def _reuse(client: Any, bucket: str, key: str) -> tuple[list[list[SegmentRef]], dict[str, int]]:
    batches = read_batches(client, bucket, key)
    summary = read_summary(client, bucket, key)
    counts = {name: int(summary.get(name, 0)) for name in ("rows", "segments", "with_recording", "invalid")}
    return batches, {**counts, "batches": len(batches), "reused": 1}
