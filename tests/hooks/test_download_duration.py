"""The metadata's duration is checked against the audio even when Content-Length and the WAV header agree
with each other (issue #12 item 2), against the simulator's ``audio_duration_share`` over real sockets."""

from __future__ import annotations

import pytest

from airflow_provider_ringcx.exceptions import RingCXDurationMismatchError, RingCXIncompleteDownloadError
from tests.hooks.test_download_proofs import DURATION_MS, SECONDS, _read_all
from tests.hooks.test_hook_download import inject


def test_short_audio_with_agreeing_content_length_and_header_is_refused_before_any_byte(
    make_simulator, connect
):
    """Half the audio, a WAV header and Content-Length that both say so: refused as the header arrives."""
    sim = make_simulator(audio_duration_share=0.5)
    truth = inject(sim, "d", "s", duration_ms=DURATION_MS)
    assert truth["size"] == 44 + DURATION_MS // 2 * 8 * truth["channels"] * 2  # the simulator's short audio
    with pytest.raises(RingCXDurationMismatchError) as info:
        _read_all(connect(sim, retry_attempts=1), expected_duration_seconds=SECONDS)
    message = str(info.value)
    assert "recording dialog 'd' segment 's'" in message
    assert (
        "4.0 s of audio but the metadata says 8.0 s (tolerance 2.0 s; as the WAV header declares)" in message
    )
    assert "shorter than the call" in message
    assert "nothing was archived" in message
    assert isinstance(info.value, RingCXIncompleteDownloadError)
    assert info.value.retryable


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_short_audio_proven_only_by_content_length_is_refused_at_the_end(make_simulator, connect, encoding):
    """A placeholder WAV size: Content-Length proves the body complete, the duration shows it is short."""
    sim = make_simulator(audio_duration_share=0.5, wav_data_size="zero")
    inject(sim, "d", "s", duration_ms=DURATION_MS)
    if encoding:
        sim.control.set_faults([{"route": "download", "kind": "gzip", "encoding": encoding}])
    hook = connect(sim)
    with hook.stream_recording("d", "s", expected_duration_seconds=SECONDS) as stream:
        with pytest.raises(
            RingCXDurationMismatchError,
            match=r"as received, though its content-length proof holds\): the recording is shorter",
        ):
            stream.read()
        assert not stream.complete
        assert stream.length_proof is None  # never "verified"
        with pytest.raises(RingCXDurationMismatchError):
            stream.read(1)


@pytest.mark.parametrize("wav_data_size", ["exact", "unknown"])
def test_audio_longer_than_the_metadata_says_is_refused(make_simulator, connect, wav_data_size):
    sim = make_simulator(audio_duration_share=1.5, wav_data_size=wav_data_size, download_length="chunked")
    inject(sim, "d", "s", duration_ms=DURATION_MS)
    with pytest.raises(
        RingCXDurationMismatchError, match=r"12\.0 s of audio but the metadata says 8\.0 s.*longer"
    ):
        _read_all(connect(sim, retry_attempts=1), expected_duration_seconds=SECONDS)


def test_audio_within_the_tolerance_is_verified(make_simulator, connect):
    sim = make_simulator(audio_duration_share=0.9)  # 7.2 s for 8 s: within 2 s
    truth = inject(sim, "d", "s", duration_ms=DURATION_MS)
    data, stream = _read_all(connect(sim), expected_duration_seconds=SECONDS)
    assert stream.length_proof == "content-length"
    assert len(data) == truth["size"]
    assert stream.sha256_hex == truth["sha256"]


def test_without_an_expected_duration_nothing_contradicts_the_proof(make_simulator, connect):
    sim = make_simulator(audio_duration_share=0.5)
    truth = inject(sim, "d", "s", duration_ms=DURATION_MS)
    data, stream = _read_all(connect(sim))
    assert stream.length_proof == "content-length"
    assert len(data) == truth["size"]
