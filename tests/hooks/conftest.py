"""Fixtures for hook tests against the simulator (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.hooks.ringcx import RingCXHook
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.hooks.helpers import FAST_RETRIES, OffsetClock


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., RingCXHook]:
    """``connect(sim, clock=None, conn_id=..., **extras)`` -> a hook on an env-var connection at ``sim``.

    Budgets live in a per-test directory, so a port reused by a later simulator inherits nothing.
    """

    def make(
        sim: SimulatorHandle,
        *,
        clock: OffsetClock | None = None,
        conn_id: str = "ringcx_default",
        login: str | None = None,
        password: str | None = None,
        **extra: Any,
    ) -> RingCXHook:
        value = ringcx_connection_json(sim, **{**FAST_RETRIES, **extra})
        if login is not None or password is not None:
            data = json.loads(value)
            data["login"] = data["login"] if login is None else login
            data["password"] = data["password"] if password is None else password
            value = json.dumps(data)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        return RingCXHook(
            conn_id,
            budget_dir=str(tmp_path / "budgets"),
            clock=clock,
            sleep=clock.sleep if clock else None,
        )

    return make
