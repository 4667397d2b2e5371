"""What the simulator's transcript route serves, as pure functions of the knobs and the segment (no I/O):
the ground truth lists the same kinds (see :mod:`ringcx_simulator.transcripts`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ringcx_simulator.traffic import Segment

HOSTILE_KINDS = ("malformed", "huge", "wrong_ids", "array")
_LINES = (
    "Thank you for calling, how can I help you today?",
    "I have a question about my last bill.",
    "Let me pull up your account, one moment please.",
    "The charge on the third was a one-time activation fee.",
    "Great, that answers it. Thank you!",
)


def _draw(seed: int, segment_id: str, salt: str) -> float:
    digest = hashlib.sha256(f"{seed}|{salt}|{segment_id}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick_kind(
    segment: Segment, config: Any, knob: str, salt: str, hostile_salt: str, hostile: tuple[str, ...]
) -> str:
    """A document kind for ``segment`` (``none`` without ``hasTranscript``): forced by the
    ``{knob}_variants`` (``segmentId=kind``), else drawn by ``seed``, ``salt`` and the segment id from the
    ``{knob}_missing_share``, ``_late_share`` and ``_hostile_share`` (one of ``hostile``), else ``ok``."""
    if not segment.has_transcript:
        return "none"
    forced = dict(_pairs(getattr(config, f"{knob}_variants")))
    if segment.segment_id in forced:
        return forced[segment.segment_id]
    draw = _draw(config.seed, segment.segment_id, salt)
    for kind in ("missing", "late", "hostile"):
        share = getattr(config, f"{knob}_{kind}_share")
        if draw < share:
            if kind == "hostile":
                pick = _draw(config.seed, segment.segment_id, hostile_salt)
                return hostile[int(pick * len(hostile))]
            return kind
        draw -= share
    return "ok"


def transcript_kind(segment: Segment, config: Any) -> str:
    """What the transcript route serves for ``segment`` (module docstring), before the clock is applied."""
    return pick_kind(segment, config, "transcript", "transcript", "hostile", HOSTILE_KINDS)


def _pairs(spec: tuple[str, ...]) -> list[tuple[str, str]]:
    return [tuple(item.rsplit("=", 1)) for item in spec if "=" in item]  # type: ignore[misc]


def transcript_ready_ms(segment: Segment, config: Any) -> int:
    """When a ``late`` transcript stops answering 404 (epoch ms, data clock)."""
    return segment.end_ms + int(config.transcript_delay * 1000)


def transcript_body(segment: Segment, config: Any, kind: str = "ok") -> bytes:
    """The transcript's bytes (deterministic) for a served kind."""
    if kind == "array":
        return b'[{"message": "not an object"}]'
    agent = {
        "participantId": segment.participant_id,
        "participantType": "AGENT",
        "rcUserId": segment.rc_extension_id,
        "participantName": f"Agent {segment.participant_id}",
    }
    customer = {"participantId": segment.channel_endpoint, "participantType": "CUSTOMER",
                "rcUserId": None, "participantName": "Customer"}  # fmt: skip
    count = 2 + int(_draw(config.seed, segment.segment_id, "lines") * (len(_LINES) - 1))
    step = max(1, segment.duration_ms // (count + 1))
    entries = [
        {**(agent if i % 2 == 0 else customer), "timestamp": str(segment.start_ms + step * (i + 1)),
         "message": _LINES[i % len(_LINES)]}
        for i in range(count)
    ]  # fmt: skip
    dialog_id, segment_id = segment.dialog_id, segment.segment_id
    if kind == "wrong_ids":
        dialog_id, segment_id = dialog_id + "-other", segment_id + "-other"
    if kind == "huge":
        entries[0]["message"] = "x" * max(0, int(config.transcript_huge_bytes))
    document = {"channelClass": segment.channel_class, "errorCode": None, "errorMessage": None,
                "dialogId": dialog_id, "segmentId": segment_id, "transcript": entries}  # fmt: skip
    body = json.dumps(document, separators=(",", ":")).encode()
    return body[: len(body) // 2] if kind == "malformed" else body


def served_kind(segment: Segment | None, config: Any, now_ms: int) -> str:
    """The kind served now: ``late`` is ``missing`` until its time, then ``ok``."""
    if segment is None:
        return "none"
    kind = transcript_kind(segment, config)
    if kind == "late":
        return "ok" if now_ms >= transcript_ready_ms(segment, config) else "missing"
    return kind
