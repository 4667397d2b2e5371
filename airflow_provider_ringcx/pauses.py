"""PCI pause evidence: the recorded and paused intervals of a segment, read from its ``segmentEvents``.

An agent pauses the recording while a caller reads out a card number (PCI DSS); an auditor then asks
*when was this call not recorded?* RingCX answers only through ``segmentEvents``: a list of
``{eventTimeMs, clientEventTimeMs, eventType}`` with ``eventType`` ``REC_START`` or ``REC_STOP`` (the vendor
OpenAPI's ``InteractionSegmentEvent``; "ordered, non-overlapping, begins with REC_START; null or empty when
not recorded"). There is no documented pause event: a pause is a ``REC_STOP`` followed by a ``REC_START``.
``REC_PAUSE``/``PAUSE`` and ``REC_RESUME``/``RESUME`` are accepted as spellings of the same two events, in
case a deployment sends them; nothing else is.

The evidence is only as good as the list, and a vendor list can be malformed. Guessing would be worse than
useless here (a pause invented from a stray event "proves" that card digits were not recorded), so the rule
below is explicit, named (``RULE``), and every departure from the documented shape is written into
``problems`` beside the intervals instead of being smoothed over:

======================================  ==========================================================
input                                   what the rule does (each line also adds a problem)
======================================  ==========================================================
``segmentEvents`` null / empty          no intervals (unless the caller says there is no recording)
not an array                            no intervals
an entry null / not an object           the entry is ignored
unknown ``eventType``                   the entry is ignored
no readable ``eventTimeMs``             the entry is ignored (``clientEventTimeMs`` is the agent's
                                        clock and is never used in its place)
exact duplicate (type and time)         the copy is ignored
list not in time order                  the events are sorted by ``eventTimeMs`` (stable) first
``REC_STOP`` while not recording        ignored (unpaired stop; also a list that begins with one)
``REC_START`` while recording           ignored: the recording was already on since the first start
last ``REC_START`` never stopped        the open interval is **not** listed as recorded
======================================  ==========================================================

A recorded interval is an accepted ``REC_START`` and the ``REC_STOP`` that closes it. A paused interval is an
accepted ``REC_STOP`` and the next accepted ``REC_START`` (a zero-length gap is no pause). So a pause is
listed only when both of its ends are events that the vendor sent, in order, with readable server times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from airflow_provider_ringcx.models import SegmentEvent, format_timestamp, parse_timestamp, printable

#: The name of the rule applied; stored with the evidence, so that a later, different rule is told apart.
RULE = "rec-start-stop/v1"

#: eventType spellings, mapped to the two events of the rule. Only REC_START/REC_STOP are documented.
_STARTS = frozenset({"REC_START", "REC_RESUME", "RESUME"})
_STOPS = frozenset({"REC_STOP", "REC_PAUSE", "PAUSE"})

#: At most this many problems are listed (a hostile list of 100,000 nulls must not bloat the sidecar).
MAX_PROBLEMS = 20

_JSON_KINDS = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


class _Problems:
    """The problem list, capped at ``MAX_PROBLEMS`` with a final count of the ones left out."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.dropped = 0

    def add(self, text: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(text)
        else:
            self.dropped += 1

    def done(self) -> list[str]:
        out = list(self.items)
        if self.dropped:
            out.append(f"... and {self.dropped} more problems")
        return out


def _short(value: Any, limit: int = 40) -> str:
    text = printable(repr(value))
    return text if len(text) <= limit else text[:limit] + "..."


def _read(index: int, entry: Any, problems: _Problems) -> tuple[datetime, str, int] | None:
    """One entry as ``(time, "start"|"stop", index)``, or ``None`` (with a problem) when it is ignored."""
    kind: Any
    raw_time: Any
    when: datetime | None
    if isinstance(entry, SegmentEvent):
        kind, when, raw_time = entry.event_type, entry.event_time, entry.event_time
    elif isinstance(entry, Mapping):
        kind, raw_time = entry.get("eventType"), entry.get("eventTimeMs")
        try:
            when = parse_timestamp(raw_time)
        except (ValueError, TypeError, OverflowError, OSError):
            when = None
    else:
        what = "null" if entry is None else f"a JSON {_JSON_KINDS.get(type(entry), type(entry).__name__)}"
        problems.add(f"event {index} is {what}, not an event object: ignored")
        return None
    name = kind.strip().upper() if isinstance(kind, str) else None
    if name in _STARTS:
        role = "start"
    elif name in _STOPS:
        role = "stop"
    else:
        problems.add(f"event {index} has unknown eventType {_short(kind)}: ignored")
        return None
    if when is None:
        problems.add(f"event {index} ({name}) has no readable eventTimeMs ({_short(raw_time)}): ignored")
        return None
    return when, role, index


def compute_pause_evidence(segment_events: Any, *, has_recording: bool | None = None) -> dict[str, Any]:
    """The recorded and paused intervals of one segment, by the rule ``RULE`` (see the module docstring).

    A pure function of its input (no clock, no I/O), so the sidecar and the index, computed at different
    times from the same vendor row, always agree.

    :param segment_events: the row's raw ``segmentEvents`` value as received (a list of event objects,
        ``None``, or anything else), or a sequence of parsed
        :class:`~airflow_provider_ringcx.models.SegmentEvent`.
    :param has_recording: the row's ``hasRecording`` when known. ``False`` makes a null or empty list
        expected (no problem is listed); ``None`` or ``True`` list it as a problem, since an archived
        recording without events has no evidence of when it was recorded.
    :return: JSON-ready ``{"rule", "recorded": [{"start", "end"}], "paused": [{"start", "end"}],
        "problems": [str]}`` with ISO-8601 UTC times (``2026-03-02T14:01:40Z``, ms when non-zero).
    """
    problems = _Problems()
    recorded: list[dict[str, Any]] = []
    paused: list[dict[str, Any]] = []
    if segment_events is None or (isinstance(segment_events, Sequence) and not segment_events):
        if has_recording is not False:
            state = "null" if segment_events is None else "empty"
            problems.add(f"segmentEvents is {state}: no recorded interval is known")
        return _evidence(recorded, paused, problems)
    if isinstance(segment_events, (str, bytes, Mapping)) or not isinstance(segment_events, Sequence):
        kind = _JSON_KINDS.get(type(segment_events), type(segment_events).__name__)
        problems.add(f"segmentEvents is a JSON {kind}, not an array: no recorded interval is known")
        return _evidence(recorded, paused, problems)

    events: list[tuple[datetime, str, int]] = []
    seen: set[tuple[datetime, str]] = set()
    unordered = False
    for index, entry in enumerate(segment_events):
        read = _read(index, entry, problems)
        if read is None:
            continue
        if (read[0], read[1]) in seen:
            problems.add(
                f"event {index} duplicates an earlier REC_{read[1].upper()} at "
                f"{format_timestamp(read[0])}: ignored"
            )
            continue
        seen.add((read[0], read[1]))
        if events and read[0] < events[-1][0] and not unordered:
            unordered = True
            problems.add(
                f"events are not in time order (event {index} is earlier than the one before it): "
                "sorted by eventTimeMs"
            )
        events.append(read)
    events.sort(key=lambda event: event[0])  # stable: equal times keep the vendor's order

    started: datetime | None = None
    stopped: datetime | None = None
    for when, role, index in events:
        stamp = format_timestamp(when)
        if role == "start":
            if started is not None:
                problems.add(
                    f"event {index} REC_START at {stamp} while recording since "
                    f"{format_timestamp(started)}: ignored"
                )
                continue
            if stopped is not None and when > stopped:
                paused.append({"start": format_timestamp(stopped), "end": stamp})
            started, stopped = when, None
        else:
            if started is None:
                problems.add(f"event {index} REC_STOP at {stamp} without a REC_START before it: ignored")
                continue
            recorded.append({"start": format_timestamp(started), "end": stamp})
            started, stopped = None, when
    if started is not None:
        problems.add(
            f"REC_START at {format_timestamp(started)} is never stopped: the open interval is not "
            "listed as recorded"
        )
    return _evidence(recorded, paused, problems)


def _evidence(
    recorded: list[dict[str, Any]], paused: list[dict[str, Any]], problems: _Problems
) -> dict[str, Any]:
    return {"rule": RULE, "recorded": recorded, "paused": paused, "problems": problems.done()}
