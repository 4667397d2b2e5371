"""The hostile JSON fault kinds over real sockets: ``deep_nesting`` and ``non_finite``."""

from __future__ import annotations

import json
import math

import pytest
import requests

from airflow_provider_ringcx.jsonutil import strict_loads
from tests.simulator.helpers import post_metadata, rc_token


def _depth(text: str) -> int:
    depth = deepest = 0
    for char in text:  # the simulator's ids hold no brackets
        depth += {"[": 1, "]": -1}.get(char, 0)
        deepest = max(deepest, depth)
    return deepest


def test_deep_nesting_replaces_the_whole_body(simulator, token):
    simulator.control.set_faults([{"route": "metadata", "kind": "deep_nesting", "depth": 5000, "times": 1}])
    response = post_metadata(simulator, token)
    assert response.status_code == 200
    assert response.content == b"[" * 5000 + b"]" * 5000
    with pytest.raises(RecursionError):
        json.loads(response.content)
    assert post_metadata(simulator, token).json()  # times: 1, then the real rows again


def test_deep_nesting_in_one_row_field(simulator, token):
    rows = post_metadata(simulator, token).json()
    assert len(rows) > 2
    simulator.control.set_faults(
        [{"route": "metadata", "kind": "deep_nesting", "depth": 3000, "row_field": "agentNotes", "row": 1}]
    )
    text = post_metadata(simulator, token).text
    assert '"agentNotes":' + "[" * 3000 + "]" * 3000 in text
    assert _depth(text) == 3001  # the array of rows, then the field
    assert text.count("[" * 3000) == 1


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_number_in_a_row(simulator, token, constant):
    clean = post_metadata(simulator, token).json()
    simulator.control.set_faults(
        [{"route": "metadata", "kind": "non_finite", "constant": constant, "row": 2, "times": 1}]
    )
    text = post_metadata(simulator, token).text
    assert f'"segmentDurationMs":{constant}' in text
    with pytest.raises(ValueError):
        strict_loads(text)
    rows = json.loads(text)  # Python's lenient reader takes it
    duration = rows[2]["segmentDurationMs"]
    assert math.isnan(duration) if constant == "NaN" else math.isinf(duration)  # a float, not JSON
    assert [r["segmentId"] for r in rows] == [r["segmentId"] for r in clean]


def test_non_finite_in_a_token_object(simulator):
    simulator.control.set_faults(
        [{"route": "oauth", "kind": "non_finite", "row_field": "expires_in", "times": 1}]
    )
    assert '"expires_in":NaN' in rc_token(simulator.url).text


@pytest.mark.parametrize(
    "rule",
    [
        {"route": "metadata", "kind": "non_finite", "constant": "nan"},
        {"route": "metadata", "kind": "deep_nesting", "depth": 0},
        {"route": "metadata", "kind": "non_finite", "row": -1},
    ],
)
def test_bad_hostile_rules_are_rejected(simulator, rule):
    assert requests.post(simulator.url + "/_sim/faults", json=[rule], timeout=5).status_code == 400
