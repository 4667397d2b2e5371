"""Recordings for the benchmarks: injected into the simulator with exact sizes, and their vendor URLs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from bench.common import RC_ACCOUNT, SUB_ACCOUNT, Services

BYTES_PER_MS_STEREO = 32  # 8 kHz x 16 bit x 2 channels = 32 000 B/s
WAV_HEADER = 44


def duration_for(size: int) -> int:
    """Duration (ms) of a stereo 8 kHz 16-bit recording of about ``size`` bytes."""
    return max(1, (size - WAV_HEADER) // BYTES_PER_MS_STEREO)


def window_end() -> datetime:
    """A window end safely in the past (the hook refuses windows ending less than 5 minutes ago)."""
    return (datetime.now(timezone.utc) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)


def inject(
    svc: Services,
    count: int,
    size: int,
    *,
    tag: str,
    end: datetime | None = None,
    spread: timedelta | None = None,
    sub_account_id: str | None = None,
) -> list[dict[str, Any]]:
    """Inject ``count`` stereo segments of ~``size`` bytes ending in ``[end - spread, end)``; return refs.

    Each ref has the operator's shape (``dialog_id``, ``segment_id``, ``start``, ``end``, ``duration_ms``)
    plus ``size``. The simulator synthesises the audio on the fly; nothing is stored. ``sub_account_id``:
    whose recordings they are (default: the simulator's first sub-account).
    """
    end = end or window_end()
    spread = spread or timedelta(minutes=10)
    duration = duration_for(size)
    specs = []
    for n in range(count):
        seg_end = end - spread + spread * (n + 0.5) / count
        specs.append(
            {
                "dialogId": f"{tag}-d{n // 2:05d}",
                "segmentId": f"{tag}-s{n:05d}",
                "segmentEndTimeMs": int(seg_end.timestamp() * 1000),
                "segmentDurationMs": duration,
                "channels": 2,
                **({"subAccountId": sub_account_id} if sub_account_id else {}),
            }
        )
    refs = []
    for start in range(0, count, 500):
        for seg in svc.sim("POST", "/segments", json=specs[start : start + 500])["segments"]:
            refs.append(seg)
    return [
        {
            "dialog_id": s["dialogId"],
            "segment_id": s["segmentId"],
            "start": s["segmentStartTimeMs"],
            "end": s["segmentEndTimeMs"],
            "duration_ms": s["segmentDurationMs"],
            "size": s["size"],
        }
        for s in refs
    ]


def recording_url(sim_url: str, dialog_id: str, segment_id: str) -> str:
    """The vendor download URL (ids are plain ASCII here)."""
    return (
        f"{sim_url}/voice/api/cx/integration/v1/accounts/{RC_ACCOUNT}/sub-accounts/{SUB_ACCOUNT}"
        f"/recordings/dialogs/{dialog_id}/segments/{segment_id}"
    )
