"""End to end through the lander (simulator + moto over HTTP): an unproven recording never lands at its key
and its outcome names the reason; a compressed or length-less one that is proven lands verified (issue #12
items 2 and 3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_ringcx.transfers.landing import expected_duration, segment_keys
from tests.fixtures.landing import BIG, WINDOW, MiB, check_archived, truth_by_key
from tests.fixtures.s3 import list_keys


def _no_trace(s3_client: Any, bucket: str) -> None:
    assert list_keys(s3_client, bucket) == []
    assert not s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def _refs(hook: Any) -> tuple[dict, dict]:
    listed = list(hook.iter_interaction_metadata(*WINDOW))
    big = next(r for r in listed if r.dialog_id == "d-big").to_ref()
    small = next(r for r in listed if r.dialog_id != "d-big" and r.has_recording).to_ref()
    return dict(small), dict(big)


def test_expected_duration_of_a_ref():
    assert expected_duration({"duration_ms": 142000}) == 142.0
    ref = {"duration_ms": None, "start": "2026-03-02T14:01:40Z", "end": "2026-03-02T14:04:02Z"}
    assert expected_duration(ref) == 142.0
    assert expected_duration({"duration_ms": None, "start": None, "end": "2026-03-02T14:04:02Z"}) is None


@pytest.mark.parametrize("which", ["small", "big"])
def test_an_unproven_body_never_lands_and_the_outcome_says_why(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str, which: str
) -> None:
    """Close-delimited, WAV size 0xFFFFFFFF, half the audio then a clean FIN, and no duration to check."""
    simulator.control.add_segments([BIG])
    small, big = _refs(hook)
    ref = {**(small if which == "small" else big), "duration_ms": None, "start": None}
    truth = truth_by_key(simulator)[(ref["dialog_id"], ref["segment_id"])]
    simulator.control.patch_config(download_length="close", wav_data_size="unknown")
    simulator.control.set_faults(
        [
            {
                "route": "download",
                "kind": "short",
                "after_bytes": truth["size"] // 2,
                "match": ref["segment_id"],
            }
        ]
    )
    archiver = make_archiver(bucket, attempts=2, single_part_threshold=1 * MiB, multipart_chunksize=5 * MiB)
    [outcome] = archiver.run([ref])
    assert outcome.outcome == "failed"
    assert outcome.retryable
    assert outcome.attempts == 2
    assert "RingCXIncompleteDownloadError" in outcome.reason
    assert "length unproven" in outcome.reason
    assert outcome.as_dict()["reason"] == outcome.reason  # the report lists it with this reason
    _no_trace(s3_client, bucket)


def test_half_the_audio_is_caught_by_the_metadata_duration(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    simulator.control.add_segments([BIG])
    _small, big = _refs(hook)
    truth = truth_by_key(simulator)[(big["dialog_id"], big["segment_id"])]
    simulator.control.patch_config(download_length="chunked", wav_data_size="zero")
    simulator.control.set_faults([{"route": "download", "kind": "short", "after_bytes": truth["size"] // 2}])
    [outcome] = make_archiver(bucket, attempts=1, multipart_chunksize=5 * MiB).run([big])
    assert outcome.outcome == "failed"
    assert "110.0 s of audio but the metadata says 220.0 s" in outcome.reason
    _no_trace(s3_client, bucket)


def test_a_length_less_body_proven_by_its_duration_lands(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    simulator.control.add_segments([BIG])
    small, big = _refs(hook)
    simulator.control.patch_config(download_length="close", wav_data_size="unknown")
    archiver = make_archiver(bucket, single_part_threshold=1 * MiB, multipart_chunksize=5 * MiB)
    outcomes = archiver.run([small, big])
    assert [o.outcome for o in outcomes] == ["archived", "archived"]
    truth = truth_by_key(simulator)
    for ref in (small, big):
        key, _ = segment_keys(ref, archiver.lander.config)
        head = s3_client.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == truth[(ref["dialog_id"], ref["segment_id"])]["size"]


def test_a_compressed_recording_lands_decoded_and_verified(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    simulator.control.add_segments([BIG])
    small, _big = _refs(hook)
    simulator.control.set_faults([{"route": "download", "kind": "gzip"}])
    archiver = make_archiver(bucket)
    [outcome] = archiver.run([small])
    assert outcome.outcome == "archived", outcome.reason
    truth = truth_by_key(simulator)[(small["dialog_id"], small["segment_id"])]
    check_archived(s3_client, bucket, small, truth, archiver.lander.config)  # the WAV, not the gzip
    assert simulator.control.stats()["faults"] == {"gzip": 1}
