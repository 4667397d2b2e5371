"""The simulator's mutable state: current knobs, clocks, tokens, budgets, faults, injected segments, stats."""

from __future__ import annotations

import heapq
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from ringcx_simulator.audio import SAMPLE_RATE, Recording
from ringcx_simulator.auth import TokenStore
from ringcx_simulator.bulk import DIALOG_PREFIX, SEGMENT_PREFIX, BulkSegments, bulk_signature
from ringcx_simulator.clock import SimClock
from ringcx_simulator.config import SimConfig, parse_instant
from ringcx_simulator.faults import FaultInjector
from ringcx_simulator.limits import Budgets
from ringcx_simulator.metadata import OMITTED, recording_path
from ringcx_simulator.summary_data import SUMMARY_KINDS, summary_kind, summary_ready_ms
from ringcx_simulator.traffic import (
    INBOUND_VOICE,
    Segment,
    TrafficGenerator,
    iso_ms,
    traffic_signature,
)
from ringcx_simulator.transcript_data import transcript_kind, transcript_ready_ms


class Stats:
    """Request counts per route and status, 429s per route, faults per kind, bytes streamed per route."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self.faults: Counter[str] = Counter()
            self.bytes_sent: Counter[str] = Counter()

    def record(self, route: str, status: int, sent: int = 0) -> None:
        with self._lock:
            self.requests[route][str(status)] += 1
            self.bytes_sent[route] += sent

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            requests = {route: dict(counts) for route, counts in self.requests.items()}
            return {
                "requests": requests,
                "rate_limited": {r: c["429"] for r, c in self.requests.items() if c.get("429")},
                "faults": dict(self.faults),
                "bytes_sent": dict(self.bytes_sent),
            }


class SimState:
    """Everything a request handler needs. Knob changes replace :attr:`config` atomically."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock = SimClock(config.time_scale, config.now)
        self.tokens = TokenStore(self.clock)
        self.budgets = Budgets(self.clock)
        self.faults = FaultInjector(config.fault_seed)
        self.faults.set_rules(config.faults)
        self.stats = Stats()
        self._lock = threading.Lock()
        self._traffic = TrafficGenerator(config)
        self._bulk = BulkSegments(config)
        self._injected: dict[tuple[str, str, str], Segment] = {}
        self._sha: dict[tuple[Any, ...], str] = {}

    # -- knobs -------------------------------------------------------------------------------------
    def update_config(self, changes: dict[str, Any]) -> SimConfig:
        """Apply runtime knob changes (validated). :raises ValueError: bad knob or value."""
        with self._lock:
            config = self.config.replace(**changes)
            self.config = config
            self.clock.configure(config.time_scale, config.now)
            if "faults" in changes:
                self.faults.set_rules(config.faults)
            if "fault_seed" in changes:
                self.faults.reseed(config.fault_seed)
            return config

    @property
    def traffic(self) -> TrafficGenerator:
        config = self.config
        generator = self._traffic
        if generator.signature != traffic_signature(config):
            with self._lock:
                if self._traffic.signature != traffic_signature(config):
                    self._traffic = TrafficGenerator(config)
                    self._sha.clear()
                generator = self._traffic
        return generator

    @property
    def bulk(self) -> BulkSegments:
        """The bulk segments of the current knobs (``bulk.py``), rebuilt when a bulk knob changes."""
        config = self.config
        if self._bulk.signature != bulk_signature(config):
            with self._lock:
                if self._bulk.signature != bulk_signature(config):
                    self._bulk = BulkSegments(config)
        return self._bulk

    # -- segments ----------------------------------------------------------------------------------
    def segments_ending(self, sub_account_id: str, start_ms: int, end_ms: int) -> list[Segment]:
        """Every segment (generated, injected, bulk) with ``start_ms <= end < end_ms``, sorted by end time
        then ids."""
        return list(self.iter_segments_ending(sub_account_id, start_ms, end_ms))

    def iter_segments_ending(self, sub_account_id: str, start_ms: int, end_ms: int) -> Iterator[Segment]:
        """Like :meth:`segments_ending`, lazily: bulk segments are made one at a time as they are merged."""
        found = self.traffic.segments_ending(sub_account_id, start_ms, end_ms)
        with self._lock:
            extra = [
                s
                for (sub, _, _), s in self._injected.items()
                if sub == sub_account_id and start_ms <= s.end_ms < end_ms
            ]
        if extra:
            found = sorted([*found, *extra], key=_order)
        bulk = self.bulk
        if not bulk.indexes(sub_account_id, start_ms, end_ms):
            return iter(found)
        return heapq.merge(found, bulk.segments(sub_account_id, start_ms, end_ms), key=_order)

    def bulk_in_window(self, sub_account_id: str, start_ms: int, end_ms: int) -> int:
        """How many bulk segments end in the window."""
        return len(self.bulk.indexes(sub_account_id, start_ms, end_ms))

    def find_segment(self, sub_account_id: str, dialog_id: str, segment_id: str) -> Segment | None:
        bulk = self.bulk.find(sub_account_id, dialog_id, segment_id)
        if bulk is not None:
            return bulk
        with self._lock:
            injected = self._injected.get((sub_account_id, dialog_id, segment_id))
        if injected is not None:
            return injected
        return self.traffic.find(sub_account_id, dialog_id, segment_id)

    def find_segment_by_id(self, sub_account_id: str, segment_id: str) -> Segment | None:
        """A segment by its id alone (the summaries route names no dialog): an injected one, else the dialog
        id is derived from a generated voice id (``p-v-{hex}-{start}-...`` is in ``s-v-{hex}-{start}``)."""
        with self._lock:
            wanted = (sub_account_id, segment_id)
            injected = [seg for (sub, _, seg_id), seg in self._injected.items() if (sub, seg_id) == wanted]
        if injected:
            return injected[0]
        if segment_id.startswith(SEGMENT_PREFIX):
            dialog_id = DIALOG_PREFIX + segment_id[len(SEGMENT_PREFIX) :][:8]
        elif segment_id.startswith("p-v-"):
            dialog_id = "s-v-" + segment_id[len("p-v-") :].rsplit("-", 1)[0]
        else:
            return None
        return self.find_segment(sub_account_id, dialog_id, segment_id)

    def is_processing(self, segment: Segment) -> bool:
        """True while the segment ended less than ``processing_delay`` ago (hidden, audio 404)."""
        return segment.end_ms > self.processing_cutoff_ms()

    def processing_cutoff_ms(self) -> int:
        """Segments ending after this epoch-ms are still processing."""
        cutoff = self.clock.now() - timedelta(seconds=self.config.processing_delay)
        return int(cutoff.timestamp() * 1000)

    def is_restricted(self, segment: Segment) -> bool:
        """403 on download: restricted when generated/injected, or listed in ``restricted_ids``."""
        return segment.has_recording and (
            segment.restricted or segment.segment_id in self.config.restricted_ids
        )

    def add_segments(self, specs: list[dict[str, Any]]) -> list[Segment]:
        """Inject segments (see :func:`segment_from_spec`). :raises ValueError: bad spec."""
        segments = [segment_from_spec(spec, self.config) for spec in specs]
        with self._lock:
            for segment in segments:
                self._injected[(segment.sub_account_id, *segment.key)] = segment
        return segments

    def clear_segments(self) -> None:
        with self._lock:
            self._injected.clear()

    # -- recordings --------------------------------------------------------------------------------
    def recording(self, segment: Segment) -> Recording:
        config = self.config
        identity = f"{config.seed}|{segment.sub_account_id}|{segment.dialog_id}|{segment.segment_id}"
        tone = f"{config.seed}|bulk" if segment.bulk else None
        duration_ms = round(segment.duration_ms * config.audio_duration_share)  # 1.0 = the metadata's
        return Recording(identity, duration_ms, segment.channels, config.agent_channel, tone)

    def sha256(self, segment: Segment) -> tuple[int, str]:
        """``(size, sha256)`` of the segment's recording, cached."""
        recording = self.recording(segment)
        key = (self.config.seed, self.config.agent_channel, segment.sub_account_id, *segment.key,
               segment.duration_ms, segment.channels, segment.bulk,
               self.config.audio_duration_share)  # fmt: skip
        digest = self._sha.get(key)
        if digest is None:
            digest = recording.sha256()
            self._sha[key] = digest
        return recording.size, digest

    def ground_truth(self, segment: Segment, with_sha: bool = True) -> dict[str, Any]:
        config = self.config
        entry: dict[str, Any] = {
            "dialogId": segment.dialog_id,
            "segmentId": segment.segment_id,
            "subAccountId": segment.sub_account_id,
            "segmentStartTimeMs": iso_ms(segment.start_ms),
            "segmentEndTimeMs": iso_ms(segment.end_ms),
            "segmentDurationMs": segment.duration_ms,
            "hasRecording": segment.has_recording,
            "restricted": self.is_restricted(segment),
            "processing": self.is_processing(segment),
            "injected": segment.injected,
            "channels": segment.channels if segment.has_recording else None,
            "sample_rate": SAMPLE_RATE if segment.has_recording else None,
            "agent_channel": config.agent_channel
            if segment.has_recording and segment.channels == 2
            else None,
            "size": None,
            "sha256": None,
            "path": recording_path(config, segment.sub_account_id, segment.dialog_id, segment.segment_id),
            "hasTranscript": segment.has_transcript,
            "transcript": transcript_kind(segment, config),  # transcripts.py: ok, missing, late, hostile...
            "transcriptReadyTimeMs": iso_ms(transcript_ready_ms(segment, config)),
            "summaries": {kind: summary_kind(segment, config, kind) for kind in SUMMARY_KINDS},
            "summaryReadyTimeMs": iso_ms(summary_ready_ms(segment, config)),
        }
        if segment.has_recording:
            recording = self.recording(segment)
            entry["size"] = recording.size
            entry["agent_frequency"] = recording.agent_frequency
            entry["customer_frequency"] = recording.customer_frequency
            if with_sha:
                entry["sha256"] = self.sha256(segment)[1]
        return entry


