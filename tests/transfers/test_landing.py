"""Landing recordings: simulator (RingCX) and moto (S3) over HTTP, through the real hook and S3Hook client."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

import jsonschema

from airflow_provider_ringcx.models import SegmentRecord
from airflow_provider_ringcx.pauses import compute_pause_evidence
from airflow_provider_ringcx.transfers.landing import LandingConfig, segment_keys
from airflow_provider_ringcx.transfers.sidecar import SIDECAR_SCHEMA
from tests.fixtures.landing import BIG, WINDOW, MiB, check_archived, refs_of, truth_by_key
from tests.fixtures.s3 import list_keys


def downloads(simulator: Any) -> int:
    return sum(simulator.control.stats()["requests"].get("download", {}).values())


def test_batch_lands_verified_objects_and_sidecars(
    simulator: Any, records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    assert len(records) > 10
    archiver = make_archiver(bucket, rows={r.key: r.raw for r in records}, manifest_key="m.jsonl")
    outcomes = archiver.run(refs_of(records))
    assert {o.outcome for o in outcomes} == {"archived"}
    truth = truth_by_key(simulator)
    config = archiver.lander.config
    for record in records:
        sidecar = check_archived(s3_client, bucket, record.to_ref(), truth[record.key], config)
        assert sidecar["metadata"] == dict(record.raw)  # full vendor row, REC_START/REC_STOP included
        assert sidecar["metadata"]["segmentEvents"][0]["eventType"] == "REC_START"
        assert sidecar["pauses"] == compute_pause_evidence(record.raw["segmentEvents"], has_recording=True)
        assert sidecar["pauses"]["recorded"]  # the simulator's rows are well formed
        assert "transcript" not in sidecar  # transcripts are off by default
        assert sidecar["source"]["path"] == truth[record.key]["path"]
        assert sidecar["s3"]["manifest_key"] == "m.jsonl"
        assert sidecar["s3"]["upload"] == "put"
        key, _ = segment_keys(record.to_ref(), config)
        head = s3_client.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"]["sha256"] == truth[record.key]["sha256"]  # sha256 as object metadata too
        assert head["ContentType"] == "audio/wav"
    assert len(list_keys(s3_client, bucket)) == 2 * len(records)


def test_rerun_downloads_nothing(
    simulator: Any, records: list[SegmentRecord], make_archiver: Callable, bucket: str
) -> None:
    refs = refs_of(records)
    make_archiver(bucket).run(refs)
    before = downloads(simulator)
    again = make_archiver(bucket).run(refs)
    assert {o.outcome for o in again} == {"already_archived"}
    assert sum(o.downloaded for o in again) == 0
    assert downloads(simulator) == before  # not one GET of a recording


def test_object_without_sidecar_is_completed_without_a_second_version(
    simulator: Any, records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, locked_bucket: str
) -> None:
    """A crash between object and sidecar: the re-run re-downloads, sees the same bytes, adds the sidecar."""
    refs = refs_of(records[:3])
    archiver = make_archiver(locked_bucket)
    archiver.run(refs)
    key, side = segment_keys(refs[0], archiver.lander.config)
    s3_client.delete_object(Bucket=locked_bucket, Key=side)  # (a delete marker: the sidecar is "gone")
    outcomes = make_archiver(locked_bucket).run(refs)
    assert [o.outcome for o in outcomes] == ["archived", "already_archived", "already_archived"]
    versions = s3_client.list_object_versions(Bucket=locked_bucket, Prefix=key).get("Versions", [])
    assert len([v for v in versions if v["Key"] == key]) == 1


def test_corrupt_object_is_never_overwritten(
    simulator: Any, records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    """Bytes at the key that no sidecar verifies and that differ from the recording are evidence (and may be
    locked): the segment fails without retries, says what to do, and the object is left as it was."""
    refs = refs_of(records[:1])
    archiver = make_archiver(bucket)
    key, side = segment_keys(refs[0], archiver.lander.config)
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"RIFF-corrupt", Metadata={"sha256": "0" * 64})
    s3_client.put_object(Bucket=bucket, Key=side, Body=json.dumps({"sha256": "1" * 64, "size": 12}).encode())
    [outcome] = archiver.run(refs)
    assert (outcome.outcome, outcome.retryable, outcome.attempts) == ("failed", False, 1)
    assert "nothing overwritten" in outcome.reason
    assert "delete the object" in outcome.reason
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"RIFF-corrupt"


def test_concurrent_runs_of_one_batch_leave_exactly_one_object(
    simulator: Any, records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, locked_bucket: str
) -> None:
    """Two runs at once: If-None-Match lets one PutObject win per key, the other verifies it: no duplicate."""
    refs = refs_of(records)
    results: list[list] = []
    runs = [make_archiver(locked_bucket) for _ in range(2)]
    threads = [threading.Thread(target=lambda a=a: results.append(a.run(refs))) for a in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = [o for result in results for o in result]
    assert {o.outcome for o in outcomes} <= {"archived", "already_archived"}
    truth = truth_by_key(simulator)
    versions = s3_client.list_object_versions(Bucket=locked_bucket).get("Versions", [])
    for ref in refs:
        key, _ = segment_keys(ref, runs[0].lander.config)
        assert len([v for v in versions if v["Key"] == key]) == 1, key
        check_archived(
            s3_client, locked_bucket, ref, truth[(ref["dialog_id"], ref["segment_id"])], runs[0].lander.config
        )


def test_multipart_upload_streams_and_tags_the_sha256(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    simulator.control.add_segments([BIG])
    record = next(r for r in hook.iter_interaction_metadata(*WINDOW) if r.dialog_id == "d-big")
    archiver = make_archiver(bucket, single_part_threshold=1 * MiB, multipart_chunksize=5 * MiB)
    calls: list[str] = []
    s3 = archiver.lander.client
    s3.meta.events.register("before-call.s3.UploadPart", lambda **kw: calls.append("part"))
    s3.meta.events.register("before-call.s3.CompleteMultipartUpload", lambda params, **kw: calls.append(
        f"complete If-None-Match={params['headers'].get('If-None-Match')}"))  # fmt: skip
    [outcome] = archiver.run([record.to_ref()])
    assert outcome.outcome == "archived", outcome.reason
    assert calls == ["part", "part", "complete If-None-Match=*"]
    truth = truth_by_key(simulator)[("d-big", "s-big")]
    sidecar = check_archived(s3_client, bucket, record.to_ref(), truth, archiver.lander.config)
    assert sidecar["s3"]["upload"] == "multipart"
    key, _ = segment_keys(record.to_ref(), archiver.lander.config)
    tags = {t["Key"]: t["Value"] for t in s3_client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
    assert (
        tags["sha256"] == truth["sha256"]
    )  # a multipart checksum is of parts: the whole-object one is a tag


def _no_trace(s3_client: Any, bucket: str) -> None:
    assert list_keys(s3_client, bucket) == []
    assert not s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_reset_or_truncation_mid_body_leaves_no_object(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    """Both upload paths, both faults: the reader raises at EOF, the upload is aborted, nothing appears."""
    simulator.control.add_segments([BIG])
    big = next(r for r in hook.iter_interaction_metadata(*WINDOW) if r.dialog_id == "d-big").to_ref()
    small = next(r for r in hook.iter_interaction_metadata(*WINDOW) if r.dialog_id != "d-big").to_ref()
    for kind in ("reset", "truncate"):
        for ref, after in ((small, 1000), (big, 6 * MiB)):  # the big one fails after one 5 MiB part went up
            simulator.control.set_faults(
                [{"route": "download", "kind": kind, "after_bytes": after, "match": ref["segment_id"]}]
            )
            archiver = make_archiver(
                bucket, attempts=2, single_part_threshold=1 * MiB, multipart_chunksize=5 * MiB
            )
            [outcome] = archiver.run([ref])
            assert outcome.outcome == "failed", (kind, outcome)
            assert outcome.retryable
            assert outcome.attempts == 2
            assert "Incomplete" in outcome.reason or "connection lost" in outcome.reason
            _no_trace(s3_client, bucket)
    simulator.control.clear_faults()
    assert {o.outcome for o in make_archiver(bucket, single_part_threshold=1 * MiB).run([small, big])} == {
        "archived"
    }


def test_transient_failure_is_retried_in_task(
    simulator: Any, hook: Any, make_archiver: Callable, bucket: str
) -> None:
    """A reset mid-body (after the hook handed out the stream) is retried by the operator, not the hook."""
    simulator.control.add_segments([BIG])
    ref = next(r for r in hook.iter_interaction_metadata(*WINDOW) if r.dialog_id == "d-big").to_ref()
    simulator.control.set_faults(
        [{"route": "download", "kind": "reset", "after_bytes": 2 * MiB, "times": 1, "match": "s-big"}]
    )
    [outcome] = make_archiver(bucket, attempts=3).run([ref])
    assert outcome.outcome == "archived"
    assert outcome.attempts == 2


def test_forbidden_missing_and_failed_outcomes(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    simulator.control.add_segments(
        [
            {
                "dialogId": "d-403",
                "segmentId": "s-403",
                "segmentEndTimeMs": "2026-03-02T14:01:00Z",
                "restricted": True,
            },
            {"dialogId": "d-500", "segmentId": "s-500", "segmentEndTimeMs": "2026-03-02T14:01:00Z"},
            {"dialogId": "d-ok", "segmentId": "s-ok", "segmentEndTimeMs": "2026-03-02T14:01:00Z"},
        ]
    )
    simulator.control.set_faults([{"route": "download", "kind": "status", "status": 500, "match": "s-500"}])
    listed = {r.dialog_id: r.to_ref() for r in hook.iter_interaction_metadata(*WINDOW)}
    ghost = {**listed["d-ok"], "dialog_id": "d-404", "segment_id": "s-404"}  # unknown to RingCX -> 404
    batch = [listed["d-403"], ghost, listed["d-500"], listed["d-ok"]]
    outcomes = {o.dialog_id: o for o in make_archiver(bucket, attempts=2).run(batch)}
    assert outcomes["d-403"].outcome == "forbidden"
    assert not outcomes["d-403"].retryable
    assert outcomes["d-404"].outcome == "missing"
    assert outcomes["d-500"].outcome == "failed"
    assert outcomes["d-500"].retryable
    assert outcomes["d-ok"].outcome == "archived"
    assert "403" in outcomes["d-403"].reason or "Forbidden" in outcomes["d-403"].reason
    keys = list_keys(s3_client, bucket)
    assert len(keys) == 2
    assert all("/d-ok/" in key for key in keys)


def test_hostile_ids_stay_inside_the_prefix_end_to_end(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    hostile = [
        "a/b",
        "..",
        ".",
        "%2F",
        "a%2Fb",
        "ctl\x01\x1f",
        "x" * 1000,
        "\u5bfe\u8a71 \u00e9",
        "~",
        "e\u0301",
    ]
    specs = [
        {"dialogId": f"dlg/{value}", "segmentId": value, "segmentEndTimeMs": "2026-03-02T14:03:00Z",
         "segmentDurationMs": 500}
        for value in hostile
    ]  # fmt: skip
    simulator.control.add_segments(specs)
    wanted = {(s["dialogId"], s["segmentId"]) for s in specs}
    records = [r for r in hook.iter_interaction_metadata(*WINDOW) if r.key in wanted]
    assert len(records) == len(hostile)
    archiver = make_archiver(bucket, prefix="vault/ringcx", rows={r.key: r.raw for r in records})
    outcomes = archiver.run(refs_of(records))
    assert {o.outcome for o in outcomes} == {"archived"}, [o.reason for o in outcomes]
    keys = list_keys(s3_client, bucket)
    assert len(keys) == 2 * len(hostile)  # no two segments share a key
    for key in keys:
        parts = key.split("/")
        assert parts[:3] == ["vault", "ringcx", "sub_account=99999999"]
        assert len(parts) == 9
        assert not {"", ".", ".."} & set(parts)
    truth = truth_by_key(simulator)
    for record in records:
        sidecar = check_archived(
            s3_client, bucket, record.to_ref(), truth[record.key], archiver.lander.config
        )
        assert (sidecar["dialog_id"], sidecar["segment_id"]) == record.key  # raw ids kept in the sidecar


def test_sidecar_schema_rejects_incomplete_documents() -> None:
    import pytest

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"format": "ringcx-recording-sidecar/1", "sha256": "x"}, SIDECAR_SCHEMA)


def test_stream_digest_matches_what_was_sent(
    simulator: Any, records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    archiver = make_archiver(bucket)
    [outcome] = archiver.run([records[0].to_ref()])
    key, _ = segment_keys(records[0].to_ref(), archiver.lander.config)
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert outcome.size == len(body) == outcome.downloaded
    assert hashlib.sha256(body).hexdigest() == truth_by_key(simulator)[records[0].key]["sha256"]
    assert isinstance(archiver.lander.config, LandingConfig)


def test_unknown_length_streams_through_upload_fileobj(
    make_simulator: Any, monkeypatch: Any, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    """Without Content-Length (chunked), the stream goes through upload_fileobj; the sha256 becomes a tag."""
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook
    from airflow_provider_ringcx.transfers.batch import BatchArchiver
    from airflow_provider_ringcx.transfers.landing import SegmentLander
    from tests.fixtures.landing import no_sleep
    from tests.fixtures.simulator import ringcx_connection_json

    simulator = make_simulator(download_length="chunked")
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(simulator))
    hook = RingCXHook(sleep=no_sleep)
    records = [r for r in hook.iter_interaction_metadata(*WINDOW) if r.has_recording][:5]
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    config = LandingConfig(bucket=bucket, sub_account_id="99999999")
    lander = SegmentLander(
        hook=hook, client=S3Hook(aws_conn_id=aws_conn).get_conn(), config=config, rows=None
    )
    outcomes = BatchArchiver(lander).run(refs_of(records))
    assert {o.outcome for o in outcomes} == {"archived"}, [o.reason for o in outcomes]
    truth = truth_by_key(simulator)
    for record in records:
        sidecar = check_archived(s3_client, bucket, record.to_ref(), truth[record.key], config)
        assert sidecar["s3"]["upload"] == "multipart"
        assert sidecar["source"]["content_length"] is None
        key, _ = segment_keys(record.to_ref(), config)
        tags = {t["Key"]: t["Value"] for t in s3_client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
        assert tags["sha256"] == truth[record.key]["sha256"]
    assert {o.outcome for o in BatchArchiver(lander).run(refs_of(records))} == {"already_archived"}
