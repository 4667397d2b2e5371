"""The index's conditional merge against moto's S3 server: two windows of one day landing at once lose no
row, a day that keeps changing gives up with a retryable error naming its key, a corrupted day is never
overwritten by a merge, and the index object gets the run's encryption but no Object Lock.

The race is made deterministic, not left to thread timing: the client below lets "another window" write the
day between this merge's read and its conditional write, which is exactly the interleaving If-Match exists
for. The S3 requests themselves are real (moto's server over HTTP)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.index.format import IndexCorruptError
from airflow_provider_ringcx.index.store import (
    MAX_ATTEMPTS,
    IndexWriteConflictError,
    merge_rows,
    read_day,
    sync_index,
)
from airflow_provider_ringcx.s3.options import S3WriteOptions

DAY = date(2026, 3, 2)
SUB = "99999999"


def _rows(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {"dialog_id": f"{prefix}-d", "segment_id": f"s{i}", "end_time": f"2026-03-02T14:0{i % 10}:00Z"}
        for i in range(count)
    ]


class RacingClient:
    """A real S3 client, except that after each of its first ``races`` reads of the index another window
    merges its rows into the same day (through the plain client), before this merge writes."""

    def __init__(self, client: Any, bucket: str, races: int) -> None:
        self.client, self.bucket, self.races, self.raced = client, bucket, races, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def get_object(self, **kwargs: Any) -> Any:
        try:
            return self.client.get_object(**kwargs)  # the answer (or the 404) is read before the race
        finally:
            if self.raced < self.races and "/_index/" in kwargs["Key"]:
                self.raced += 1
                rows = _rows(f"other{self.raced}", 3)
                merge_rows(self.client, self.bucket, "ringcx", SUB, rows, fallback_day=DAY)


def test_two_windows_landing_at_once_lose_no_row(s3_client: Any, bucket: str) -> None:
    merge_rows(s3_client, bucket, "ringcx", SUB, _rows("first", 2), fallback_day=DAY)
    racing = RacingClient(s3_client, bucket, races=1)
    (written,) = merge_rows(
        racing, bucket, "ringcx", SUB, _rows("mine", 4), fallback_day=DAY, pause=lambda _s: None
    )
    assert written.attempts == 2  # the first conditional write lost to the other window, the second won
    rows, _ = read_day(s3_client, bucket, keys.index_key("ringcx", SUB, DAY))
    assert sorted({row["dialog_id"] for row in rows}) == ["first-d", "mine-d", "other1-d"]
    assert len(rows) == 2 + 4 + 3 == written.rows


def test_a_day_that_keeps_changing_gives_up_retryably_naming_its_key(s3_client: Any, bucket: str) -> None:
    # the first read finds no object: the race then fails the write's If-None-Match, later ones If-Match
    racing = RacingClient(s3_client, bucket, races=MAX_ATTEMPTS)
    with pytest.raises(IndexWriteConflictError) as caught:
        merge_rows(racing, bucket, "ringcx", SUB, _rows("mine", 1), fallback_day=DAY, pause=lambda _s: None)
    assert caught.value.retryable
    assert keys.index_key("ringcx", SUB, DAY) in str(caught.value)
    rows, _ = read_day(s3_client, bucket, keys.index_key("ringcx", SUB, DAY))
    assert {row["dialog_id"] for row in rows} == {f"other{i}-d" for i in range(1, MAX_ATTEMPTS + 1)}


def test_a_merge_never_overwrites_a_corrupted_day(s3_client: Any, bucket: str) -> None:
    key = keys.index_key("ringcx", SUB, DAY)
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"\x1f\x8bnot really gzip")
    with pytest.raises(IndexCorruptError, match="index rebuild"):
        merge_rows(s3_client, bucket, "ringcx", SUB, _rows("mine", 1), fallback_day=DAY)
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"\x1f\x8bnot really gzip"


def test_the_index_gets_the_runs_encryption_and_tags_but_no_object_lock(s3_client: Any) -> None:
    bucket = f"lock-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    options = S3WriteOptions(
        server_side_encryption="AES256", storage_class="GLACIER", tags={"team": "compliance"},
        object_lock_mode="COMPLIANCE", object_lock_retention_days=30, object_lock_legal_hold=True,
    )  # fmt: skip
    (written,) = merge_rows(
        s3_client, bucket, "ringcx", SUB, _rows("mine", 2), fallback_day=DAY, options=options
    )
    head = s3_client.head_object(Bucket=bucket, Key=written.key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head.get("StorageClass", "STANDARD") == "STANDARD"  # a query engine must be able to read it
    assert "ObjectLockMode" not in head
    assert head.get("ObjectLockLegalHoldStatus") != "ON"
    tags = s3_client.get_object_tagging(Bucket=bucket, Key=written.key)["TagSet"]
    assert {"Key": "team", "Value": "compliance"} in tags
    # rewritten as the next window lands: a new version, never a refusal
    merge_rows(s3_client, bucket, "ringcx", SUB, _rows("next", 1), fallback_day=DAY, options=options)
    assert len(read_day(s3_client, bucket, written.key)[0]) == 3


@pytest.mark.parametrize(
    "tail",
    [
        "sub_account=1/../../../../outside/segments.jsonl.gz",
        "sub_account=1/date=2026-03-02/../../../escaped/segments.jsonl.gz",
        "sub_account=1/./date=2026-03-02/segments.jsonl.gz",
        "sub_account=1//date=2026-03-02/segments.jsonl.gz",
        "sub_account=1/date=2026-03-02/x/segments.jsonl.gz",
        "other/date=2026-03-02/segments.jsonl.gz",
    ],
)
def test_sync_writes_only_index_days_inside_dest(
    s3_client: Any, bucket: str, tmp_path: Any, tail: str
) -> None:
    """Whoever can write ``_index/`` (it is not locked) can name any key: ``index sync`` writes only keys of
    the index's own layout (``_index/sub_account=ID/date=YYYY-MM-DD/segments.jsonl.gz``), inside ``--dest``,
    and skips the others with a warning, never a file outside the folder."""
    good = keys.index_key("rec", "1", date(2026, 3, 2))
    s3_client.put_object(Bucket=bucket, Key=good, Body=b"x")
    s3_client.put_object(Bucket=bucket, Key=f"rec/_index/{tail}", Body=b"hostile")
    assert any(
        item["Key"] == f"rec/_index/{tail}" for item in s3_client.list_objects_v2(Bucket=bucket)["Contents"]
    )
    dest = tmp_path / "a" / "b" / "c" / "copy"
    files = sync_index(s3_client, bucket, "rec", dest)
    assert files == [dest / "_index" / "sub_account=1" / "date=2026-03-02" / "segments.jsonl.gz"]
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert written == files
    assert files[0].read_bytes() == b"x"


def test_sync_does_not_write_through_a_planted_link(s3_client: Any, bucket: str, tmp_path: Any) -> None:
    """``--dest`` in a shared folder (``/tmp``): another local user plants a symbolic link where sync writes
    its ``.part`` file; sync refuses it instead of overwriting the file the link points to."""
    day = keys.index_key("rec", "1", date(2026, 3, 2))
    s3_client.put_object(Bucket=bucket, Key=day, Body=b"index bytes")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    dest = tmp_path / "copy"
    folder = dest / "_index" / "sub_account=1" / "date=2026-03-02"
    folder.mkdir(parents=True)
    (folder / "segments.jsonl.gz.part").symlink_to(victim)
    with pytest.raises(RingCXConfigError, match="symbolic link"):
        sync_index(s3_client, bucket, "rec", dest)
    assert victim.read_bytes() == b"precious"
