"""Hostile JSON on the auth routes (simulator over HTTP): token bodies are decoded depth-checked (issue #12
item 14), so a nested body is a bad payload, never a bare ``RecursionError``."""

from __future__ import annotations

import pytest

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError
from tests.hooks.helpers import OffsetClock


@pytest.mark.parametrize("route", ["oauth", "exchange"])
def test_deeply_nested_token_body_is_a_bad_payload_not_a_recursion_error(simulator, connect, route):
    simulator.control.set_faults([{"route": route, "kind": "deep_nesting", "depth": 100_000}])
    hook = connect(simulator, clock=OffsetClock())
    with pytest.raises(RingCXBadPayloadError) as caught:
        hook.tokens.token()
    assert "did not return a JSON object" in str(caught.value)
