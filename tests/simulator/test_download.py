"""Recording download over HTTP: WAV format, headers, errors, budget, MP3 branch, hostile ids."""

from __future__ import annotations

import hashlib
import time
from array import array

import pytest
import requests

from tests.simulator.helpers import bearer, get_recording, login, validate, wav_info

HOUR = ("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z")
SHORT = ("2026-03-02T14:00:00Z", "2026-03-02T14:10:00Z")


def _recorded(sim, **kwargs) -> list[dict]:
    return [t for t in sim.control.ground_truth(*SHORT, **kwargs) if t["hasRecording"]]


def test_wav_is_valid_and_matches_metadata_duration(simulator, token):
    entry = _recorded(simulator)[0]
    response = get_recording(simulator, token, entry["dialogId"], entry["segmentId"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert int(response.headers["content-length"]) == len(response.content) == entry["size"]
    channels, rate, width, frames = wav_info(response.content)
    assert (channels, rate, width) == (entry["channels"], 8000, 2)
    assert frames == entry["segmentDurationMs"] * 8
    assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]


def test_audio_is_not_silence_and_channels_differ(simulator, token):
    entry = next(e for e in _recorded(simulator) if e["channels"] == 2)
    body = get_recording(simulator, token, entry["dialogId"], entry["segmentId"]).content
    samples = array("h", body[44:])
    left, right = samples[0::2], samples[1::2]
    assert max(left) > 1000
    assert max(right) > 1000
    assert list(left[1000:1100]) != list(right[1000:1100])


def test_mono_share_and_agent_channel(make_simulator):
    mono = make_simulator(mono_share=1.0)
    token = login(mono.url)["accessToken"]
    entry = _recorded(mono)[0]
    assert entry["channels"] == 1
    assert wav_info(get_recording(mono, token, entry["dialogId"], entry["segmentId"]).content)[0] == 1
    bodies = {}
    for channel in (0, 1):
        sim = make_simulator(mono_share=0.0, agent_channel=channel)
        token = login(sim.url)["accessToken"]
        entry = _recorded(sim)[0]
        assert entry["agent_channel"] == channel
        bodies[channel] = get_recording(sim, token, entry["dialogId"], entry["segmentId"]).content
    first = array("h", bodies[0][44 + 32 * 4 :])  # skip header and noise preamble
    second = array("h", bodies[1][44 + 32 * 4 :])
    assert list(first[0::2][:500]) == list(second[1::2][:500])  # the agent's tone moved channel


def test_default_share_of_mono_recordings(simulator):
    channels = [e["channels"] for e in _recorded(simulator, sha256=False)]
    assert 1 in channels
    assert channels.count(2) > channels.count(1)


def test_chunked_variant_has_no_content_length(make_simulator):
    sim = make_simulator(download_length="chunked")
    token = login(sim.url)["accessToken"]
    entry = _recorded(sim)[0]
    response = get_recording(sim, token, entry["dialogId"], entry["segmentId"])
    assert response.status_code == 200
    assert "content-length" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"
    assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]


def test_unknown_segment_is_404_errors(simulator, token):
    entry = _recorded(simulator)[0]
    for dialog_id, segment_id in [
        (entry["dialogId"], "nope"),
        ("s-v-0123-1772460058556", entry["segmentId"]),
        ("garbage", "garbage"),
    ]:
        response = get_recording(simulator, token, dialog_id, segment_id)
        assert response.status_code == 404
        validate(response.json(), "Errors")
        assert response.json()["generalMessage"] == "The resource you have requested does not exist"
        assert response.json()["requestUri"].endswith(" - GET")


def test_segment_without_recording_is_404(make_simulator):
    sim = make_simulator(no_recording_share=1.0)
    token = login(sim.url)["accessToken"]
    entry = sim.control.ground_truth(*HOUR)[0]
    assert entry["hasRecording"] is False
    assert entry["sha256"] is None
    assert get_recording(sim, token, entry["dialogId"], entry["segmentId"]).status_code == 404


def test_still_processing_segment_is_404(make_simulator):
    sim = make_simulator(now="2026-03-02T15:00:00Z")
    token = login(sim.url)["accessToken"]
    late = sim.control.ground_truth("2026-03-02T14:50:00Z", "2026-03-02T15:00:00Z", sha256=False)
    hidden = next(t for t in late if t["processing"] and t["hasRecording"])
    assert get_recording(sim, token, hidden["dialogId"], hidden["segmentId"]).status_code == 404
    sim.control.patch_config(now="2026-03-02T17:00:00Z")
    assert get_recording(sim, token, hidden["dialogId"], hidden["segmentId"]).status_code == 200


