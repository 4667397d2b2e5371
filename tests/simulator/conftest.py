"""Fixtures local to the simulator tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.simulator.helpers import login


@pytest.fixture
def token(simulator: Any) -> str:
    """A live RingCX access token from ``simulator`` (JWT grant + exchange)."""
    return str(login(simulator.url)["accessToken"])
