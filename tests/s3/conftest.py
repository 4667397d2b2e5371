"""Helpers for landing tests: a lander wired to the simulator (RingCX) and moto (S3), both over HTTP."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import jsonschema
import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from airflow_provider_ringcx.hooks.ringcx import RingCXHook
from airflow_provider_ringcx.models import SegmentRecord, SegmentRef
from airflow_provider_ringcx.s3.batch import BatchArchiver
from airflow_provider_ringcx.s3.landing import LandingConfig, SegmentLander, segment_keys
from airflow_provider_ringcx.s3.sidecar import SIDECAR_SCHEMA

WINDOW = (datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc), datetime(2026, 3, 2, 14, 5, tzinfo=timezone.utc))


def no_sleep(seconds: float) -> None:
    """The hook's retry waits, skipped: the simulator answers at once, and tests must not wait real time."""


@pytest.fixture
def hook(ringcx_conn: str) -> RingCXHook:
    return RingCXHook(ringcx_conn_id=ringcx_conn, sleep=no_sleep)


@pytest.fixture
def s3(aws_conn: str) -> Any:
    """The client the code under test uses (the Amazon provider's S3Hook over the aws connection)."""
    return S3Hook(aws_conn_id=aws_conn).get_conn()


@pytest.fixture
def records(hook: RingCXHook) -> list[SegmentRecord]:
    """The simulator's segments of :data:`WINDOW` that have a recording (listed through the real hook)."""
    return [record for record in hook.iter_interaction_metadata(*WINDOW) if record.has_recording]


@pytest.fixture
def make_archiver(hook: RingCXHook, s3: Any) -> Callable[..., BatchArchiver]:
    def make(
        bucket: str, *, rows: dict | None = None, attempts: int = 3, backoff: float = 0.0, **config: Any
    ) -> BatchArchiver:
        settings = {"sub_account_id": "99999999", "prefix": "archive", **config}
        lander = SegmentLander(
            hook=hook, client=s3, config=LandingConfig(bucket=bucket, **settings), rows=rows
        )
        return BatchArchiver(lander, max_workers=4, attempts=attempts, backoff=backoff)

    return make


def refs_of(records: list[SegmentRecord]) -> list[SegmentRef]:
    return [record.to_ref() for record in records]


def check_archived(
    s3_client: Any, bucket: str, ref: SegmentRef, truth: dict[str, Any], config: LandingConfig
) -> dict[str, Any]:
    """Assert the object matches the simulator's ground truth, parses as WAV, and its sidecar validates."""
    key, side = segment_keys(ref, config)
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    import hashlib

    assert hashlib.sha256(body).hexdigest() == truth["sha256"], key
    assert len(body) == truth["size"]
    with wave.open(io.BytesIO(body)) as wav:
        assert wav.getnchannels() == truth["channels"]
        assert wav.getframerate() == truth["sample_rate"]
        assert wav.getsampwidth() == 2
    sidecar = json.loads(s3_client.get_object(Bucket=bucket, Key=side)["Body"].read())
    jsonschema.validate(sidecar, SIDECAR_SCHEMA)
    assert sidecar["sha256"] == truth["sha256"]
    assert sidecar["size"] == truth["size"]
    assert sidecar["audio"]["channels"] == truth["channels"]
    assert sidecar["dialog_id"] == ref["dialog_id"]
    assert sidecar["segment_id"] == ref["segment_id"]
    assert sidecar["s3"]["key"] == key
    return sidecar


MiB = 1024 * 1024
#: A segment big enough for the multipart path (7 MB of 8 kHz stereo audio).
BIG = {"dialogId": "d-big", "segmentId": "s-big", "segmentEndTimeMs": "2026-03-02T14:02:00Z",
       "segmentDurationMs": 220_000, "channels": 2}  # fmt: skip


def truth_by_key(simulator: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """The simulator's ground truth of ``WINDOW`` by ``(dialogId, segmentId)``."""
    return {(t["dialogId"], t["segmentId"]): t for t in simulator.control.ground_truth(*WINDOW)}