@pytest.mark.parametrize("shape", ["errors", "access_denied"])
def test_restricted_share_gives_403(make_simulator, shape):
    sim = make_simulator(restricted_share=1.0, forbidden_shape=shape)
    token = login(sim.url)["accessToken"]
    entry = _recorded(sim)[0]
    assert entry["restricted"] is True
    response = get_recording(sim, token, entry["dialogId"], entry["segmentId"])
    assert response.status_code == 403
    validate(response.json(), "Errors")
    assert ("errorCode" in response.json()) == (shape == "access_denied")


def test_restricted_ids_give_403_for_that_set_only(simulator, token):
    first, second = _recorded(simulator, sha256=False)[:2]
    simulator.control.patch_config(restricted_ids=[first["segmentId"]])
    assert get_recording(simulator, token, first["dialogId"], first["segmentId"]).status_code == 403
    assert get_recording(simulator, token, second["dialogId"], second["segmentId"]).status_code == 200
    assert _recorded(simulator, sha256=False)[0]["restricted"] is True


def test_wrong_sub_account_or_rc_account_is_403(simulator, token):
    entry = _recorded(simulator, sha256=False)[0]
    assert get_recording(simulator, token, entry["dialogId"], entry["segmentId"], sub="42").status_code == 403
    path = simulator.recording_path(entry["dialogId"], entry["segmentId"]).replace("980634004", "1")
    assert requests.get(simulator.url + path, headers=bearer(token), timeout=5).status_code == 403


def test_expired_token_is_401_text(simulator):
    entry = _recorded(simulator, sha256=False)[0]
    response = get_recording(simulator, "stale", entry["dialogId"], entry["segmentId"])
    assert response.status_code == 401
    assert response.text == "Jwt is expired"


def test_download_budget_120_per_minute(make_simulator):
    sim = make_simulator(calls_per_hour=0, download_budget="120/60", time_scale=10)  # a minute = 6 s
    sim.control.add_segments([{"dialogId": "d", "segmentId": "s", "segmentEndTimeMs": "2026-03-02T14:00:00Z",
                               "segmentDurationMs": 1}])  # fmt: skip
    token = login(sim.url)["accessToken"]
    session = requests.Session()
    url = sim.url + sim.recording_path("d", "s")
    statuses = [session.get(url, headers=bearer(token), timeout=5).status_code for _ in range(121)]
    assert statuses == [200] * 120 + [429]
    assert sim.control.stats()["rate_limited"]["download"] == 1


def test_browser_user_agent_gets_mp3(simulator, token):
    entry = _recorded(simulator, sha256=False)[0]
    ua = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"}
    response = get_recording(simulator, token, entry["dialogId"], entry["segmentId"], headers=ua)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.content.startswith(b"ID3")


def test_mp3_branch_can_be_switched_off(make_simulator):
    sim = make_simulator(mp3_for_browsers=False)
    token = login(sim.url)["accessToken"]
    entry = _recorded(sim, sha256=False)[0]
    response = get_recording(
        sim, token, entry["dialogId"], entry["segmentId"], headers={"User-Agent": "Mozilla/5.0"}
    )
    assert response.headers["content-type"] == "audio/wav"


@pytest.mark.parametrize(
    "dialog_id",
    ["a/b", "../../etc/passwd", "sp ace?#&=%", "ünïcødé-☎", "x" * 300, "%2F"],
)
def test_hostile_ids_round_trip(make_simulator, dialog_id):
    sim = make_simulator(calls_per_hour=0)
    spec = {
        "dialogId": dialog_id,
        "segmentId": dialog_id + "/seg",
        "segmentEndTimeMs": "2026-03-02T14:30:00Z",
    }
    sim.control.add_segments([{**spec, "segmentDurationMs": 1500, "channels": 1}])
    token = login(sim.url)["accessToken"]
    truth = sim.control.ground_truth(*HOUR)[0]
    response = get_recording(sim, token, dialog_id, dialog_id + "/seg")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == truth["sha256"]
    assert requests.get(sim.url + truth["path"], headers=bearer(token), timeout=5).status_code == 200
    assert wav_info(response.content) == (1, 8000, 2, 12000)


def test_large_recording_streams_fast_without_disk(make_simulator):
    sim = make_simulator(calls_per_hour=0)
    size_ms = 256 * 1024 * 1024 // 32 // 1000 * 1000  # ~256 MiB stereo
    sim.control.add_segments(
        [
            {
                "dialogId": "big",
                "segmentId": "big",
                "segmentEndTimeMs": "2026-03-02T14:00:00Z",
                "segmentDurationMs": size_ms,
            }
        ]
    )
    token = login(sim.url)["accessToken"]
    started = time.monotonic()
    with get_recording(sim, token, "big", "big", stream=True) as response:
        expected = int(response.headers["content-length"])
        received = sum(len(chunk) for chunk in response.iter_content(1 << 20))
    elapsed = time.monotonic() - started
    assert received == expected == 44 + size_ms * 32
    assert received / elapsed > 100e6, f"{received / elapsed / 1e6:.0f} MB/s"
