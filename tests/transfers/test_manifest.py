"""Window manifest: JSON Lines written once (PutObject or streamed multipart), read back whole or by batch.

These tests feed parsed rows straight to the writer (no RingCX needed); the operator tests cover the path
from the simulator through the hook.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError
from airflow_provider_ringcx.models import SegmentRecord
from airflow_provider_ringcx.s3.writeonce import MIN_PART_SIZE, WriteOnceObject
from airflow_provider_ringcx.transfers.manifest import ManifestWriter
from airflow_provider_ringcx.transfers.manifest_format import (
    MANIFEST_FORMAT,
    ManifestError,
    ManifestIntegrityError,
    batches_from_summary,
)
from airflow_provider_ringcx.transfers.manifest_integrity import describe
from airflow_provider_ringcx.transfers.manifest_reader import (
    iter_manifest,
    iter_refs,
    load_batch,
    manifest_exists,
    read_rows,
    read_summary,
)
from tests.fixtures.s3 import batch_refs, list_keys

KEY = "ringcx/_manifests/sub_account=1/window=20260302T1400Z_20260302T1415Z.jsonl"


def row(i: int, *, recording: bool = True, pad: int = 0) -> dict[str, Any]:
    return {
        "dialogId": f"d-{i // 3}",
        "segmentId": f"s-{i}",
        "subAccountId": "1",
        "segmentStartTimeMs": "2026-03-02T14:00:00.000Z",
        "segmentEndTimeMs": "2026-03-02T14:05:00.000Z",
        "segmentDurationMs": 300000,
        "hasRecording": recording,
        "segmentEvents": [{"eventType": "REC_START", "eventTimeMs": "2026-03-02T14:00:01.000Z"}],
        "agentNotes": "n" * pad + "\u00e9\n\u2028",
    }


def write(
    client: Any, bucket: str, rows: list[dict], *, batch_size: int = 2, max_batches: int = 1000, **kw: Any
) -> tuple[bool, list]:
    target = WriteOnceObject(client, bucket, KEY, content_type="application/x-ndjson", **kw)
    writer = ManifestWriter(
        target, header={"window_start": "a"}, batch_size=batch_size, max_batches=max_batches
    )
    for item in rows:
        writer.add(SegmentRecord.parse(item))
    writer.add_invalid("{'dialogId': None}", RingCXBadPayloadError("row cannot be parsed"))
    return writer.finish()


def reused(client: Any, bucket: str) -> list:
    """The descriptors a task reusing the manifest would plan (read back whole, once)."""
    summary, identity, digests = describe(client, bucket, KEY)
    return batches_from_summary(KEY, summary, identity=identity, digests=digests)


def test_small_manifest_round_trip(s3_client: Any, bucket: str) -> None:
    rows = [row(i, recording=i % 4 != 3) for i in range(10)]
    written, batches = write(s3_client, bucket, rows)
    assert written
    assert manifest_exists(s3_client, bucket, KEY)
    assert [batch["count"] for batch in batches] == [2, 2, 2, 2]  # rows 3 and 7 have no recording
    assert reused(s3_client, bucket) == batches  # the digests streamed = the digests of the bytes read back
    loaded = batch_refs(s3_client, bucket, batches)
    assert [[ref["segment_id"] for ref in refs] for refs in loaded] == [
        ["s-0", "s-1"], ["s-2", "s-4"], ["s-5", "s-6"], ["s-8", "s-9"],
    ]  # fmt: skip
    assert [ref for refs in loaded for ref in refs] == list(iter_refs(s3_client, bucket, KEY))
    assert batches[1]["first"] == ["d-0", "s-2"]
    assert batches[1]["last"] == ["d-1", "s-4"]
    assert batches[0]["ends"] == ["2026-03-02T14:05:00Z", "2026-03-02T14:05:00Z"]
    assert all(batch["manifest_key"] == KEY for batch in batches)
    lines = list(iter_manifest(s3_client, bucket, KEY))
    assert lines[0]["kind"] == "header"
    assert lines[0]["format"] == MANIFEST_FORMAT
    assert [line["kind"] for line in lines[1:-1]] == ["segment"] * 10 + ["invalid"]
    assert lines[1]["row"] == rows[0]  # the vendor row exactly, unicode and line separators included
    assert lines[-2] == {"kind": "invalid", "reason": "row cannot be parsed", "raw": "{'dialogId': None}"}
    summary = read_summary(s3_client, bucket, KEY)
    assert summary["rows"] == 11
    assert summary["with_recording"] == 8
    assert summary["invalid"] == 1
    head = s3_client.head_object(Bucket=bucket, Key=KEY)
    assert head["ContentType"] == "application/x-ndjson"


def test_rows_of_a_batch_come_from_its_byte_range(s3_client: Any, bucket: str) -> None:
    rows = [row(i) for i in range(9)]
    _, batches = write(s3_client, bucket, rows, batch_size=3)
    summary = read_summary(s3_client, bucket, KEY)
    start, end = summary["batches"][1]["range"]
    ranged = list(iter_manifest(s3_client, bucket, KEY, byte_range=(start, end)))
    assert [line["segment_id"] for line in ranged] == ["s-3", "s-4", "s-5"]
    assert batches[1]["range"] == [start, end]
    gets: list[dict] = []

    def spy(params: dict, **_: Any) -> None:
        gets.append(params)

    s3_client.meta.events.register("before-parameter-build.s3.GetObject", spy)
    try:
        refs, found = load_batch(s3_client, bucket, batches[1])
    finally:
        s3_client.meta.events.unregister("before-parameter-build.s3.GetObject", spy)
    assert [get.get("Range") for get in gets] == [f"bytes={start}-{end - 1}"]  # one ranged GET, no more
    assert [ref["segment_id"] for ref in refs] == ["s-3", "s-4", "s-5"]
    assert found == {(r["dialogId"], r["segmentId"]): r for r in rows[3:6]}
    # explicit ref lists (late arrivals): the batch that starts with the first ref, else a full scan
    assert read_rows(s3_client, bucket, KEY, refs) == found
    assert read_rows(s3_client, bucket, KEY, [{"dialog_id": "d-2", "segment_id": "s-7"}]) == {
        ("d-2", "s-7"): rows[7]
    }
    assert read_rows(s3_client, bucket, KEY, [{"dialog_id": "nope", "segment_id": "x"}]) == {}


def test_manifest_is_written_once(s3_client: Any, bucket: str) -> None:
    write(s3_client, bucket, [row(1)])
    before = s3_client.get_object(Bucket=bucket, Key=KEY)["Body"].read()
    written, _ = write(s3_client, bucket, [row(2), row(3)])
    assert not written
    assert s3_client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == before


def test_large_manifest_streams_as_multipart_with_bounded_memory(s3_client: Any, bucket: str) -> None:
    """~16 MB of rows go out in 5 MiB parts: the writer holds at most one part, completion is write-once.

    (The moto server runs in this process, so process-wide memory would count the stored parts too: the
    writer's own buffer is what is measured.)
    """
    rows = (row(i, pad=1500) for i in range(10000))
    target = WriteOnceObject(
        s3_client, bucket, KEY, content_type="application/x-ndjson", part_size=MIN_PART_SIZE
    )
    writer = ManifestWriter(target, header={}, batch_size=100)
    peak = 0
    for item in rows:
        writer.add(SegmentRecord.parse(item))
        peak = max(peak, len(target._buffer))
    written, batches = writer.finish()
    assert written
    assert target.bytes_written > 3 * MIN_PART_SIZE
    assert peak < MIN_PART_SIZE
    assert len(batches) == 100
    assert sum(b["count"] for b in batches) == 10000
    assert all("refs" not in batch for batch in writer._batches)  # counters and offsets only, no refs
    assert not s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert s3_client.head_object(Bucket=bucket, Key=KEY)["ContentLength"] == target.bytes_written
    assert reused(s3_client, bucket) == batches  # the digests streamed = the digests of the bytes read back
    assert [ref["segment_id"] for ref in load_batch(s3_client, bucket, batches[57])[0]] == [
        f"s-{i}" for i in range(5700, 5800)
    ]
    # the second writer of a large manifest loses at completion and leaves no upload behind
    again = WriteOnceObject(
        s3_client, bucket, KEY, content_type="application/x-ndjson", part_size=MIN_PART_SIZE
    )
    again.write(b"x" * (MIN_PART_SIZE + 10))
    assert again.commit() is False
    assert not s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")


class BreakingHook:
    """Stand-in for the hook's metadata iterator that breaks after ~10 MB of rows: the simulator would need
    thousands of rows to reach the multipart path, and the fault itself is covered in the operator tests."""

    def iter_interaction_metadata(self, start: Any, end: Any, *, on_invalid: Any = None) -> Any:
        for i in range(7000):
            yield SegmentRecord.parse(row(i, pad=1500))
        raise RingCXBadPayloadError("metadata stream broke")


def test_failure_mid_stream_leaves_nothing(s3_client: Any, bucket: str) -> None:
    from datetime import datetime, timezone

    from airflow_provider_ringcx.s3 import writeonce
    from airflow_provider_ringcx.transfers.manifest import fetch_window_manifest

    now = datetime.now(timezone.utc)
    parts: list[int] = []

    def count(**_: Any) -> None:
        parts.append(1)

    s3_client.meta.events.register("before-call.s3.UploadPart", count)
    with pytest.raises(RingCXBadPayloadError, match="broke"):
        fetch_window_manifest(
            hook=BreakingHook(), client=s3_client, bucket=bucket, key=KEY, start=now, end=now,
            sub_account_id="1", batch_size=10,
        )  # fmt: skip
    s3_client.meta.events.unregister("before-call.s3.UploadPart", count)  # the client is session-wide
    assert parts  # parts had gone up before the failure (default part size is 8 MiB)
    assert writeonce.MIN_PART_SIZE <= 8 * 1024 * 1024
    assert list_keys(s3_client, bucket) == []
    assert not s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_batches_are_merged_to_stay_under_the_map_cap(s3_client: Any, bucket: str) -> None:
    rows = [row(i) for i in range(2500)]
    _, batches = write(s3_client, bucket, rows, batch_size=1, max_batches=1000)
    assert len(batches) == 834  # ceil(2500 / 3)
    flat = [ref["segment_id"] for refs in batch_refs(s3_client, bucket, batches) for ref in refs]
    assert flat == [f"s-{i}" for i in range(2500)]
    summary = read_summary(s3_client, bucket, KEY)
    assert len(summary["batches"]) == 834
    assert summary["batches"][500]["count"] == 3
    refs, found = load_batch(s3_client, bucket, batches[500])
    assert found.keys() == {(ref["dialog_id"], ref["segment_id"]) for ref in refs}


def test_an_object_without_summary_is_not_a_manifest(s3_client: Any, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=json.dumps({"kind": "header"}).encode() + b"\n")
    with pytest.raises(ManifestError, match="does not end with a summary"):
        read_summary(s3_client, bucket, KEY)


def test_a_batch_that_does_not_match_its_manifest_is_refused(s3_client: Any, bucket: str) -> None:
    """A descriptor planned from another manifest (or a manifest replaced since) fails, naming the batch
    and what to do, instead of archiving the wrong segments."""
    _, batches = write(s3_client, bucket, [row(i) for i in range(9)], batch_size=3)
    shifted = {**batches[1], "range": batches[2]["range"]}
    with pytest.raises(ManifestIntegrityError, match=r"batch 1 of manifest .*hash to .*clear the window's"):
        load_batch(s3_client, bucket, shifted)
    same_bytes = {**batches[1], "range": batches[2]["range"], "sha256": batches[2]["sha256"]}
    with pytest.raises(ManifestError, match=r"batch 1 does not match manifest .*clear the window's"):
        load_batch(s3_client, bucket, same_bytes)
    with pytest.raises(ManifestError, match="hold 3 recordings, the batch lists 4"):
        load_batch(s3_client, bucket, {**batches[1], "count": 4})


def test_summary_is_found_when_it_is_larger_than_the_first_tail_read(s3_client: Any, bucket: str) -> None:
    rows = [row(i) for i in range(6000)]
    _, batches = write(s3_client, bucket, rows, batch_size=6)  # 1000 batches: a summary of ~150 KB+
    summary = read_summary(s3_client, bucket, KEY)
    assert len(summary["batches"]) == 1000
    assert sum(b["count"] for b in batches) == 6000


def test_batch_end_span_compares_instants_not_text(s3_client: Any, bucket: str) -> None:
    """``...:00.500Z`` sorts before ``...:00Z`` as text; the span must still be earliest..latest."""
    rows = [row(0), row(1), row(2)]
    rows[0]["segmentEndTimeMs"] = "2026-03-02T14:05:00.500Z"
    rows[1]["segmentEndTimeMs"] = "2026-03-02T14:05:00.000Z"
    rows[2]["segmentEndTimeMs"] = "2026-03-02T14:04:59.900Z"
    _, batches = write(s3_client, bucket, rows, batch_size=3)
    assert batches[0]["ends"] == ["2026-03-02T14:04:59.900Z", "2026-03-02T14:05:00.500Z"]
