"""WindowReadyTrigger: wake a deferred metadata task once its window is old enough to query."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_ringcx.models import format_timestamp, parse_timestamp

#: Longest single sleep, so that a triggerer clock change or shutdown is noticed reasonably soon.
_MAX_SLEEP = 60.0


class WindowReadyTrigger(BaseTrigger):
    """Fire once ``ready_at`` has passed (the window's end plus the settle lag).

    The event is ``{"status": "ready", "ready_at": ISO, "window_start": ISO, "window_end": ISO}``; the
    operator resumes in ``execute_complete``.

    :param ready_at: when the window may be queried (aware datetime or ISO-8601 string).
    :param window_start: the window's start (carried through to the event, for the log).
    :param window_end: the window's end.
    :param poll_interval: longest sleep between clock checks, in seconds.

    Example::

        self.defer(
            trigger=WindowReadyTrigger(ready_at=ready, window_start=start, window_end=end),
            method_name="execute_complete",
        )
    """

    def __init__(
        self,
        ready_at: datetime | str,
        window_start: datetime | str | None = None,
        window_end: datetime | str | None = None,
        poll_interval: float = _MAX_SLEEP,
    ) -> None:
        super().__init__()
        moment = parse_timestamp(ready_at) if isinstance(ready_at, str) else ready_at
        if moment is None or moment.tzinfo is None:
            raise ValueError(f"ready_at must be an aware datetime or ISO string, got {ready_at!r}")
        self.ready_at = moment.astimezone(timezone.utc)
        self.window_start = _iso(window_start)
        self.window_end = _iso(window_end)
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "ready_at": format_timestamp(self.ready_at),
                "window_start": self.window_start,
                "window_end": self.window_end,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while (remaining := (self.ready_at - datetime.now(timezone.utc)).total_seconds()) > 0:
            await asyncio.sleep(min(remaining, self.poll_interval))
        yield TriggerEvent(
            {
                "status": "ready",
                "ready_at": format_timestamp(self.ready_at),
                "window_start": self.window_start,
                "window_end": self.window_end,
            }
        )


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return format_timestamp(value)
