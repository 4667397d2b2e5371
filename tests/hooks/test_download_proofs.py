"""A recording is complete only with a length proof; compressed bodies are decoded and verified (issue #12
items 2 and 3), against the simulator's hostile framings over real sockets."""

from __future__ import annotations

import hashlib

import pytest

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError, RingCXIncompleteDownloadError
from airflow_provider_ringcx.hooks.lengthproof import duration_tolerance_seconds
from tests.hooks.test_hook_download import download, inject

SECONDS = 8.0
DURATION_MS = int(SECONDS * 1000)


def _read_all(hook, *, expected_duration_seconds=None):
    extra = (
        {} if expected_duration_seconds is None else {"expected_duration_seconds": expected_duration_seconds}
    )
    with hook.stream_recording("d", "s", **extra) as stream:
        data = stream.read()
    return data, stream


def test_content_length_is_the_proof_when_sent(simulator, connect):
    truth = inject(simulator, "d", "s", duration_ms=DURATION_MS)
    data, stream = _read_all(connect(simulator))
    assert stream.complete
    assert stream.length_proof == "content-length"
    assert hashlib.sha256(data).hexdigest() == truth["sha256"]


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_wav_data_size_proves_a_body_without_content_length(make_simulator, connect, framing):
    sim = make_simulator(download_length=framing)
    truth = inject(sim, "d", "s", duration_ms=DURATION_MS)
    data, stream = _read_all(connect(sim))
    assert stream.content_length is None
    assert stream.length_proof == "wav-data-size"
    assert stream.sha256_hex == truth["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("framing", "placeholder"),
    [("close", "unknown"), ("close", "zero"), ("chunked", "zero"), ("chunked", "unknown")],
)
def test_half_the_audio_with_a_clean_end_and_no_proof_is_refused(
    make_simulator, connect, framing, placeholder
):
    sim = make_simulator(download_length=framing, wav_data_size=placeholder)
    truth = inject(sim, "d", "s", duration_ms=DURATION_MS)
    sim.control.set_faults([{"route": "download", "kind": "short", "after_bytes": truth["size"] // 2}])
    hook = connect(sim)
    with hook.stream_recording("d", "s") as stream:
        with pytest.raises(RingCXIncompleteDownloadError) as info:
            stream.read()
        assert not stream.complete
        with pytest.raises(RingCXIncompleteDownloadError):
            stream.read(1)  # never b"": the upload cannot finish on an unproven body
    message = str(info.value)
    assert "recording dialog 'd' segment 's'" in message
    assert "length unproven" in message
    assert "no Content-Length" in message
    assert "no expected duration" in message
    assert "retry" in message
    assert info.value.retryable


def test_a_complete_body_without_any_proof_is_refused_too(make_simulator, connect):
    """Without evidence the product cannot tell complete from cut: it never guesses "complete"."""
    sim = make_simulator(download_length="close", wav_data_size="unknown")
    inject(sim, "d", "s", duration_ms=DURATION_MS)
    with pytest.raises(RingCXIncompleteDownloadError, match=r"length unproven .*0xffffffff"):
        _read_all(connect(sim))


def test_the_expected_duration_proves_a_body_without_other_evidence(make_simulator, connect):
    sim = make_simulator(download_length="close", wav_data_size="zero")
    truth = inject(sim, "d", "s", duration_ms=DURATION_MS)
    data, stream = _read_all(connect(sim), expected_duration_seconds=SECONDS + 1.5)  # within 2 s
    assert stream.length_proof == "duration"
    assert len(data) == truth["size"]
    assert stream.sha256_hex == hashlib.sha256(data).hexdigest()  # (the header's sizes were rewritten)


def test_the_expected_duration_refuses_half_the_audio(make_simulator, connect):
    sim = make_simulator(download_length="chunked", wav_data_size="unknown")
    truth = inject(sim, "d", "s", duration_ms=DURATION_MS)
    sim.control.set_faults([{"route": "download", "kind": "short", "after_bytes": truth["size"] // 2}])
    with pytest.raises(RingCXIncompleteDownloadError, match=r"4\.0 s of audio but the metadata says 8\.0 s"):
        _read_all(connect(sim), expected_duration_seconds=SECONDS)


def test_duration_tolerance_is_two_seconds_or_two_percent():
    assert duration_tolerance_seconds(10) == 2.0
    assert duration_tolerance_seconds(100) == 2.0
    assert duration_tolerance_seconds(900) == pytest.approx(18.0)


def test_a_short_chunked_body_with_a_real_wav_size_is_refused(make_simulator, connect):
    sim = make_simulator(download_length="chunked")
    truth = inject(sim, "d", "s", duration_ms=DURATION_MS)
    sim.control.set_faults([{"route": "download", "kind": "short", "after_bytes": truth["size"] // 2}])
    with pytest.raises(RingCXIncompleteDownloadError, match="the WAV header declares"):
        _read_all(connect(sim), expected_duration_seconds=SECONDS)  # the WAV size is checked before it


# -- item 3: compression ------------------------------------------------------------------------------------


def test_recordings_are_requested_with_identity_encoding(simulator, connect):
    """A server that compresses only when asked (``negotiated``) sends our request the plain WAV."""
    truth = inject(simulator, "d", "s", duration_ms=DURATION_MS)
    simulator.control.set_faults([{"route": "download", "kind": "gzip", "encoding": "negotiated"}])
    data, stream = _read_all(connect(simulator))
    assert "Content-Encoding" not in stream.headers
    assert stream.length_proof == "content-length"
    assert hashlib.sha256(data).hexdigest() == truth["sha256"]
    assert simulator.control.stats()["faults"] == {"gzip": 1}


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_recording_with_content_length_lands_decoded_and_verified(simulator, connect, encoding):
    truth = inject(simulator, "d", "s", duration_ms=DURATION_MS)
    simulator.control.set_faults([{"route": "download", "kind": "gzip", "encoding": encoding}])
    data, stream = download(connect(simulator), "d", "s", piece=8192)
    assert stream.headers["Content-Encoding"] == encoding
    assert stream.content_length is None  # it described the encoded body
    assert stream.encoded_length is not None
    assert stream.encoded_length < truth["size"]
    assert stream.length_proof == "content-length"  # of the encoded bytes received
    assert len(data) == truth["size"]
    assert stream.sha256_hex == truth["sha256"]


def test_a_compressed_chunked_recording_is_verified_by_its_wav_size(make_simulator, connect):
    sim = make_simulator(download_length="chunked")
    truth = inject(sim, "d", "s", duration_ms=DURATION_MS)
    sim.control.set_faults([{"route": "download", "kind": "gzip"}])
    data, stream = _read_all(connect(sim))
    assert stream.length_proof == "wav-data-size"
    assert hashlib.sha256(data).hexdigest() == truth["sha256"]


def test_a_compressed_unproven_body_never_says_truncated(make_simulator, connect):
    sim = make_simulator(download_length="close", wav_data_size="unknown")
    inject(sim, "d", "s", duration_ms=DURATION_MS)
    sim.control.set_faults([{"route": "download", "kind": "gzip"}])
    with pytest.raises(RingCXIncompleteDownloadError) as info:
        _read_all(connect(sim))
    assert "truncated" not in str(info.value)
    assert "no Content-Length of the decoded body" in str(info.value)


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress"])
def test_an_unsupported_encoding_is_refused_naming_it(simulator, connect, encoding):
    inject(simulator, "d", "s", duration_ms=DURATION_MS)
    simulator.control.set_faults([{"route": "download", "kind": "gzip", "encoding": encoding}])
    with pytest.raises(RingCXBadPayloadError) as info:
        _read_all(connect(simulator))
    assert f"Content-Encoding '{encoding}'" in str(info.value)
    assert "truncated" not in str(info.value)
