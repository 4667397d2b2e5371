"""An independent invariant checker for the archive: it uses only S3 (a plain boto3 client) and the
simulator's ground truth, never the code under test.

The WAV key of a segment is rendered here from the layout in docs/compliance.md (and the design brief), not by
``airflow_provider_ringcx.keys``: ``{prefix}/sub_account={sub}/year=YYYY/month=MM/day=DD/hour=HH/
{dialog}/{segment}.wav`` by the segment's start (UTC), ids percent-encoded byte-wise outside
``[A-Za-z0-9._-]``, ``.``/``..`` encoded whole, ids over 180 encoded characters cut and suffixed with ``~`` +
32 hex digits of their SHA-256. If the product's key scheme drifts from the documentation, these checks fail.

Invariants (:func:`check_archive`):

1. every expected segment (ground truth: has a recording, not still processing) is archived at its key with
   the ground-truth SHA-256 and size, or is listed as not archived, with a reason, in the window report (or,
   without a report, in the download summaries);
2. no object at a final key is partial or corrupt: every ``.wav`` is byte-identical to the ground truth of
   the segment its key belongs to and parses as a WAV (stdlib ``wave``); no multipart upload is left open;
3. no duplicate objects: one version per key (``list_object_versions``), no WAV at a key that belongs to no
   ground-truth segment, and no orphan sidecar (every sidecar has its WAV and vice versa, and agrees on
   sha256 and size);
4. the report's counts add up, and agree with what S3 holds;
5. the archive index (``{prefix}/_index/sub_account={sub}/date=YYYY-MM-DD/segments.jsonl.gz``, gzip JSON
   Lines, read here with ``gzip`` and ``json``) claims nothing S3 does not prove: a row that says
   ``archived`` is a verified WAV of invariant 2 with the ground truth's SHA-256 and size; every row is of a
   ground-truth segment, once, in the partition of its end's UTC date; with a report, every expected
   segment has a row whose outcome is the report's verdict.

Transcripts (issue 17): every ``{segment}.transcript.json`` sits beside a verified-or-present WAV of a
ground-truth segment whose transcript the simulator serves (``ok``, or ``late`` once ready), parses as a
JSON object naming that segment's ids with a ``transcript`` array, and its bytes hash to its ``sha256``
metadata; it has one version like every key (invariant 3), and it is never counted as a sidecar. AI
summaries likewise: every ``{segment}.summary.{agent|auto}.json`` sits beside such a WAV, the simulator
serves that kind for it (``ok`` or ``late``), its bytes hash to its ``sha256`` metadata, and it is the JSON
object the simulator serves (the segment's id and the kind).

"A re-run downloads 0 bytes" needs the simulator's byte counter around a re-run: :func:`downloaded_bytes`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import wave
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tests.reliability.transcript_invariants import check_summaries, check_transcripts, is_summary_key

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_MAX_ID = 180


def encode_id(value: str) -> str:
    """The documented key-segment form of an id (independent re-implementation)."""
    if value in (".", ".."):
        return "%2E" * len(value)
    out = "".join(
        ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in value
    )
    for tail in (".transcript", ".summary.agent", ".summary.auto"):  # documented: no sidecar is a document
        if out.endswith(tail):
            out = out[: -len(tail)] + "%2E" + tail[1:]
            break
    if len(out) <= _MAX_ID:
        return out
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    head = out[: _MAX_ID - 33]
    cut = head.rfind("%")
    if cut >= len(head) - 2:
        head = head[:cut]
    return f"{head}~{digest}"


def instant(value: Any) -> datetime:
    """A ground-truth time (epoch ms or ISO-8601) as an aware UTC datetime."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)