def _order(segment: Segment) -> tuple[int, str, str]:
    return (segment.end_ms, segment.dialog_id, segment.segment_id)


def _ms(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"segment spec: {name} must be ISO-8601 or epoch ms")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(parse_instant(value).timestamp() * 1000)
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    raise ValueError(f"segment spec: {name} must be ISO-8601 or epoch ms")


def segment_from_spec(spec: dict[str, Any], config: SimConfig) -> Segment:
    """An injected segment. Keys: dialogId, segmentId, segmentEndTimeMs (ISO or ms) required;
    subAccountId, segmentDurationMs (default 5000), segmentStartTimeMs, channels (2), hasRecording (true),
    restricted (false), hasTranscript (false: no transcript, no summaries), fields (dict of metadata row
    overrides, e.g. odd types or extra fields), omit (list of metadata row field names to leave out of the
    row, e.g. ``["hasRecording"]``).

    :raises ValueError: naming the missing or bad key.
    """
    known = {"dialogId", "segmentId", "subAccountId", "segmentEndTimeMs", "segmentStartTimeMs",
             "segmentDurationMs", "channels", "hasRecording", "restricted", "fields", "omit",
             "hasTranscript"}  # fmt: skip
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(
            f"segment spec: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
        )
    for name in ("dialogId", "segmentId", "segmentEndTimeMs"):
        if name not in spec:
            raise ValueError(f"segment spec {spec!r}: {name} is required")
    dialog_id, segment_id = str(spec["dialogId"]), str(spec["segmentId"])
    if not dialog_id or not segment_id:
        raise ValueError("segment spec: dialogId and segmentId must be non-empty")
    sub = str(spec.get("subAccountId", config.sub_account_ids[0]))
    end_ms = _ms(spec["segmentEndTimeMs"], "segmentEndTimeMs")
    if "segmentStartTimeMs" in spec:
        start_ms = _ms(spec["segmentStartTimeMs"], "segmentStartTimeMs")
    else:
        start_ms = end_ms - int(spec.get("segmentDurationMs", 5000))
    if start_ms > end_ms:
        raise ValueError(f"segment spec {segment_id!r}: start is after end")
    channels = int(spec.get("channels", 2))
    if channels not in (1, 2):
        raise ValueError(f"segment spec {segment_id!r}: channels must be 1 or 2")
    has_recording = bool(spec.get("hasRecording", True))
    fields = spec.get("fields") or {}
    if not isinstance(fields, dict):
        raise ValueError(f"segment spec {segment_id!r}: fields must be an object")
    omit = spec.get("omit") or []
    if not isinstance(omit, list) or not all(isinstance(name, str) for name in omit):
        raise ValueError(f"segment spec {segment_id!r}: omit must be a list of field names")
    return Segment(
        sub_account_id=sub,
        dialog_id=dialog_id,
        segment_id=segment_id,
        interaction_id="20260101000000" + "0" * 16,
        **{**INBOUND_VOICE, "has_transcript": bool(spec.get("hasTranscript", False))},
        dialog_start_ms=start_ms,
        dialog_end_ms=end_ms,
        start_ms=start_ms,
        end_ms=end_ms,
        participant_id="449438",
        rc_extension_id="985901004",
        agent_group_id="76873",
        agent_notes="injected",
        has_recording=has_recording,
        events=((start_ms, "REC_START"), (end_ms, "REC_STOP")) if has_recording else (),
        channels=channels,
        restricted=bool(spec.get("restricted", False)),
        injected=True,
        overrides={**fields, **dict.fromkeys(omit, OMITTED)},
    )
