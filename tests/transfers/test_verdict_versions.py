"""The verdict is about one object version: the reads after the HEAD are pinned to its VersionId.

A versioned moto bucket and a crafted race: the S3 client is the test's real boto3 client, wrapped so that
right after the verdict's HEAD a new version of the recording is written (what a concurrent re-run or an
overwrite does). The HEAD's version holds bytes that are not the recording; the new one holds the real
recording. Unpinned, the verdict read the new version's tag or bytes and said ``archived`` about the old
version's id; pinned, it judges the version it names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_ringcx.models import SegmentRecord
from airflow_provider_ringcx.transfers.landing import segment_keys
from airflow_provider_ringcx.transfers.verdict import (
    ARCHIVED,
    CHECKSUM_MISMATCH,
    CONTENT_MISMATCH,
    Identity,
    verify_archived,
)
from tests.fixtures.landing import refs_of

SUB = "99999999"


class RacingClient:
    """The real client; after the first HEAD of ``key``, ``race()`` runs once (a concurrent writer)."""

    def __init__(self, client: Any, key: str, race: Callable[[], None]) -> None:
        self._client, self._key, self._race, self.raced = client, key, race, False

    def head_object(self, **kwargs: Any) -> Any:
        answer = self._client.head_object(**kwargs)
        if kwargs.get("Key") == self._key and not self.raced:
            self.raced = True
            self._race()
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.mark.parametrize(
    ("tagged", "expected"),
    [(True, CHECKSUM_MISMATCH), (False, CONTENT_MISMATCH)],
    ids=["sha256 tag", "bytes read back"],
)
def test_a_version_written_after_the_head_does_not_vouch_for_the_heads_version(
    tagged: bool,
    expected: str,
    records: list[SegmentRecord],
    make_archiver: Callable,
    s3_client: Any,
    bucket: str,
) -> None:
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    refs = refs_of(records[:1])
    archiver = make_archiver(bucket)
    assert [o.outcome for o in archiver.run(refs)] == ["archived"]
    key, side = segment_keys(refs[0], archiver.lander.config)
    real = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    garbage = bytes(len(real))  # same size, not the recording

    def put(body: bytes) -> str:  # no metadata checksum: the verdict reads the tag (if any) or the bytes
        digest = hashlib.sha256(body).hexdigest()
        extra = {"Tagging": f"sha256={digest}"} if tagged else {}
        return s3_client.put_object(Bucket=bucket, Key=key, Body=body, **extra)["VersionId"]

    bad_version = put(garbage)
    identity = Identity(SUB, refs[0]["dialog_id"], refs[0]["segment_id"])
    racing = RacingClient(s3_client, key, lambda: put(real))
    verdict = verify_archived(racing, bucket, identity, key, side)
    assert racing.raced
    assert verdict.version_id == bad_version
    assert verdict.state == expected, verdict.reason  # unpinned reads of the new version said "archived"
    # without a race, the newest version (the real recording) is archived, under its own version id
    again = verify_archived(s3_client, bucket, identity, key, side, verify_content=True)
    assert again.state == ARCHIVED, again.reason
    assert again.version_id != bad_version