def wav_key(prefix: str, segment: Mapping[str, Any]) -> str:
    """Where the documented layout puts a ground-truth segment's WAV."""
    when = instant(segment["segmentStartTimeMs"])
    parts = [
        prefix.strip("/"),
        f"sub_account={encode_id(str(segment['subAccountId']))}",
        f"year={when:%Y}",
        f"month={when:%m}",
        f"day={when:%d}",
        f"hour={when:%H}",
        encode_id(str(segment["dialogId"])),
        encode_id(str(segment["segmentId"])) + ".wav",
    ]
    return "/".join(part for part in parts if part)


def expected_segments(truth: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Ground-truth segments the archive must account for: recorded and no longer processing."""
    return [dict(s) for s in truth if s.get("hasRecording") and not s.get("processing")]


def downloaded_bytes(stats: Mapping[str, Any]) -> int:
    """Recording body bytes the simulator has sent (from ``GET /_sim/stats``)."""
    return int(stats.get("bytes_sent", {}).get("download", 0))


@dataclass
class ArchiveCheck:
    """What the checker found; :attr:`problems` is empty when every invariant holds."""

    expected: int = 0
    archived: int = 0
    reported: int = 0
    wav_objects: int = 0
    sidecars: int = 0
    duplicates: int = 0
    corrupt: int = 0
    orphans: int = 0
    transcripts: int = 0
    summaries: int = 0
    open_uploads: int = 0
    indexed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.expected - self.archived - self.reported

    def assert_ok(self) -> None:
        assert not self.problems, "archive invariants violated:\n  " + "\n  ".join(self.problems[:40])

    def figures(self) -> dict[str, int]:
        return {
            "expected": self.expected,
            "archived": self.archived,
            "reported": self.reported,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "corrupt": self.corrupt,
            "orphan_sidecars": self.orphans,
            "transcripts": self.transcripts,
            "summaries": self.summaries,
            "open_multipart_uploads": self.open_uploads,
            "index_rows": self.indexed,
        }


def _all_versions(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            counts[item["Key"]] = counts.get(item["Key"], 0) + 1
    return counts


def _read(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _wav_ok(body: bytes) -> str | None:
    try:
        with wave.open(io.BytesIO(body)) as wav:
            frames = wav.getnframes()
            data = wav.readframes(frames)
            if len(data) != frames * wav.getnchannels() * wav.getsampwidth():
                return "WAV data shorter than its header says"
    except (wave.Error, EOFError) as err:
        return f"not a valid WAV ({err})"
    return None


def reported_items(report: Mapping[str, Any] | None, summaries: Sequence[Mapping[str, Any]] = ()) -> dict:
    """Not-archived segments, ``(dialog_id, segment_id) -> item``, from a report or download summaries."""
    items: dict[tuple[str, str], Mapping[str, Any]] = {}
    sources: list[Any] = []
    if report is not None:
        sources.append(report.get("not_archived") or [])
        sources.append((report.get("rescan") or {}).get("late_segments") or [])
    else:
        sources.extend(summary.get("not_archived") or [] for summary in summaries)
    for source in sources:
        for item in source:
            if item.get("status", item.get("outcome")) != "archived":
                items[(str(item["dialog_id"]), str(item["segment_id"]))] = item
    return items


def check_archive(
    s3: Any,
    bucket: str,
    prefix: str,
    truth: Iterable[Mapping[str, Any]],
    *,
    report: Mapping[str, Any] | None = None,
    summaries: Sequence[Mapping[str, Any]] = (),
    complete_windows: bool = True,
    allow_open_uploads: bool = False,
    allow_missing_sidecars: bool = False,
) -> ArchiveCheck:
    """Check every invariant of the archive under ``prefix`` against the ground truth.

    :param truth: ground truth of every window that was archived (all of them: extra WAVs are duplicates).
    :param report: the window report (for invariant 1's "listed with a reason" and invariant 4); when
        ``None``, the download summaries are the source of reasons.
    :param complete_windows: every window in ``truth`` was fully run (else only objects present are checked).
    :param allow_open_uploads: count open multipart uploads without failing (right after a kill or an
        outage, before the run that lands the recording aborts the upload left open).
    :param allow_missing_sidecars: a verified WAV without its sidecar yet is fine (right after a SIGKILL
        between the object and its sidecar: the sidecar is written last, by the retry).
    """
    result = ArchiveCheck()
    problems = result.problems
    expected = expected_segments(truth)
    by_key = {wav_key(prefix, s): s for s in expected}
    everything = {wav_key(prefix, s): s for s in truth}
    result.expected = len(expected)
    data_prefix = f"{prefix.strip('/')}/sub_account="
    versions = _all_versions(s3, bucket, data_prefix)
    wavs = {k for k in versions if k.endswith(".wav")}
    transcripts = {k for k in versions if k.endswith(".transcript.json")}
    ai_summaries = {k for k in versions if is_summary_key(k)}  # not `summaries`: the download summaries
    sidecars = {k for k in versions if k.endswith(".json")} - transcripts - ai_summaries
    result.wav_objects, result.sidecars = len(wavs), len(sidecars)

    # 3. one version per key (recordings, sidecars and the write-once manifests)
    for key, count in {**versions, **_all_versions(s3, bucket, f"{prefix.strip('/')}/_manifests/")}.items():
        if count != 1:
            result.duplicates += 1
            problems.append(f"{key}: {count} versions (duplicate writes)")
    for key in sorted(wavs - everything.keys()):
        result.duplicates += 1
        problems.append(f"{key}: a WAV at a key that belongs to no ground-truth segment")
    for key in sorted(sidecars):
        if key[: -len(".json")] + ".wav" not in wavs:
            result.orphans += 1
            problems.append(f"{key}: orphan sidecar (no WAV next to it)")
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix.strip("/")).get("Uploads", [])
    result.open_uploads = len(uploads)
    for upload in [] if allow_open_uploads else uploads:
        problems.append(f"{upload['Key']}: multipart upload left open (never completed nor aborted)")

    # 2. every WAV present is complete, byte-identical to the ground truth, parses, and has a true sidecar
    archived: set[str] = set()
    for key in sorted(wavs & everything.keys()):
        segment = everything[key]
        body = _read(s3, bucket, key)
        digest = hashlib.sha256(body).hexdigest()
        if digest != segment.get("sha256") or len(body) != segment.get("size"):
            result.corrupt += 1
            problems.append(
                f"{key}: {len(body)} bytes sha256 {digest[:12]}, ground truth {segment.get('size')} bytes "
                f"{str(segment.get('sha256'))[:12]} (partial or corrupt object at a final key)"
            )
            continue
        bad = _wav_ok(body)
        if bad:
            result.corrupt += 1
            problems.append(f"{key}: {bad}")
            continue
        side = key[: -len(".wav")] + ".json"
        if side not in sidecars:
            if not allow_missing_sidecars:
                problems.append(f"{key}: archived without its sidecar")
            continue
        try:
            sidecar = json.loads(_read(s3, bucket, side))
        except ValueError:
            problems.append(f"{side}: sidecar is not JSON")
            continue
        if sidecar.get("sha256") != digest or sidecar.get("size") != len(body):
            problems.append(f"{side}: sidecar sha256/size disagree with the object")
            continue
        if (sidecar.get("dialog_id"), sidecar.get("segment_id")) != (
            segment["dialogId"],
            segment["segmentId"],
        ):
            problems.append(f"{side}: sidecar names another segment")
            continue
        archived.add(key)
    result.archived = len(archived & by_key.keys())

    # 1. every expected segment archived, or listed with a reason
    listed = reported_items(report, summaries)
    for key, segment in by_key.items():
        if key in archived:
            continue
        item = listed.get((segment["dialogId"], segment["segmentId"]))
        if item is not None and str(item.get("reason") or "").strip():
            result.reported += 1
        elif complete_windows:
            problems.append(
                f"LOST {segment['dialogId']}/{segment['segmentId']}: not archived at {key} and not "
                "listed with a reason"
            )
    result.transcripts = check_transcripts(s3, bucket, transcripts, wavs, everything, problems)
    result.summaries = check_summaries(s3, bucket, ai_summaries, wavs, everything, problems)
    # 4. the report's counts add up and agree with S3
    if report is not None:
        _check_report(report, result, by_key, archived, problems)
    # 5. the index claims nothing S3 does not prove
    _check_index(s3, bucket, prefix, everything, by_key, archived, report, result)
    return result


def _check_index(
    s3: Any,
    bucket: str,
    prefix: str,
    everything: Mapping[str, Mapping[str, Any]],
    by_key: Mapping[str, Mapping[str, Any]],
    archived: set[str],
    report: Mapping[str, Any] | None,
    result: ArchiveCheck,
) -> None:
    problems = result.problems
    key_of = {(s["dialogId"], s["segmentId"]): key for key, s in everything.items()}
    rows: dict[tuple[str, str], Mapping[str, Any]] = {}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix.strip('/')}/_index/")
    for item in [item for page in pages for item in page.get("Contents", [])]:
        day = item["Key"].split("/date=")[-1].split("/")[0]
        for line in gzip.decompress(_read(s3, bucket, item["Key"])).decode("utf-8").split("\n"):
            if not line:
                continue
            row = json.loads(line)
            ident = (row["dialog_id"], row["segment_id"])
            if ident in rows:
                problems.append(f"index: {ident} has two rows")
            rows[ident] = row
            if ident not in key_of:
                problems.append(f"index: a row for {ident}, which the simulator never served")
                continue
            if str(row.get("end_time") or row.get("start_time"))[:10] != day:
                problems.append(f"index: {ident} is in date={day}, its end is {row.get('end_time')}")
            segment = everything[key_of[ident]]
            if row["outcome"] == "archived" and (
                key_of[ident] not in archived
                or (row["sha256"], row["size_bytes"]) != (segment.get("sha256"), segment.get("size"))
            ):
                problems.append(f"index: {ident} says archived ({row['sha256']}), S3 does not prove it")
    result.indexed = len(rows)
    if report is None:
        return
    verdicts = {(i["dialog_id"], i["segment_id"]): i["status"] for i in report.get("not_archived") or []}
    for key, segment in by_key.items():
        ident = (segment["dialogId"], segment["segmentId"])
        want = verdicts.get(ident, "archived")
        if ident not in rows or rows[ident]["outcome"] != want:
            got = rows[ident]["outcome"] if ident in rows else "no row"
            problems.append(f"index: {ident} is {got}, the report says {want} ({key})")


def _check_report(
    report: Mapping[str, Any],
    result: ArchiveCheck,
    by_key: Mapping[str, Any],
    archived: set[str],
    problems: list,
) -> None:
    counts = report["counts"]
    by_status = counts.get("by_status", {})
    if counts["expected"] != counts["archived"] + counts["not_archived"]:
        problems.append(f"report counts: expected {counts['expected']} != archived + not_archived ({counts})")
    if sum(by_status.values()) != counts["expected"]:
        problems.append(f"report counts: by_status {by_status} does not sum to expected {counts['expected']}")
    if by_status.get("archived", 0) != counts["archived"]:
        problems.append(f"report counts: by_status archived {by_status} != archived {counts['archived']}")
    if len(report.get("not_archived") or []) != counts["not_archived"]:
        problems.append("report counts: not_archived list length != not_archived count")
    if counts["expected"] != len(by_key):
        problems.append(f"report expects {counts['expected']} segments, ground truth has {len(by_key)}")
    if counts["archived"] != len(archived & by_key.keys()):
        problems.append(f"report says {counts['archived']} archived, S3 holds {len(archived)} verified")
    if report.get("complete") and counts["not_archived"]:
        problems.append("report says complete but lists not-archived segments")
    for item in report.get("not_archived") or []:
        if not str(item.get("reason") or "").strip():
            problems.append(f"report lists {item.get('dialog_id')}/{item.get('segment_id')} without a reason")
