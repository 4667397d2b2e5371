"""interaction-metadata over HTTP: validation, the window rule, DST, readiness, budgets and variants."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import pytest
import requests

from tests.simulator.helpers import bearer, login, post_metadata, validate

SMALL = {"segmentEndTime": "2026-03-02 14:00:00", "timeInterval": 60, "timeZone": "UTC"}


def _ids(rows: list[dict]) -> list[str]:
    return [row.get("segmentId", row.get("segmentID")) for row in rows]


def _inject(sim, *ends: str) -> None:
    sim.control.add_segments(
        [
            {"dialogId": f"dlg-{n}", "segmentId": f"seg-{end}", "segmentEndTimeMs": end}
            for n, end in enumerate(ends)
        ]
    )


def test_response_is_a_bare_array_matching_the_vendor_schema(simulator, token):
    response = post_metadata(simulator, token)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    rows = response.json()
    assert isinstance(rows, list)
    assert rows
    validate(rows, "WEMInteractionSegmentMetaData2Array")
    row = rows[0]
    assert isinstance(row["segmentDurationMs"], int)
    assert isinstance(row["dialogStartTimeMs"], str)
    assert row["subAccountId"] == "99999999"
    assert row["segmentEvents"][0]["eventType"] == "REC_START"
    assert row["segmentEvents"][-1]["eventType"] == "REC_STOP"


def test_rows_match_ground_truth(simulator, token):
    rows = post_metadata(simulator, token).json()
    truth = simulator.control.ground_truth("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z", sha256=False)
    assert [(r["dialogId"], r["segmentId"]) for r in rows] == [(t["dialogId"], t["segmentId"]) for t in truth]
    for row, expected in zip(rows, truth, strict=True):
        assert row["segmentEndTimeMs"] == expected["segmentEndTimeMs"]
        assert row["segmentDurationMs"] == expected["segmentDurationMs"]
        assert row["hasRecording"] == expected["hasRecording"]


def test_window_is_half_open_on_segment_end(make_simulator):
    sim = make_simulator(calls_per_hour=0)
    _inject(
        sim,
        "2026-03-02T13:59:59.999Z",
        "2026-03-02T14:00:00.000Z",
        "2026-03-02T14:09:59.999Z",
        "2026-03-02T14:10:00.000Z",
    )
    token = login(sim.url)["accessToken"]
    first = post_metadata(
        sim, token, {"segmentEndTime": "2026-03-02 14:00:00", "timeInterval": 600, "timeZone": "UTC"}
    )
    assert _ids(first.json()) == ["seg-2026-03-02T14:00:00.000Z", "seg-2026-03-02T14:09:59.999Z"]
    following = post_metadata(
        sim, token, {"segmentEndTime": "2026-03-02 14:10:00", "timeInterval": 600, "timeZone": "UTC"}
    )
    assert _ids(following.json()) == ["seg-2026-03-02T14:10:00.000Z"]


def test_segment_end_time_is_wall_clock_in_time_zone(make_simulator):
    sim = make_simulator(calls_per_hour=0)
    _inject(sim, "2026-03-02T09:00:00.000Z", "2026-03-02T14:00:00.000Z")
    token = login(sim.url)["accessToken"]
    body = {"segmentEndTime": "2026-03-02 09:00:00", "timeInterval": 60, "timeZone": "US/Eastern"}
    assert _ids(post_metadata(sim, token, body).json()) == ["seg-2026-03-02T14:00:00.000Z"]
    body["timeZone"] = "America/New_York"
    assert _ids(post_metadata(sim, token, body).json()) == ["seg-2026-03-02T14:00:00.000Z"]


def test_dst_gap_shifts_forward_like_java(make_simulator):
    # 2026-03-08 02:30 does not exist in US/Eastern; Java reads it as 03:30 EDT = 07:30Z.
    sim = make_simulator(calls_per_hour=0)
    _inject(sim, "2026-03-08T07:29:59.999Z", "2026-03-08T07:30:00.000Z", "2026-03-08T07:39:59.999Z")
    token = login(sim.url)["accessToken"]
    body = {"segmentEndTime": "2026-03-08 02:30:00", "timeInterval": 600, "timeZone": "US/Eastern"}
    assert _ids(post_metadata(sim, token, body).json()) == [
        "seg-2026-03-08T07:30:00.000Z",
        "seg-2026-03-08T07:39:59.999Z",
    ]


def test_dst_overlap_takes_the_earlier_offset(make_simulator):
    # 2026-11-01 01:30 happens twice in US/Eastern; the earlier one (EDT) is 05:30Z, the later 06:30Z.
    sim = make_simulator(calls_per_hour=0)
    _inject(sim, "2026-11-01T05:30:00.000Z", "2026-11-01T06:30:00.000Z")
    token = login(sim.url)["accessToken"]
    body = {"segmentEndTime": "2026-11-01 01:30:00", "timeInterval": 600, "timeZone": "US/Eastern"}
    assert _ids(post_metadata(sim, token, body).json()) == ["seg-2026-11-01T05:30:00.000Z"]


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        ({"timeInterval": 600, "timeZone": "UTC"}, "segmentEndTime"),
        ({"segmentEndTime": "2026-03-02T14:00:00", "timeInterval": 600, "timeZone": "UTC"}, "segmentEndTime"),
        ({"segmentEndTime": "2026-02-30 14:00:00", "timeInterval": 600, "timeZone": "UTC"}, "segmentEndTime"),
        ({"segmentEndTime": "2026-03-02 14:00:00", "timeZone": "UTC"}, "timeInterval"),
        ({"segmentEndTime": "2026-03-02 14:00:00", "timeInterval": 0, "timeZone": "UTC"}, "timeInterval"),
        ({"segmentEndTime": "2026-03-02 14:00:00", "timeInterval": 10801, "timeZone": "UTC"}, "timeInterval"),
        ({"segmentEndTime": "2026-03-02 14:00:00", "timeInterval": "600", "timeZone": "UTC"}, "timeInterval"),
        ({"segmentEndTime": "2026-03-02 14:00:00", "timeInterval": 1.5, "timeZone": "UTC"}, "timeInterval"),
        ({"segmentEndTime": "2026-03-02 14:00:00", "timeInterval": 600}, "timeZone"),
        ({"segmentEndTime": "2026-03-02 14:00:00", "timeInterval": 600, "timeZone": "Mars/Base"}, "timeZone"),
        ([], "body"),
    ],
)
def test_invalid_body_gives_400_errors_with_validation_errors(simulator, token, body, attribute):
    response = post_metadata(simulator, token, body)
    assert response.status_code == 400
    errors = response.json()
    validate(errors, "Errors")
    assert attribute in [e["attributeName"] for e in errors["validationErrors"]]
    assert errors["requestUri"] == simulator.metadata_path() + " - POST"
    assert errors["generalMessage"] == "The supplied data is not valid"


def test_malformed_json_body_is_400(simulator, token):
    response = requests.post(
        simulator.url + simulator.metadata_path(),
        data=b"{not json",
        headers={**bearer(token), "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    validate(response.json(), "Errors")


def test_max_interval_is_configurable(make_simulator):
    sim = make_simulator(max_interval=3600)
    token = login(sim.url)["accessToken"]
    base = {"segmentEndTime": "2026-03-02 10:00:00", "timeZone": "UTC"}
    assert post_metadata(sim, token, {**base, "timeInterval": 3600}).status_code == 200
    assert post_metadata(sim, token, {**base, "timeInterval": 3601}).status_code == 400
    default = make_simulator()
    token = login(default.url)["accessToken"]
    assert post_metadata(default, token, {**base, "timeInterval": 10800}).status_code == 200


def test_window_must_end_five_minutes_before_now(make_simulator):
    sim = make_simulator(now="2026-03-02T15:00:00Z")
    token = login(sim.url)["accessToken"]
    at_limit = {
        "segmentEndTime": "2026-03-02 14:30:00",
        "timeInterval": 1500,
        "timeZone": "UTC",
    }  # ends 14:55
    assert post_metadata(sim, token, at_limit).status_code == 200
    too_late = post_metadata(sim, token, {**at_limit, "timeInterval": 1501})
    assert too_late.status_code == 400
    validate(too_late.json(), "Errors")
    assert too_late.json()["validationErrors"][0]["attributeName"] == "segmentEndTime"


def test_segments_within_processing_delay_are_hidden(make_simulator):
    sim = make_simulator(now="2026-03-02T15:00:00Z")
    token = login(sim.url)["accessToken"]
    body = {"segmentEndTime": "2026-03-02 14:30:00", "timeInterval": 1500, "timeZone": "UTC"}
    shown = {(r["dialogId"], r["segmentId"]) for r in post_metadata(sim, token, body).json()}
    truth = sim.control.ground_truth("2026-03-02T14:30:00Z", "2026-03-02T14:55:00Z", sha256=False)
    hidden = [t for t in truth if t["processing"]]
    visible = [t for t in truth if not t["processing"]]
    assert hidden
    assert visible
    assert all(t["segmentEndTimeMs"] > "2026-03-02T14:45:00.000Z" for t in hidden)
    assert shown == {(t["dialogId"], t["segmentId"]) for t in visible}
    # once the clock moves on, they appear
    sim.control.patch_config(now="2026-03-02T16:00:00Z")
    assert len(post_metadata(sim, token, body).json()) == len(truth)


def test_processing_delay_is_configurable(make_simulator):
    sim = make_simulator(now="2026-03-02T15:00:00Z", processing_delay=0)
    token = login(sim.url)["accessToken"]
    body = {"segmentEndTime": "2026-03-02 14:30:00", "timeInterval": 1500, "timeZone": "UTC"}
    truth = sim.control.ground_truth("2026-03-02T14:30:00Z", "2026-03-02T14:55:00Z", sha256=False)
    assert len(post_metadata(sim, token, body).json()) == len(truth)


def test_budget_2_per_60s_gives_429_on_third_call(make_simulator):
    sim = make_simulator(metadata_budget="2/60,9/900", time_scale=60)  # a minute lasts 1 s
    token = login(sim.url)["accessToken"]
    statuses = [post_metadata(sim, token, SMALL).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = post_metadata(sim, token, SMALL)
    assert limited.status_code == 429
    validate(limited.json(), "Errors")
    assert int(limited.headers["Retry-After"]) == 1
    time.sleep(1.05)  # a simulated minute
    assert post_metadata(sim, token, SMALL).status_code == 200


def test_budget_9_per_900s(make_simulator):
    sim = make_simulator(metadata_budget="9/900", time_scale=60)
    token = login(sim.url)["accessToken"]
    statuses = [post_metadata(sim, token, SMALL).status_code for _ in range(10)]
    assert statuses == [200] * 9 + [429]


def test_both_limits_apply(make_simulator):
    sim = make_simulator(metadata_budget="2/60,3/900", time_scale=120)  # 60 s = 0.5 s, 900 s = 7.5 s
    token = login(sim.url)["accessToken"]
    assert [post_metadata(sim, token, SMALL).status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(0.55)
    assert post_metadata(sim, token, SMALL).status_code == 200
    assert post_metadata(sim, token, SMALL).status_code == 429  # 1 call in the last minute: the 15-min limit


def test_budget_is_per_sub_account(make_simulator):
    sim = make_simulator(metadata_budget="2/60", sub_account_ids="99999999,88888888", time_scale=1)
    token = login(sim.url)["accessToken"]
    assert [post_metadata(sim, token).status_code for _ in range(3)] == [200, 200, 429]
    assert post_metadata(sim, token, sub="88888888").status_code == 200


def test_retry_after_can_be_omitted_or_a_date(make_simulator):
    off = make_simulator(metadata_budget="1/60", retry_after="off")
    token = login(off.url)["accessToken"]
    post_metadata(off, token)
    assert "Retry-After" not in post_metadata(off, token).headers
    dated = make_simulator(metadata_budget="1/60", retry_after="date")
    token = login(dated.url)["accessToken"]
    post_metadata(dated, token)
    header = post_metadata(dated, token).headers["Retry-After"]
    assert parsedate_to_datetime(header).timestamp() > time.time() + 30


def test_budget_can_change_at_runtime(simulator, token):
    simulator.control.patch_config(metadata_budget="1/60")
    assert [post_metadata(simulator, token).status_code for _ in range(2)] == [200, 429]
    simulator.control.patch_config(metadata_budget="off")
    assert post_metadata(simulator, token).status_code == 200


def test_variant_segment_id_capital_d(make_simulator):
    sim = make_simulator(segment_id_field="segmentID")
    rows = post_metadata(sim, login(sim.url)["accessToken"]).json()
    assert all("segmentID" in r and "segmentId" not in r for r in rows)


def test_variant_numeric_ids(make_simulator):
    sim = make_simulator(numeric_ids=True)
    row = post_metadata(sim, login(sim.url)["accessToken"]).json()[0]
    assert row["subAccountId"] == 99999999
    assert isinstance(row["segmentParticipantId"], int)
    assert isinstance(row["dialogId"], str)


def test_variant_null_fields(make_simulator):
    sim = make_simulator(null_fields=True)
    rows = post_metadata(sim, login(sim.url)["accessToken"]).json()
    validate(rows, "WEMInteractionSegmentMetaData2Array")
    assert all(r["segmentEvents"] is None and r["systemDisposition"] is None for r in rows)


def test_variant_extra_fields_point_at_the_recording(make_simulator):
    sim = make_simulator(extra_fields=True)
    token = login(sim.url)["accessToken"]
    rows = post_metadata(sim, token).json()
    validate(rows, "WEMInteractionSegmentMetaData2Array")
    row = next(r for r in rows if r["hasRecording"])
    assert row["interactionRecordingLocation"].endswith(".WAV")
    audio = requests.get(row["segmentRecordingURL"], headers=bearer(token), timeout=10)
    assert audio.status_code == 200
    assert audio.content[:4] == b"RIFF"


def test_digital_segments_have_null_events_and_no_recording(make_simulator):
    sim = make_simulator(digital_share=1.0)
    rows = post_metadata(sim, login(sim.url)["accessToken"]).json()
    validate(rows, "WEMInteractionSegmentMetaData2Array")
    assert all(r["channelClass"] == "DIGITAL" and r["segmentEvents"] is None for r in rows)
    assert not any(r["hasRecording"] for r in rows)


@pytest.mark.parametrize("shape", ["errors", "access_denied"])
def test_wrong_sub_account_is_403_in_the_configured_shape(make_simulator, shape):
    sim = make_simulator(forbidden_shape=shape)
    response = post_metadata(sim, login(sim.url)["accessToken"], sub="12345")
    assert response.status_code == 403
    body = response.json()
    validate(body, "Errors")
    if shape == "access_denied":
        assert body["errorCode"] == "access.denied.exception"
    else:
        assert body["developerMessage"] == "Access is denied."


def test_injected_rows_can_override_fields(make_simulator):
    sim = make_simulator(calls_per_hour=0)
    sim.control.add_segments(
        [
            {
                "dialogId": "d1",
                "segmentId": "s1",
                "segmentEndTimeMs": "2026-03-02T14:00:01Z",
                "fields": {"segmentRecordingURL": "x", "agentNotes": None},
            }
        ]
    )
    row = post_metadata(sim, login(sim.url)["accessToken"]).json()[0]
    assert row["segmentRecordingURL"] == "x"
    assert row["agentNotes"] is None
