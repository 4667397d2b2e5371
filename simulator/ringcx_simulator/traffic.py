"""Deterministic call traffic.

Traffic is generated per ``(sub-account, UTC hour)`` bucket with an RNG seeded by ``(seed, sub-account,
hour)``: the bucket holds exactly ``calls_per_hour`` dialogs *starting* in that hour. Any window is
therefore cheap to compute (only the buckets that can hold segments ending in it are generated) and every
run with the same knobs produces the same dialogs, ids, durations, agents, dispositions and events.

A dialog is an IVR/queue wait, then one agent segment, then with probability ``transfer_share`` a transfer
to another agent (up to 4 segments). Each segment's random draws are taken in a fixed order whatever the
share knobs are, so changing ``mono_share`` (say) does not change ids or times.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ringcx_simulator.config import SimConfig, parse_instant

HOUR_MS = 3_600_000
MAX_SEGMENTS = 4
_WAIT_S = (2.0, 45.0)
_GAP_S = (1.0, 6.0)
_WRAP_S = (0.0, 3.0)
_DISPOSITIONS = ("Success", "Resolved", "Callback Requested", "No Sale", "Escalated")
_NOTES = ("", "", "resolved billing question", "follow-up needed", "customer satisfied")
_DIGITAL_TYPES = ("EMAIL", "SMS", "ENGAGE_MESSAGING", "MESSENGER")


@dataclass(frozen=True)
class Segment:
    """One agent segment of a dialog: everything the metadata row and the recording are made from."""

    sub_account_id: str
    dialog_id: str
    segment_id: str
    interaction_id: str
    channel_id: str
    channel_type: str
    channel_class: str
    channel_endpoint: str
    contact_endpoint: str
    origination: str
    dialog_start_ms: int
    dialog_end_ms: int
    start_ms: int
    end_ms: int
    participant_id: str
    rc_extension_id: str
    agent_group_id: str
    system_disposition: str | None
    agent_disposition: str
    agent_notes: str
    has_recording: bool
    has_transcript: bool
    events: tuple[tuple[int, str], ...] | None
    channels: int
    restricted: bool
    segment_type: str = "AGENT"
    injected: bool = False
    bulk: bool = False  # a bulk segment (``bulk.py``): its recording shares one tone with the others
    overrides: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def key(self) -> tuple[str, str]:
        return (self.dialog_id, self.segment_id)


def iso_ms(epoch_ms: int) -> str:
    """``2026-03-02T14:01:40.000Z`` (the vendor's timestamp format; ``time.gmtime``: twice as fast as a
    ``datetime``, and a metadata row holds eight of these)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(epoch_ms // 1000)) + f"{epoch_ms % 1000:03d}Z"


#: The knobs that change generated traffic; a generator is rebuilt when any of them changes.
#: The fixed fields of a synthetic inbound voice segment (injected and bulk segments share them).
INBOUND_VOICE: dict[str, Any] = {
    "channel_id": "2013770791",
    "channel_type": "VOICE",
    "channel_class": "VOICE",
    "channel_endpoint": "7312066731",
    "contact_endpoint": "2013770791",
    "origination": "INBOUND",
    "system_disposition": "ANSWER",
    "agent_disposition": "Success",
    "has_transcript": False,
}

TRAFFIC_KNOBS = [
    "seed",
    "calls_per_hour",
    "traffic_start",
    "traffic_end",
    "min_duration",
    "max_duration",
    "duration_scale",
    "transfer_share",
    "mono_share",
    "no_recording_share",
    "restricted_share",
    "digital_share",
    "malformed_events_share",
    "agents",
]


#: The malformed segmentEvents lists (``malformed_events_share``), chosen by the leg's misc draw: each breaks
#: one documented rule ("ordered, non-overlapping, begins with REC_START").
MALFORMED_EVENTS = ("unpaired_start", "out_of_order", "duplicate", "begins_with_stop", "unknown_type")


def malformed_events(start: int, end: int, pick: int) -> tuple[tuple[int, str], ...]:
    """A deterministic malformed ``segmentEvents`` list of a recorded leg (see :data:`MALFORMED_EVENTS`)."""
    kind = MALFORMED_EVENTS[pick % len(MALFORMED_EVENTS)]
    middle = start + (end - start) // 2
    return {
        "unpaired_start": ((start, "REC_START"),),
        "out_of_order": (
            (middle, "REC_START"),
            (end, "REC_STOP"),
            (start, "REC_START"),
            (middle - 1, "REC_STOP"),
        ),
        "duplicate": ((start, "REC_START"), (start, "REC_START"), (end, "REC_STOP")),
        "begins_with_stop": ((start, "REC_STOP"), (start + 1, "REC_START"), (end, "REC_STOP")),
        "unknown_type": ((start, "REC_START"), (middle, "REC_HOLD"), (end, "REC_STOP")),
    }[kind]


def traffic_signature(config: SimConfig) -> tuple[Any, ...]:
    return tuple(getattr(config, name) for name in TRAFFIC_KNOBS)


class TrafficGenerator:
    """Generates and caches hour buckets for one traffic signature.

    :param config: the knobs listed in :data:`TRAFFIC_KNOBS` are read once.
    :param cache_size: buckets kept in memory (LRU).
    """

    def __init__(self, config: SimConfig, cache_size: int = 256) -> None:
        self.config = config
        self.signature = traffic_signature(config)
        self._cache: OrderedDict[tuple[str, int], tuple[Segment, ...]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._start_ms = int(parse_instant(config.traffic_start).timestamp() * 1000)
        self._end_ms = (
            int(parse_instant(config.traffic_end).timestamp() * 1000) if config.traffic_end else None
        )
        scale = config.duration_scale
        span_s = (_WAIT_S[1] + MAX_SEGMENTS * (config.max_duration + _GAP_S[1]) + _WRAP_S[1]) * scale
        self.lookback_hours = max(1, math.ceil(span_s * 1000 / HOUR_MS))

    def bucket(self, sub_account_id: str, hour: int) -> tuple[Segment, ...]:
        """All segments of dialogs starting in UTC hour ``hour`` (epoch hours)."""
        key = (sub_account_id, hour)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        segments = tuple(self._generate(sub_account_id, hour))
        with self._lock:
            self._cache[key] = segments
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return segments

    def segments_ending(self, sub_account_id: str, start_ms: int, end_ms: int) -> list[Segment]:
        """Segments with ``start_ms <= end < end_ms``, sorted by end time then ids."""
        if end_ms <= start_ms:
            return []
        first = start_ms // HOUR_MS - self.lookback_hours
        last = (end_ms - 1) // HOUR_MS
        found = [
            segment
            for hour in range(first, last + 1)
            for segment in self.bucket(sub_account_id, hour)
            if start_ms <= segment.end_ms < end_ms
        ]
        found.sort(key=lambda s: (s.end_ms, s.dialog_id, s.segment_id))
        return found

    def find(self, sub_account_id: str, dialog_id: str, segment_id: str) -> Segment | None:
        """Look a generated segment up by ids (the dialog id ends in its start epoch-ms)."""
        tail = dialog_id.rsplit("-", 1)[-1]
        if not tail.isdigit():
            return None
        hour = int(tail) // HOUR_MS
        for segment in self.bucket(sub_account_id, hour):
            if segment.dialog_id == dialog_id and segment.segment_id == segment_id:
                return segment
        return None

    # -- generation ---------------------------------------------------------------------------------
    def _generate(self, sub_account_id: str, hour: int) -> list[Segment]:
        config = self.config
        rng = random.Random(f"{config.seed}|{sub_account_id}|{hour}")
        starts = sorted(hour * HOUR_MS + rng.randrange(HOUR_MS) for _ in range(config.calls_per_hour))
        segments: list[Segment] = []
        for index, start_ms in enumerate(starts):
            dialog = self._dialog(rng, sub_account_id, start_ms, index)
            if start_ms < self._start_ms or (self._end_ms is not None and start_ms >= self._end_ms):
                continue
            segments.extend(dialog)
        return segments

    def _duration_ms(self, rng: random.Random, low: float, high: float) -> int:
        return max(1, round(rng.uniform(low, high) * self.config.duration_scale * 1000))

    def _agent_seconds(self, rng: random.Random) -> float:
        config = self.config
        raw = rng.lognormvariate(math.log(150.0), 0.8)
        return min(config.max_duration, max(config.min_duration, raw))

    def _dialog(self, rng: random.Random, sub: str, start_ms: int, index: int) -> list[Segment]:
        config = self.config
        hexid = f"{rng.getrandbits(128):032x}"
        digital = rng.random() < config.digital_share
        inbound = rng.random() < 0.7
        ani = str(rng.randrange(2_000_000_000, 9_999_999_999))
        dnis = str(rng.randrange(2_000_000_000, 9_999_999_999))
        stamp = datetime.fromtimestamp(start_ms / 1000, tz=timezone.utc).strftime("%Y%m%d%H%M%S")
        interaction_id = f"{stamp}{rng.randrange(10**16):016d}"
        if digital:
            dialog_id = f"d-{hexid[:24]}-{start_ms}"
            channel_type = _DIGITAL_TYPES[rng.randrange(len(_DIGITAL_TYPES))]
            channel_id = hexid[8:32]
        else:
            dialog_id = f"s-v-{hexid}-{start_ms}"
            channel_type = "VOICE"
            channel_id = dnis if inbound else ani
        cursor = start_ms + self._duration_ms(rng, *_WAIT_S)
        previous_agent = -1
        legs: list[dict[str, Any]] = []
        for number in range(1, MAX_SEGMENTS + 1):
            agent = rng.randrange(config.agents)
            if agent == previous_agent:
                agent = (agent + 1) % config.agents
            previous_agent = agent
            seconds = self._agent_seconds(rng)
            duration_ms = max(1, round(seconds * config.duration_scale * 1000))
            draws = [rng.random() for _ in range(6)]  # recording, mono, restricted, pause, transcript, misc
            legs.append(
                {"agent": agent, "start": cursor, "end": cursor + duration_ms, "draws": draws, "n": number}
            )
            transfer = rng.random() < config.transfer_share
            gap_ms = self._duration_ms(rng, *_GAP_S)
            if not transfer:
                break
            cursor += duration_ms + gap_ms
        dialog_end = legs[-1]["end"] + self._duration_ms(rng, *_WRAP_S)
        closing = _DISPOSITIONS[rng.randrange(len(_DISPOSITIONS))]
        notes = _NOTES[rng.randrange(len(_NOTES))]
        result = []
        for leg in legs:
            d_rec, d_mono, d_restricted, d_pause, d_transcript, _ = leg["draws"]
            has_recording = not digital and d_rec >= config.no_recording_share
            seg_start, seg_end = leg["start"], leg["end"]
            if digital:
                segment_id = f"d-{hexid[:24]}-{hexid[8:24]}{seg_start % 16**8:08x}"
            else:
                segment_id = f"p-v-{hexid}-{start_ms}-{seg_start:011x}{leg['n']:02d}"
            events: tuple[tuple[int, str], ...] | None
            if digital:
                events = None
            elif not has_recording:
                events = ()
            elif d_pause < 0.1 and seg_end - seg_start >= 10:
                span = seg_end - seg_start
                events = (
                    (seg_start, "REC_START"),
                    (seg_start + span * 4 // 10, "REC_STOP"),
                    (seg_start + span * 5 // 10, "REC_START"),
                    (seg_end, "REC_STOP"),
                )
            elif d_pause < 0.1 + config.malformed_events_share and seg_end - seg_start >= 10:
                events = malformed_events(seg_start, seg_end, int(leg["draws"][5] * len(MALFORMED_EVENTS)))
            else:
                events = ((seg_start, "REC_START"), (seg_end, "REC_STOP"))
            last = leg is legs[-1]
            agent = leg["agent"]
            result.append(
                Segment(
                    sub_account_id=sub,
                    dialog_id=dialog_id,
                    segment_id=segment_id,
                    interaction_id=interaction_id,
                    channel_id=channel_id,
                    channel_type=channel_type,
                    channel_class="DIGITAL" if digital else "VOICE",
                    channel_endpoint=ani,
                    contact_endpoint=dnis,
                    origination="INBOUND" if inbound or digital else "OUTBOUND",
                    dialog_start_ms=start_ms,
                    dialog_end_ms=dialog_end,
                    start_ms=seg_start,
                    end_ms=seg_end,
                    participant_id=str(449400 + agent),
                    rc_extension_id=str(985900004 + agent * 1000),
                    agent_group_id=str(76873 + agent % 4),
                    system_disposition=None if digital else "ANSWER",
                    agent_disposition=closing if last else "Transferred",
                    agent_notes=notes if last else "",
                    has_recording=has_recording,
                    has_transcript=d_transcript < 0.5,
                    events=events,
                    channels=1 if d_mono < config.mono_share else 2,
                    restricted=has_recording and d_restricted < config.restricted_share,
                )
            )
        return result
