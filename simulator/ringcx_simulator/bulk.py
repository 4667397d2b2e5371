"""Bulk segments: many synthetic recorded segments in one window, for volume tests (100,000 rows and more).

The knobs ``bulk_segments`` (N), ``bulk_start``, ``bulk_span`` and ``bulk_duration_ms`` add N segments of
the first sub-account whose ends are spread evenly over ``[bulk_start, bulk_start + bulk_span)``: segment
``i`` ends at ``start + floor(i * span / N)`` ms and lasts ``bulk_duration_ms``. Nothing is stored: a
segment is made from its index when a window asks for it (the window's index range is computed, not
searched), and its ids carry the index back on a download:

* dialog ``s-v-bulk-<i:08d>``, segment ``p-v-bulk-<i:08d>-01``, interaction id ``<bulk start>`` +
  ``<i:016d>``; voice, inbound, ``hasRecording`` true, one ``REC_START``/``REC_STOP`` pair, mono;
* the metadata rows are ordinary vendor rows (``metadata.render_row``, every response variant applies);
  the interaction-metadata response is *streamed* when a window holds bulk segments, so the simulator
  never builds the whole body;
* every bulk recording shares one tone (one cached period block) and differs by its noise preamble, so a
  recording costs microseconds to set up and its checksums are still unique; its SHA-256 is computed only
  when ground truth asks for it (``/_sim/ground-truth?sha256=false`` skips even that).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ringcx_simulator.config import SimConfig, parse_instant
from ringcx_simulator.traffic import INBOUND_VOICE, Segment, iso_ms

DIALOG_PREFIX = "s-v-bulk-"
SEGMENT_PREFIX = "p-v-bulk-"
_SEGMENT_SUFFIX = "-01"
#: The knobs that shape bulk segments; the set is rebuilt when any of them changes.
BULK_KNOBS = ("bulk_segments", "bulk_start", "bulk_span", "bulk_duration_ms", "sub_account_ids")


def bulk_signature(config: SimConfig) -> tuple[Any, ...]:
    return tuple(getattr(config, name) for name in BULK_KNOBS)


class BulkSegments:
    """The bulk segments of one configuration (see the module doc); cheap to build, holds no segment."""

    def __init__(self, config: SimConfig) -> None:
        self.signature = bulk_signature(config)
        self.count = config.bulk_segments
        self.sub_account_id = config.sub_account_ids[0]
        self.start_ms = int(parse_instant(config.bulk_start).timestamp() * 1000)
        self.span_ms = max(1, round(config.bulk_span * 1000))
        self.duration_ms = config.bulk_duration_ms
        stamp = iso_ms(self.start_ms)
        self._stamp = "".join(ch for ch in stamp[:19] if ch.isdigit())  # YYYYMMDDhhmmss

    def end_ms(self, index: int) -> int:
        return self.start_ms + index * self.span_ms // self.count

    def _first_ending_at(self, instant_ms: int) -> int:
        """The smallest index whose end is ``>= instant_ms`` (``count`` if none)."""
        offset = instant_ms - self.start_ms
        if offset <= 0:
            return 0
        return min(self.count, -(-offset * self.count // self.span_ms))  # ceil, in integers

    def indexes(self, sub_account_id: str, start_ms: int, end_ms: int) -> range:
        """Indexes of the bulk segments with ``start_ms <= end < end_ms`` (in end order)."""
        if not self.count or sub_account_id != self.sub_account_id or end_ms <= start_ms:
            return range(0)
        return range(self._first_ending_at(start_ms), self._first_ending_at(end_ms))

    def segments(self, sub_account_id: str, start_ms: int, end_ms: int) -> Iterator[Segment]:
        """The bulk segments ending in ``[start_ms, end_ms)``, made one by one, sorted like generated ones
        (by end time, then ids: the zero-padded index keeps the ids in end order)."""
        for index in self.indexes(sub_account_id, start_ms, end_ms):
            yield self.segment(index)

    def segment(self, index: int) -> Segment:
        end = self.end_ms(index)
        start = end - self.duration_ms
        return Segment(
            sub_account_id=self.sub_account_id,
            dialog_id=f"{DIALOG_PREFIX}{index:08d}",
            segment_id=f"{SEGMENT_PREFIX}{index:08d}{_SEGMENT_SUFFIX}",
            interaction_id=f"{self._stamp}{index:016d}",
            **INBOUND_VOICE,
            dialog_start_ms=start,
            dialog_end_ms=end,
            start_ms=start,
            end_ms=end,
            participant_id=str(449400 + index % 40),
            rc_extension_id=str(985900004 + index % 40 * 1000),
            agent_group_id=str(76873 + index % 4),
            agent_notes="",
            has_recording=True,
            events=((start, "REC_START"), (end, "REC_STOP")),
            channels=1,
            restricted=False,
            injected=True,
            bulk=True,
        )

    def find(self, sub_account_id: str, dialog_id: str, segment_id: str) -> Segment | None:
        """The bulk segment these ids name, if any (the index is in the ids)."""
        if not self.count or sub_account_id != self.sub_account_id or not dialog_id.startswith(DIALOG_PREFIX):
            return None
        number = dialog_id[len(DIALOG_PREFIX) :]
        if not (number.isdigit() and len(number) == 8):
            return None
        index = int(number)
        if index >= self.count or segment_id != f"{SEGMENT_PREFIX}{number}{_SEGMENT_SUFFIX}":
            return None
        return self.segment(index)
