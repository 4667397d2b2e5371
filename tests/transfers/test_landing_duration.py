"""End to end through the lander (simulator + moto over HTTP): a recording shorter or longer than its
metadata duration is never archived, even when Content-Length and the WAV header agree with each other, and
its outcome names the reason (issue #12 item 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.landing import BIG, MiB, check_archived, truth_by_key
from tests.transfers.test_landing_proofs import _no_trace, _refs


@pytest.mark.parametrize(("share", "how"), [(0.5, "shorter"), (1.5, "longer")])
def test_audio_contradicting_the_metadata_duration_is_not_archived(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str, share: float, how: str
) -> None:
    """The simulator serves ``share`` of each call's audio, with a WAV header and Content-Length that match
    the audio it sends: only the metadata's segmentDurationMs shows it is not the whole call."""
    simulator.control.add_segments([BIG])
    _small, big = _refs(hook)
    simulator.control.patch_config(audio_duration_share=share)
    [outcome] = make_archiver(bucket, attempts=2, multipart_chunksize=5 * MiB).run([big])
    assert outcome.outcome == "failed"
    assert outcome.retryable
    assert outcome.attempts == 2
    assert outcome.reason.startswith("RingCXDurationMismatchError: ")
    assert f"{220 * share:.1f} s of audio but the metadata says 220.0 s" in outcome.reason
    assert f"the recording is {how} than the call" in outcome.reason
    assert outcome.as_dict()["reason"] == outcome.reason  # the report lists it with this reason
    _no_trace(s3_client, bucket)


def test_short_compressed_audio_proven_by_content_length_is_not_archived(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    """Placeholder WAV sizes and gzip: the encoded Content-Length proves the body complete, the upload
    streams, and the decoded audio's duration refuses it at the end: the multipart upload is aborted."""
    simulator.control.add_segments([BIG])
    _small, big = _refs(hook)
    simulator.control.patch_config(audio_duration_share=0.5, wav_data_size="unknown")
    simulator.control.set_faults([{"route": "download", "kind": "gzip"}])
    archiver = make_archiver(bucket, attempts=1, single_part_threshold=1 * MiB, multipart_chunksize=5 * MiB)
    [outcome] = archiver.run([big])
    assert outcome.outcome == "failed"
    assert "RingCXDurationMismatchError" in outcome.reason
    assert "110.0 s of audio but the metadata says 220.0 s" in outcome.reason
    assert "content-length proof holds" in outcome.reason
    _no_trace(s3_client, bucket)


def test_audio_within_the_tolerance_lands_verified(
    simulator: Any, hook: Any, make_archiver: Callable, s3_client: Any, bucket: str
) -> None:
    simulator.control.add_segments([BIG])
    _small, big = _refs(hook)
    simulator.control.patch_config(audio_duration_share=0.99)  # 217.8 s for 220 s: within 4.4 s (2 %)
    archiver = make_archiver(bucket, multipart_chunksize=5 * MiB)
    [outcome] = archiver.run([big])
    assert outcome.outcome == "archived", outcome.reason
    truth = truth_by_key(simulator)[(big["dialog_id"], big["segment_id"])]
    check_archived(s3_client, bucket, big, truth, archiver.lander.config)
