"""WindowReadyTrigger: serialisation round trip and firing once the window is ready."""

from __future__ import annotations

import asyncio
import importlib
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_ringcx.triggers.window import WindowReadyTrigger


def _first_event(trigger: WindowReadyTrigger, timeout: float = 5.0) -> dict:
    async def run() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return asyncio.run(asyncio.wait_for(run(), timeout))


def test_serialize_round_trip() -> None:
    ready = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)
    trigger = WindowReadyTrigger(ready_at=ready, window_start="2026-03-02T14:00:00Z", window_end=ready)
    path, kwargs = trigger.serialize()
    module, name = path.rsplit(".", 1)
    clone = getattr(importlib.import_module(module), name)(**kwargs)
    assert clone.ready_at == ready
    assert clone.serialize() == (path, kwargs)
    assert kwargs["ready_at"] == "2026-03-02T14:30:00Z"


def test_fires_at_once_when_ready() -> None:
    ready = datetime.now(timezone.utc) - timedelta(seconds=1)
    event = _first_event(WindowReadyTrigger(ready_at=ready, window_start="a", window_end="b"))
    assert event["status"] == "ready"
    assert event["window_start"] == "a"


def test_waits_until_ready_at() -> None:
    ready = datetime.now(timezone.utc) + timedelta(seconds=0.3)
    event = _first_event(WindowReadyTrigger(ready_at=ready, poll_interval=0.05))
    assert datetime.now(timezone.utc) >= ready
    assert event["status"] == "ready"


def test_naive_ready_at_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        WindowReadyTrigger(ready_at=datetime(2026, 3, 2, 14, 30))
