"""Typed records that travel between the hook, the operators and the report.

``SegmentRecord`` is one row of ``interaction-metadata``, parsed leniently: both ``segmentId`` and
``segmentID``, numeric ids, null ``segmentEvents``/``systemDisposition`` and v2 field names are accepted,
and the raw row is kept whole (extra fields included) for the sidecar and the manifest.

``SegmentRef`` is the compact form of one segment (a few short fields). ``ManifestBatch`` is what goes
through XCom from the metadata task to each mapped download task: not the refs themselves but where they lie
in the window manifest (a byte range), so the XCom stays a few hundred bytes per batch whatever the window's
size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypedDict

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError

#: Field names accepted for each attribute, v1 spelling first, then documented variants (v2 draft, REPORTS).
_ALIASES: dict[str, tuple[str, ...]] = {
    "dialog_id": ("dialogId", "dialogID"),
    "segment_id": ("segmentId", "segmentID"),
    "sub_account_id": ("subAccountId",),
    "interaction_id": ("interactionId", "uii"),
    "segment_start": ("segmentStartTimeMs", "segmentContactStartTimeMs", "interactionStartTimeMs"),
    "segment_end": ("segmentEndTimeMs", "segmentContactEndTimeMs", "interactionEndTimeMs"),
    "duration_ms": ("segmentDurationMs",),
}


class SegmentRef(TypedDict):
    """The compact reference of one segment, as it travels through XCom."""

    dialog_id: str
    segment_id: str
    start: str | None  # ISO-8601 UTC, e.g. "2026-03-02T14:01:40Z"
    end: str | None
    duration_ms: int | None


class ManifestBatch(TypedDict):
    """One batch of a window manifest, as it travels through XCom (about 500 bytes with RingCX's long ids).

    The download task reads the batch's rows with one ranged GET of ``range`` (``[start, end)`` bytes) and
    checks them against ``count``, ``first`` and ``last`` (``[dialog_id, segment_id]``). ``ends`` holds the
    earliest and latest segment end (ISO-8601) for the task's label, or is empty.
    """

    manifest_key: str
    index: int
    count: int
    range: list[int]
    first: list[str]
    last: list[str]
    ends: list[str]


def _first(item: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = item.get(name)
        if value is not None:
            return value
    return None


def parse_timestamp(value: Any) -> datetime | None:
    """Parse a vendor timestamp: ISO-8601 string (``...Z`` or offset) or epoch milliseconds.

    :param value: the raw value; ``None`` and ``""`` give ``None``.
    :raises ValueError: the value is neither.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    raise ValueError(f"not a timestamp: {type(value).__name__}")


def format_timestamp(value: datetime | None) -> str | None:
    """Format an aware datetime as compact ISO-8601 UTC (``2026-03-02T14:01:40Z``, ms kept when non-zero)."""
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _as_id(value: Any, attribute: str) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{attribute} is missing")
    if isinstance(value, (int, float)):
        value = str(int(value))
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{attribute} is missing or empty")
    return value


@dataclass(frozen=True)
class SegmentEvent:
    """A ``segmentEvents`` entry (``REC_START`` / ``REC_STOP``)."""

    event_type: str
    event_time: datetime | None
    client_event_time: datetime | None


@dataclass(frozen=True)
class SegmentRecord:
    """One segment of an interaction, as listed by ``interaction-metadata``.

    :param raw: the vendor row exactly as received (every field, known or not), for sidecars and manifests.
    """

    dialog_id: str
    segment_id: str
    sub_account_id: str | None
    interaction_id: str | None
    segment_start: datetime | None
    segment_end: datetime | None
    duration_ms: int | None
    has_recording: bool
    events: tuple[SegmentEvent, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        """The identity of a segment: ``(dialogId, segmentId)``."""
        return (self.dialog_id, self.segment_id)

    def to_ref(self) -> SegmentRef:
        """Return the compact XCom reference of this segment."""
        return SegmentRef(
            dialog_id=self.dialog_id,
            segment_id=self.segment_id,
            start=format_timestamp(self.segment_start),
            end=format_timestamp(self.segment_end),
            duration_ms=self.duration_ms,
        )

    @classmethod
    def parse(cls, item: Any) -> SegmentRecord:
        """Parse one metadata row leniently.

        :param item: one element of the metadata array.
        :raises RingCXBadPayloadError: the row is not an object, or lacks a dialog or segment id, or has an
            unreadable timestamp. The message quotes the start of the raw row so that it can be found.
        """
        if not isinstance(item, Mapping):
            raise RingCXBadPayloadError(
                f"metadata row is a {type(item).__name__}, not an object: {_excerpt(item)}; "
                "check the RingCX API URL and path (the endpoint must return an array of segment objects)"
            )
        try:
            dialog_id = _as_id(_first(item, _ALIASES["dialog_id"]), "dialogId")
            segment_id = _as_id(_first(item, _ALIASES["segment_id"]), "segmentId")
            start = parse_timestamp(_first(item, _ALIASES["segment_start"]))
            end = parse_timestamp(_first(item, _ALIASES["segment_end"]))
            duration = _first(item, _ALIASES["duration_ms"])
            if duration is None and item.get("segmentDuration") is not None:  # legacy: seconds
                duration = float(item["segmentDuration"]) * 1000
            duration_ms = int(duration) if duration is not None else None
            events = tuple(
                SegmentEvent(
                    event_type=str(event.get("eventType")),
                    event_time=parse_timestamp(event.get("eventTimeMs")),
                    client_event_time=parse_timestamp(event.get("clientEventTimeMs")),
                )
                for event in (item.get("segmentEvents") or ())
                if isinstance(event, Mapping)
            )
            sub_account = item.get("subAccountId")
            interaction = _first(item, _ALIASES["interaction_id"])
        except (ValueError, TypeError, OverflowError) as err:
            raise RingCXBadPayloadError(
                f"metadata row cannot be parsed ({err}): {_excerpt(item)}; the row is kept in the window "
                "report as unparseable - report it to RingCentral support with the raw text"
            ) from None
        has_recording = item.get("hasRecording")
        return cls(
            dialog_id=dialog_id,
            segment_id=segment_id,
            sub_account_id=None if sub_account is None else str(sub_account),
            interaction_id=None if interaction is None else str(interaction),
            segment_start=start,
            segment_end=end,
            duration_ms=duration_ms,
            has_recording=has_recording is True or str(has_recording).lower() == "true",
            events=events,
            raw=dict(item),
        )


def _excerpt(item: Any, limit: int = 300) -> str:
    """Quote a raw row for an error message, its ids first so that the row can be found."""
    text = repr(item)
    if len(text) > limit:
        text = text[:limit] + "..."
    if isinstance(item, Mapping):
        ids = {name: item.get(name) for name in ("dialogId", "segmentId", "segmentID") if name in item}
        if ids:
            return f"{ids} in row {text}"
    return text
