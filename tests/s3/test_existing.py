"""Multipart uploads left open at a key by earlier attempts (an abort that failed during an S3 outage, a
SIGKILLed task) are aborted once the key is landed or found archived, and only those (``s3/existing.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_ringcx.models import SegmentRecord
from airflow_provider_ringcx.transfers.landing import segment_keys
from tests.fixtures.landing import BIG, WINDOW, MiB, check_archived, refs_of, truth_by_key


# --- multipart uploads left open by earlier attempts ----------------------------------------------------
def _open_uploads(s3_client: Any, bucket: str, key: str | None = None) -> list[str]:
    uploads = s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads") or []
    return [u["UploadId"] for u in uploads if key is None or u["Key"] == key]


def _stale_upload(s3_client: Any, bucket: str, key: str) -> str:
    """An upload an earlier attempt began (one part sent) and failed to abort: S3 was down at that moment."""
    upload_id = s3_client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3_client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"RIFF" * 1000)
    return str(upload_id)


def test_stale_uploads_of_the_key_are_aborted_once_it_is_landed_or_found_archived(
    records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    refs = refs_of(records[:2])
    archiver = make_archiver(bucket)
    key, _ = segment_keys(refs[0], archiver.lander.config)
    other, _ = segment_keys(refs[1], archiver.lander.config)
    stale = [_stale_upload(s3_client, bucket, key) for _ in range(2)]
    sibling = _stale_upload(s3_client, bucket, key + ".part")  # another key that starts with this one
    assert [o.outcome for o in archiver.run(refs)] == ["archived", "archived"]
    assert set(_open_uploads(s3_client, bucket)) == {sibling}  # exactly that key's uploads, nothing else
    # ...and on the already_archived path (nothing downloaded, the stale upload still goes)
    late = [_stale_upload(s3_client, bucket, key), _stale_upload(s3_client, bucket, other)]
    assert [o.outcome for o in make_archiver(bucket).run(refs)] == ["already_archived"] * 2
    assert set(_open_uploads(s3_client, bucket)) == {sibling}
    assert not set(stale + late) & set(_open_uploads(s3_client, bucket))


def test_upload_started_after_the_attempt_began_is_not_aborted(
    records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    """A concurrent run that begins its upload of the key after this attempt started keeps it."""
    ref = records[0].to_ref()
    archiver = make_archiver(bucket)
    key, _ = segment_keys(ref, archiver.lander.config)
    stale = _stale_upload(s3_client, bucket, key)
    concurrent: list[str] = []

    def start_concurrent_upload(**_: Any) -> None:
        if not concurrent:  # the attempt's first HEAD: its snapshot of open uploads is already taken
            concurrent.append(_stale_upload(s3_client, bucket, key))

    archiver.lander.client.meta.events.register("before-call.s3.HeadObject", start_concurrent_upload)
    try:
        [outcome] = archiver.run([ref])
    finally:
        archiver.lander.client.meta.events.unregister("before-call.s3.HeadObject", start_concurrent_upload)
    assert outcome.outcome == "archived"
    assert _open_uploads(s3_client, bucket, key) == concurrent  # the older one is gone, the newer one kept
    assert stale not in _open_uploads(s3_client, bucket)


def test_failed_abort_of_a_stale_upload_is_logged_and_does_not_fail_the_segment(
    records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, bucket: str, caplog: Any
) -> None:
    from botocore.exceptions import EndpointConnectionError

    ref = records[0].to_ref()
    archiver = make_archiver(bucket, attempts=1)
    key, _ = segment_keys(ref, archiver.lander.config)
    stale = _stale_upload(s3_client, bucket, key)

    def s3_down(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://s3.invalid")

    events = archiver.lander.client.meta.events
    events.register("before-call.s3.AbortMultipartUpload", s3_down)
    try:
        with caplog.at_level("WARNING", logger="airflow_provider_ringcx.s3.existing"):
            [outcome] = archiver.run([ref])
    finally:
        events.unregister("before-call.s3.AbortMultipartUpload", s3_down)
    assert outcome.outcome == "archived", outcome.reason
    assert _open_uploads(s3_client, bucket, key) == [stale]
    assert any("could not abort stale multipart upload" in r.getMessage() for r in caplog.records)
    assert [o.outcome for o in make_archiver(bucket).run([ref])] == ["already_archived"]
    assert _open_uploads(s3_client, bucket, key) == []  # the next run cleans it


def test_concurrent_writer_whose_older_upload_is_aborted_retries_and_finds_the_key_archived(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, locked_bucket: str, aws_conn: str
) -> None:
    """Run A is mid-multipart when run B starts, lands the key and aborts A's upload (it predates B's
    attempt). A's next part gets NoSuchUpload: a retryable failure, and A's retry finds the key archived.
    One version of the object, no open upload, nothing archived twice."""
    from types import SimpleNamespace

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from airflow_provider_ringcx.transfers.batch import BatchArchiver
    from airflow_provider_ringcx.transfers.landing import SegmentLander

    simulator.control.add_segments([BIG])
    ref = next(r for r in hook.iter_interaction_metadata(*WINDOW) if r.dialog_id == "d-big").to_ref()
    run_a = make_archiver(locked_bucket, single_part_threshold=1 * MiB, multipart_chunksize=5 * MiB)
    config = run_a.lander.config
    key, _ = segment_keys(ref, config)
    client_b = S3Hook(aws_conn_id=aws_conn).get_conn()
    run_b = BatchArchiver(SegmentLander(hook=hook, client=client_b, config=config, rows=None), attempts=1)
    b_outcomes: list[Any] = []
    gone: list[str] = []

    def part(params: dict[str, Any], **_: Any) -> Any:
        query = params["query_string"]
        if query["partNumber"] == 2 and not b_outcomes:  # A has begun its upload: B runs now, whole
            b_outcomes.extend(run_b.run([ref]))
        if query["uploadId"] in _open_uploads(s3_client, locked_bucket, key):
            return None
        # S3 answers a part of an aborted upload with 404 NoSuchUpload (moto 5 with a 500: a KeyError)
        gone.append(query["uploadId"])
        error = {"Code": "NoSuchUpload", "Message": "The specified upload does not exist."}
        return SimpleNamespace(status_code=404, headers={}), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 404},
        }

    events = run_a.lander.client.meta.events
    events.register("before-call.s3.UploadPart", part)
    try:
        [a_outcome] = run_a.run([ref])
    finally:
        events.unregister("before-call.s3.UploadPart", part)
    assert [o.outcome for o in b_outcomes] == ["archived"]
    assert gone  # B aborted A's upload while A was still writing it
    assert a_outcome.outcome == "already_archived", a_outcome.reason
    assert a_outcome.attempts == 2
    versions = s3_client.list_object_versions(Bucket=locked_bucket, Prefix=key).get("Versions", [])
    assert len([v for v in versions if v["Key"] == key]) == 1
    assert _open_uploads(s3_client, locked_bucket) == []
    check_archived(s3_client, locked_bucket, ref, truth_by_key(simulator)[("d-big", "s-big")], config)


def test_without_permission_to_list_uploads_the_cleanup_is_off_with_one_warning(
    records: list[SegmentRecord], make_archiver: Callable, s3_client: Any, bucket: str, caplog: Any
) -> None:
    """Least-privilege IAM (no s3:ListBucketMultipartUploads): every segment is still archived, one
    warning says why the cleanup is off. moto does not enforce IAM, so the 403 is injected at the boto3
    client (the one boundary faked here)."""
    from botocore.exceptions import ClientError

    refs = refs_of(records)
    assert len(refs) > 4
    archiver = make_archiver(bucket, attempts=1)  # 4 worker threads
    calls: list[int] = []

    def denied(**_: Any) -> None:
        calls.append(1)
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
             "ResponseMetadata": {"HTTPStatusCode": 403}},
            "ListMultipartUploads",
        )  # fmt: skip

    events = archiver.lander.client.meta.events
    events.register("before-call.s3.ListMultipartUploads", denied)
    try:
        with caplog.at_level("WARNING", logger="airflow_provider_ringcx.s3.existing"):
            outcomes = archiver.run(refs)
    finally:
        events.unregister("before-call.s3.ListMultipartUploads", denied)
    assert [o.outcome for o in outcomes] == ["archived"] * len(refs), [o.reason for o in outcomes]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert len(calls) <= 4  # off for the rest of the task after the first 403 (the 4 threads may race)
