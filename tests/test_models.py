"""Lenient parsing of interaction-metadata rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError
from airflow_provider_ringcx.models import SegmentRecord, format_timestamp, iso, parse_timestamp, printable

ROW = {
    "subAccountId": "99999999",
    "dialogId": "s-v-23eb-1772460085000",
    "interactionId": "202603020901250144700000000001",
    "segmentId": "p-v-23eb-1772460085000-19ca1b2c3d401",
    "segmentStartTimeMs": "2026-03-02T14:01:40.000Z",
    "segmentEndTimeMs": "2026-03-02T14:04:02.000Z",
    "segmentDurationMs": 142000,
    "systemDisposition": "ANSWER",
    "hasRecording": True,
    "segmentEvents": [
        {"eventTimeMs": "2026-03-02T14:01:40.000Z", "clientEventTimeMs": None, "eventType": "REC_START"}
    ],
}


def test_parses_the_documented_row():
    record = SegmentRecord.parse(ROW)
    assert record.key == ("s-v-23eb-1772460085000", "p-v-23eb-1772460085000-19ca1b2c3d401")
    assert record.segment_end == datetime(2026, 3, 2, 14, 4, 2, tzinfo=timezone.utc)
    assert record.duration_ms == 142000
    assert record.has_recording is True
    assert record.events[0].event_type == "REC_START"
    assert record.to_ref() == {
        "dialog_id": "s-v-23eb-1772460085000",
        "segment_id": "p-v-23eb-1772460085000-19ca1b2c3d401",
        "start": "2026-03-02T14:01:40Z",
        "end": "2026-03-02T14:04:02Z",
        "duration_ms": 142000,
    }


def test_lenient_variants():
    row = {k: v for k, v in ROW.items() if k != "segmentId"}
    row |= {
        "segmentID": 2,
        "dialogId": 123456,
        "subAccountId": 99999999,
        "segmentEvents": None,
        "systemDisposition": None,
        "segmentRecordingURL": "https://example.invalid/x.wav",
        "hasRecording": "true",
    }
    record = SegmentRecord.parse(row)
    assert record.key == ("123456", "2")
    assert record.sub_account_id == "99999999"
    assert record.events == ()
    assert record.has_recording is True
    assert record.raw["segmentRecordingURL"] == "https://example.invalid/x.wav"  # extra fields kept


def test_legacy_seconds_duration_and_epoch_times():
    row = {
        "dialogId": "d",
        "segmentID": "s",
        "segmentDuration": 12.5,
        "segmentContactEndTimeMs": 1772460242000,
    }
    record = SegmentRecord.parse(row)
    assert record.duration_ms == 12500
    assert record.segment_end == datetime(2026, 3, 2, 14, 4, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"segmentId": "s"}, "dialogId"),
        ({"dialogId": "d", "segmentId": ""}, "segmentId"),
        ({"dialogId": "d", "segmentId": "s", "segmentEndTimeMs": "yesterday"}, "cannot be parsed"),
        (["not", "an", "object"], "not an object"),
    ],
)
def test_unparseable_rows_name_the_row(row, message):
    with pytest.raises(RingCXBadPayloadError, match=message) as info:
        SegmentRecord.parse(row)
    assert repr(row)[:20] in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("0", False),
        (0, False),
        (1, True),
        (None, True),  # null or unrecognised: the recording is requested, never dropped
        ("", True),
        ("unknown", True),
    ],
)
def test_has_recording_only_an_explicit_false_means_none(value, expected):
    assert SegmentRecord.parse({**ROW, "hasRecording": value}).has_recording is expected
    missing = {k: v for k, v in ROW.items() if k != "hasRecording"}
    assert SegmentRecord.parse(missing).has_recording is True


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dialogId": None}, "dialogId is missing or null"),
        ({"dialogId": {"id": 1}}, "dialogId is a JSON object ({'id': 1}), not a string or a whole number"),
        ({"segmentId": "  "}, "segmentId is empty"),
        ({"segmentId": "p-\udc00"}, "segmentId 'p-\\udc00' is not valid Unicode"),
        ({"segmentStartTimeMs": "soon"}, "segmentStartTimeMs='soon' is not a timestamp"),
        ({"segmentDurationMs": "long"}, "segmentDurationMs='long' is not a number"),
        (
            {"segmentStartTimeMs": None, "segmentEndTimeMs": None},
            "no segmentStartTimeMs nor segmentEndTimeMs",
        ),
    ],
)
def test_unparseable_reasons_name_the_field(changes, message):
    with pytest.raises(RingCXBadPayloadError) as info:
        SegmentRecord.parse({**ROW, **changes})
    assert str(info.value).startswith(f"metadata row cannot be parsed: {message}")
    assert "report the row to RingCentral support" in str(info.value)


def test_lenient_about_what_the_recording_does_not_need():
    row = {
        **ROW,
        "segmentStartTimeMs": None,
        "segmentEvents": [{"eventType": "REC_START", "eventTimeMs": "x"}],
    }
    record = SegmentRecord.parse(row)
    assert record.segment_start is None  # partitioned by its end instead
    assert record.events[0].event_time is None
    no_times = {**ROW, "segmentStartTimeMs": None, "segmentEndTimeMs": None, "hasRecording": False}
    assert SegmentRecord.parse(no_times).has_recording is False  # nothing to place: not an error


def test_timestamp_helpers():
    assert parse_timestamp(None) is None
    assert parse_timestamp("2026-03-02T09:00:00-05:00") == datetime(2026, 3, 2, 14, tzinfo=timezone.utc)
    assert (
        format_timestamp(datetime(2026, 3, 2, 14, 0, 0, 500000, tzinfo=timezone.utc))
        == "2026-03-02T14:00:00.500Z"
    )
    with pytest.raises(ValueError):
        parse_timestamp(True)


def test_printable_escapes_what_could_forge_or_hide_a_log_line() -> None:
    assert printable("d-1/s-2") == "d-1/s-2"
    assert printable("caf\u00e9 \u901a\u8a71") == "caf\u00e9 \u901a\u8a71"  # printable unicode is kept
    forged = "x\n2026-03-02 [INFO] archived \x1b[2K\u202e"
    assert printable(forged) == "x\\n2026-03-02 [INFO] archived \\x1b[2K\\u202e"
    assert "\n" not in printable(forged)


def test_iso_is_the_one_utc_formatter_and_parse_timestamp_reads_it_back() -> None:
    """What the windows, reports, rollups and messages wrote before ``iso`` (the same string)."""
    moment = datetime(2026, 3, 2, 14, 15, tzinfo=timezone.utc)
    assert iso(moment) == "2026-03-02T14:15:00Z"
    assert iso(moment.replace(microsecond=123456)) == "2026-03-02T14:15:00.123456Z"
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    assert iso(plus_two) == "2026-03-02T14:15:00Z"  # any zone, written in UTC
    assert iso(moment) == moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    assert parse_timestamp(iso(moment)) == moment
    assert parse_timestamp("2026-03-02T16:15:00+02:00") == moment
