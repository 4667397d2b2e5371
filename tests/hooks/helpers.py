"""Helpers shared by the hook tests."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

#: Retry knobs that keep tests fast: tiny backoffs, a few attempts.
FAST_RETRIES: dict[str, Any] = {
    "retry_attempts": 4,
    "retry_max_wait_seconds": 30,
    "backoff_initial_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "rate_limit_backoff_seconds": 0.02,
}


class OffsetClock:
    """A wall clock whose ``sleep`` advances it instead of waiting: retries and budgets cost no real time.

    Starts at the real time, so tokens issued by the simulator (real-clock ``exp``) stay comparable.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += max(0.0, seconds)


def past_hour(hours_ago: int = 1) -> tuple[datetime, datetime]:
    """A whole UTC hour that ended ``hours_ago`` hours before the current hour began (fully processed)."""
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)
    return end - timedelta(hours=1), end


def truth_keys(segments: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """``(dialogId, segmentId)`` of ground-truth segments."""
    return {(s["dialogId"], s["segmentId"]) for s in segments}
