"""interaction-metadata: request validation, the window rule and vendor-shaped rows.

**Boundary rule.** ``segmentEndTime`` is a wall-clock time in ``timeZone``; it is converted to an instant
the way Java's ``ZonedDateTime.of(LocalDateTime, ZoneId)`` does: a time inside a DST *gap* is shifted
forward by the gap (02:30 on a spring-forward night becomes 03:30 daylight time), a time inside an
*overlap* takes the earlier offset (the first 01:30 of a fall-back night). The window is then the
half-open interval of instants ``[start, start + timeInterval s)``, and a segment belongs to it iff
``start <= segmentEndTimeMs < start + timeInterval`` (compared in epoch milliseconds). Consecutive windows
therefore never share or drop a segment.

Other rules: every field is required; ``timeInterval`` is an integer in ``1..max_interval``; a window whose
end is later than ``now - min_window_age`` is rejected (400, ``segmentEndTime``); segments that ended less
than ``processing_delay`` ago are left out (and their recordings answer 404) until they are processed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ringcx_simulator.config import SimConfig
from ringcx_simulator.errors import validation_error
from ringcx_simulator.traffic import Segment, iso_ms

_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_OFFSET_RE = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")
#: An injected segment's override value that removes the field from its row (spec key ``omit``).
OMITTED: Any = object()
_NUMERIC_FIELDS = (
    "subAccountId",
    "interactionId",
    "channelId",
    "segmentParticipantId",
    "segmentParticipantRcExtensionId",
    "segmentAgentGroupId",
)


@dataclass(frozen=True)
class MetadataQuery:
    start: datetime  # aware UTC
    interval: int  # seconds
    time_zone: str

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.interval * 1000


def zone(name: str) -> tzinfo:
    """An IANA zone (``US/Eastern`` included) or a fixed offset (``+05:30``, ``UTC-3``, ``Z``).

    :raises ValueError: unknown zone.
    """
    if name in ("Z", "z"):
        return timezone.utc
    match = _OFFSET_RE.match(name)
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def resolve_local(local: datetime, tz: tzinfo) -> datetime:
    """Wall-clock ``local`` (naive) in ``tz`` as an aware UTC instant, with Java's gap/overlap rule.

    Python's ``fold=0`` already picks the earlier offset in an overlap, and in a gap it applies the offset
    from before the transition, which lands on the same instant as Java's shift forward by the gap length.
    """
    return local.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)


def parse_query(raw: bytes, config: SimConfig) -> MetadataQuery | list[dict[str, str]]:
    """Validate the request body; return the query or the ``validationErrors`` list."""
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        return [validation_error("body", "Malformed JSON request", "")]
    if not isinstance(body, dict):
        return [validation_error("body", "Request body must be a JSON object", "")]
    errors: list[dict[str, str]] = []
    end_time = body.get("segmentEndTime")
    interval = body.get("timeInterval")
    zone_name = body.get("timeZone")
    local: datetime | None = None
    if end_time is None:
        errors.append(validation_error("segmentEndTime", "must not be null", None))
    elif not isinstance(end_time, str) or not _TIME_RE.match(end_time):
        errors.append(validation_error("segmentEndTime", "must match 'yyyy-MM-dd HH:mm:ss'", end_time))
    else:
        try:
            local = datetime.strptime(end_time, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            errors.append(validation_error("segmentEndTime", "is not a valid date-time", end_time))
    if interval is None:
        errors.append(validation_error("timeInterval", "must not be null", None))
    elif isinstance(interval, bool) or not isinstance(interval, int):
        errors.append(validation_error("timeInterval", "must be an integer number of seconds", interval))
    elif not 1 <= interval <= config.max_interval:
        errors.append(
            validation_error("timeInterval", f"must be between 1 and {config.max_interval}", interval)
        )
    tz: tzinfo | None = None
    if zone_name is None:
        errors.append(validation_error("timeZone", "must not be null", None))
    else:
        try:
            tz = zone(str(zone_name)) if isinstance(zone_name, str) else None
        except ValueError:
            tz = None
        if tz is None:
            errors.append(validation_error("timeZone", "is not a valid time zone id", zone_name))
    if errors or local is None or tz is None or not isinstance(interval, int):
        return errors
    return MetadataQuery(resolve_local(local, tz), interval, str(zone_name))


def too_recent(query: MetadataQuery, now: datetime, config: SimConfig) -> list[dict[str, str]] | None:
    """The validation error for a window ending later than ``now - min_window_age``, else ``None``."""
    latest_ms = int((now - timedelta(seconds=config.min_window_age)).timestamp() * 1000)
    if query.end_ms <= latest_ms:
        return None
    return [
        validation_error(
            "segmentEndTime",
            f"The requested window must end at least {int(config.min_window_age)} seconds before the "
            "current time",
            iso_ms(query.start_ms),
        )
    ]


def recording_path(config: SimConfig, sub_account_id: str, dialog_id: str, segment_id: str) -> str:
    """The vendor download path of a segment, ids percent-encoded."""
    return (
        f"/voice/api/cx/integration/v1/accounts/{config.rc_account_id}/sub-accounts/{quote(sub_account_id)}"
        f"/recordings/dialogs/{quote(dialog_id, safe='')}/segments/{quote(segment_id, safe='')}"
    )


def render_row(segment: Segment, config: SimConfig, base_url: str) -> dict[str, Any]:
    """One ``WEMDialogSegmentMetaData`` row, with the configured response variants applied."""
    events: list[dict[str, str]] | None = None
    if segment.events is not None:
        events = [
            {"eventTimeMs": iso_ms(at), "clientEventTimeMs": iso_ms(at), "eventType": kind}
            for at, kind in segment.events
        ]
    row: dict[str, Any] = {
        "subAccountId": segment.sub_account_id,
        "dialogId": segment.dialog_id,
        "interactionId": segment.interaction_id,
        "channelId": segment.channel_id,
        "channelType": segment.channel_type,
        "channelClass": segment.channel_class,
        "channelEndpointAddress": segment.channel_endpoint,
        "contactEndpointAddress": segment.contact_endpoint,
        "dialogOrigination": segment.origination,
        "dialogStartTimeMs": iso_ms(segment.dialog_start_ms),
        "dialogEndTimeMs": iso_ms(segment.dialog_end_ms),
        "dialogDurationMs": segment.dialog_end_ms - segment.dialog_start_ms,
        config.segment_id_field: segment.segment_id,
        "segmentType": segment.segment_type,
        "segmentParticipantId": segment.participant_id,
        "segmentParticipantRcExtensionId": segment.rc_extension_id,
        "segmentStartTimeMs": iso_ms(segment.start_ms),
        "segmentEndTimeMs": iso_ms(segment.end_ms),
        "segmentDurationMs": segment.duration_ms,
        "segmentAgentGroupId": segment.agent_group_id,
        "systemDisposition": segment.system_disposition,
        "agentDisposition": segment.agent_disposition,
        "agentNotes": segment.agent_notes,
        "hasRecording": segment.has_recording,
        "hasTranscript": segment.has_transcript,
        "segmentEvents": events,
    }
    if config.numeric_ids:
        for name in _NUMERIC_FIELDS:
            value = row.get(name)
            if isinstance(value, str) and value.isdigit():
                row[name] = int(value)
    if config.null_fields:
        row["systemDisposition"] = None
        row["segmentEvents"] = None
    if config.extra_fields:
        day = datetime.fromtimestamp(segment.dialog_start_ms / 1000, tz=timezone.utc)
        row["segmentRecordingURL"] = base_url + recording_path(
            config, segment.sub_account_id, segment.dialog_id, segment.segment_id
        )
        row["interactionRecordingLocation"] = (
            "https://c02-recordings.virtualacd.biz/api/v1/calls/recordings/?v=1"
            f"&accountId={segment.sub_account_id}&bucket=c02-recordings&region=us-east-1&compliance=false"
            f"&file={segment.sub_account_id}/{day:%Y%m}/{day:%d}/{segment.interaction_id}-1.WAV"
        )
        row["campaignId"] = "3301"
        row["campaignName"] = "Simulated campaign"
        row["productType"] = "QUEUE"
        row["productId"] = "5501"
    row.update(segment.overrides)
    for name in [name for name, value in segment.overrides.items() if value is OMITTED]:
        row.pop(name, None)
    return row
