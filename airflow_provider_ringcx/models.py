"""Typed records that travel between the hook, the operators and the report.

``SegmentRecord`` is one row of ``interaction-metadata``, parsed leniently: both ``segmentId`` and
``segmentID``, numeric ids, null ``segmentEvents``/``systemDisposition`` and v2 field names are accepted,
and the raw row is kept whole (extra fields included) for the sidecar and the manifest. A null, missing or
unrecognised ``hasRecording`` counts as *has a recording*: the recording is then requested, and a 404 is
reported as ``missing``, whereas guessing "no recording" would drop it from the archive without a trace. A row
is unparseable (and listed as such in the window report, with the reason) when it has no usable dialog or
segment id, an unreadable time, or - if it may have a recording - neither a start nor an end time.

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
    """One batch of a window manifest, as it travels through XCom (about 700 bytes with RingCX's long ids).

    The download task reads the batch's rows with one ranged GET of ``range`` (``[start, end)`` bytes),
    pinned with ``If-Match: manifest_etag`` (and ``VersionId=manifest_version`` in a versioned bucket), and
    checks them against ``sha256`` (hex SHA-256 of the range, as written), then ``count``, ``first`` and
    ``last`` (``[dialog_id, segment_id]``). ``ends`` holds the earliest and latest segment end (ISO-8601)
    for the task's label, or is empty.
    """

    manifest_key: str
    index: int
    count: int
    range: list[int]
    first: list[str]
    last: list[str]
    ends: list[str]
    sha256: str
    manifest_etag: str | None
    manifest_version: str | None


def _first(item: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = item.get(name)
        if value is not None:
            return value
    return None


def printable(value: Any) -> str:
    """``value`` as text safe for a log line: control and other non-printable characters (newlines, ESC,
    bidi controls) are shown escaped (``\\n``, ``\\x1b``), so a hostile id cannot forge or hide log lines;
    printable unicode is kept."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


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


def iso(moment: datetime) -> str:
    """``moment`` as ISO-8601 UTC with ``Z``, at the precision it has (``2026-03-02T14:00:00Z``,
    ``...T14:00:00.123456Z``): the one formatter of windows, reports, rollups and messages.
    :func:`format_timestamp` is the compact form of manifests and sidecars (milliseconds at most)."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def format_timestamp(value: datetime | None) -> str | None:
    """Format an aware datetime as compact ISO-8601 UTC (``2026-03-02T14:01:40Z``, ms kept when non-zero)."""
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


_JSON_TYPES = {dict: "object", list: "array", bool: "boolean"}


def _as_id(value: Any, attribute: str) -> str:
    if value is None:
        raise ValueError(f"{attribute} is missing or null")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        kind = _JSON_TYPES.get(type(value), type(value).__name__)
        raise ValueError(f"{attribute} is a JSON {kind} ({_short(value)}), not a string or a whole number")
    if not value.strip():
        raise ValueError(f"{attribute} is empty")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"{attribute} {_short(value)} is not valid Unicode (it holds a lone UTF-16 surrogate), so "
                "the recording cannot be requested by it"
            ) from None
    return value


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _timestamp(item: Mapping[str, Any], attribute: str) -> datetime | None:
    """The first non-null of the attribute's field names, parsed; the error names the field."""
    for name in _ALIASES[attribute]:
        value = item.get(name)
        if value is None:
            continue
        try:
            return parse_timestamp(value)
        except (ValueError, TypeError, OverflowError, OSError):
            raise ValueError(
                f"{name}={_short(value)} is not a timestamp (ISO-8601 or epoch milliseconds)"
            ) from None
    return None


def _lenient_timestamp(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError, OverflowError, OSError):
        return None


def _has_recording(value: Any) -> bool:
    """``hasRecording``: only an explicit false (``false``, ``0``, ``"false"``, ``"no"``) means no recording.

    Null, missing or anything unrecognised counts as true: the recording is requested, so that a vendor
    row that lost the flag is archived (or reported as ``missing`` on a 404) instead of dropped silently.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "n", "f")
    return True


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
            kind = _JSON_TYPES.get(type(item), type(item).__name__)
            raise RingCXBadPayloadError(
                f"metadata row is a JSON {kind}, not an object; check the RingCX API URL and path (the "
                f"endpoint must return an array of segment objects): {_excerpt(item)}"
            )
        has_recording = _has_recording(item.get("hasRecording"))
        try:
            dialog_id = _as_id(_first(item, _ALIASES["dialog_id"]), "dialogId")
            segment_id = _as_id(_first(item, _ALIASES["segment_id"]), "segmentId")
            start = _timestamp(item, "segment_start")
            end = _timestamp(item, "segment_end")
            if start is None and end is None and has_recording:
                raise ValueError(
                    "no segmentStartTimeMs nor segmentEndTimeMs: the recording cannot be placed in a window "
                    "or an S3 partition"
                )
            duration = _first(item, _ALIASES["duration_ms"])
            try:
                if duration is None and item.get("segmentDuration") is not None:  # legacy: seconds
                    duration = float(item["segmentDuration"]) * 1000
                duration_ms = int(duration) if duration is not None else None
            except (ValueError, TypeError, OverflowError):
                raise ValueError(f"segmentDurationMs={_short(duration)} is not a number") from None
            raw_events = item.get("segmentEvents")
            events = tuple(
                SegmentEvent(  # informational only: an unreadable event time never blocks the recording
                    event_type=str(event.get("eventType")),
                    event_time=_lenient_timestamp(event.get("eventTimeMs")),
                    client_event_time=_lenient_timestamp(event.get("clientEventTimeMs")),
                )
                for event in (raw_events if isinstance(raw_events, list) else ())
                if isinstance(event, Mapping)
            )
            sub_account = item.get("subAccountId")
            interaction = _first(item, _ALIASES["interaction_id"])
        except (ValueError, TypeError, OverflowError) as err:
            raise RingCXBadPayloadError(
                f"metadata row cannot be parsed: {err}; not archived, listed in the window report as "
                f"unparseable - report the row to RingCentral support: {_excerpt(item)}"
            ) from None
        return cls(
            dialog_id=dialog_id,
            segment_id=segment_id,
            sub_account_id=None if sub_account is None else str(sub_account),
            interaction_id=None if interaction is None else str(interaction),
            segment_start=start,
            segment_end=end,
            duration_ms=duration_ms,
            has_recording=has_recording,
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
