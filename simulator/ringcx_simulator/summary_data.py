"""What the simulator's AI summary route serves, as pure functions of the knobs and the segment (no I/O):
the ground truth lists the same kinds (see :mod:`ringcx_simulator.summaries`).

The kind draw is the transcript's (:func:`ringcx_simulator.transcript_data.pick_kind`), salted by the
summary kind, so a segment's ``agent`` and ``auto`` summaries are drawn apart and apart from its transcript.
"""

from __future__ import annotations

import json
from typing import Any

from ringcx_simulator.traffic import Segment
from ringcx_simulator.transcript_data import pick_kind

SUMMARY_KINDS = ("agent", "auto")
HOSTILE_KINDS = ("malformed", "html", "array")
_TEXT = {
    "agent": "The customer asked about a one-time activation fee on the last bill; the agent explained it.",
    "auto": "Billing question: activation fee explained. Sentiment: positive. No follow-up needed.",
}


def summary_kind(segment: Segment, config: Any, kind: str) -> str:
    """What the summary route serves for ``segment``'s ``kind`` summary, before the clock is applied:
    ``none`` (no ``hasTranscript``), ``missing``, ``late``, ``ok``, or a hostile kind."""
    return pick_kind(segment, config, "summary", f"summary|{kind}", f"summary-hostile|{kind}", HOSTILE_KINDS)


def summary_ready_ms(segment: Segment, config: Any) -> int:
    """When a ``late`` summary stops answering 404 (epoch ms, data clock)."""
    return segment.end_ms + int(config.summary_delay * 1000)


def served_summary(segment: Segment | None, config: Any, kind: str, now_ms: int) -> str:
    """The kind served now: ``late`` is ``missing`` until its time, then ``ok``."""
    if segment is None or kind not in SUMMARY_KINDS:
        return "none"
    served = summary_kind(segment, config, kind)
    if served == "late":
        return "ok" if now_ms >= summary_ready_ms(segment, config) else "missing"
    return served


def summary_body(segment: Segment, kind: str, served: str = "ok") -> tuple[bytes, str]:
    """The summary's bytes (deterministic) and media type for a served kind. The real body's shape is not
    documented [INF]: this one is an object naming the segment, the kind and a text."""
    if served == "html":
        return b"<!DOCTYPE html><html><body><h1>Service Unavailable</h1></body></html>", "text/html"
    if served == "array":
        return b'[{"summary": "not an object"}]', "application/json"
    document = {"segmentId": segment.segment_id, "summaryType": kind.upper(), "summary": _TEXT[kind],
                "language": "en-US", "generatedAt": segment.end_ms}  # fmt: skip
    body = json.dumps(document, separators=(",", ":")).encode()
    return (body[: len(body) // 2] if served == "malformed" else body), "application/json"
