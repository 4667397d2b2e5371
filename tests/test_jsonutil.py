"""The strict JSON helpers: the writer refuses NaN/Infinity, the vendor reader counts depth first."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from airflow_provider_ringcx import jsonutil, run_settings
from airflow_provider_ringcx.exceptions import RingCXConfigError


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, jsonutil.NonFinite("NaN")])
def test_dumps_refuses_what_is_not_standard_json(value: Any):
    with pytest.raises(ValueError):
        jsonutil.dumps({"row": {"x": [1, value]}}, default=str)


def test_dumps_keeps_json_dumps_options():
    assert jsonutil.dumps({"b": 1, "a": "é"}, sort_keys=True, ensure_ascii=False) == '{"a": "é", "b": 1}'
    assert jsonutil.dumps({"when": object}, default=lambda _: "x") == '{"when": "x"}'


def test_loads_refuses_deep_nesting_before_decoding():
    with pytest.raises(jsonutil.JSONTooDeepError):
        jsonutil.loads(b"[" * 200_000 + b"]" * 200_000)
    assert jsonutil.loads("[" * 64 + "]" * 64) is not None
    with pytest.raises(jsonutil.JSONTooDeepError):
        jsonutil.loads("[" * 65 + "]" * 65)
    with pytest.raises(ValueError):  # a JSONTooDeepError is a ValueError: callers' handling stays
        jsonutil.loads('{"a":' * 100_000)


def test_loads_maps_non_finite_numbers_to_markers():
    value = jsonutil.loads('{"a": NaN, "b": -Infinity, "c": 1e999, "d": 2.5, "e": 10}')
    assert value == {
        "a": jsonutil.NonFinite("NaN"),
        "b": jsonutil.NonFinite("-Infinity"),
        "c": jsonutil.NonFinite("1e999"),
        "d": 2.5,
        "e": 10,
    }
    assert jsonutil.non_finite_paths(value) == ["a=NaN", "b=-Infinity", "c=1e999"]


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "[" * 100 + "]" * 100])
def test_strict_loads_refuses_what_a_strict_reader_refuses(text: str):
    with pytest.raises(ValueError):
        jsonutil.strict_loads(text)


def test_a_setting_given_as_deeply_nested_json_is_a_config_error():
    for value in ("[" * 100_000, '{"k": NaN}'):
        with pytest.raises(RingCXConfigError, match="setting tags from param tags"):
            run_settings.resolve_settings({"bucket": "b", "tags": value}, lambda name: None, environ={})


def _random_value(depth: int, rnd: random.Random) -> Any:
    if depth > 70 or rnd.random() < 0.3:
        return rnd.choice(["x[", ']\\"{', "", "ü[{", "\\\\", 1, None])
    if rnd.random() < 0.5:
        return [_random_value(depth + 1, rnd) for _ in range(rnd.randint(0, 3))]
    return {f'k{i}["': _random_value(depth + 1, rnd) for i in range(rnd.randint(0, 3))}


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max([_depth(item) for item in value] or [0])
    return 0


def _feed(text: str, size: int, limit: int) -> bool:
    guard = jsonutil.DepthGuard(limit)
    try:
        for start in range(0, len(text), size):
            guard.feed(text[start : start + size])
    except jsonutil.JSONTooDeepError:
        return False
    assert guard.depth == 0
    return True


def test_depth_guard_counts_the_true_depth_at_any_chunking():
    """Brackets, quotes and backslashes inside strings, escapes cut by a chunk end: the guard accepts the
    true depth and refuses one level less, for random documents cut into 1-, 5- and 64-character pieces."""
    rnd = random.Random(7)
    for _ in range(200):
        value = _random_value(0, rnd)
        text = json.dumps(value, ensure_ascii=rnd.random() < 0.5)
        depth = _depth(value)
        for size in (1, 5, 64):
            assert _feed(text, size, depth), (text, size)
            if depth:
                assert not _feed(text, size, depth - 1), (text, size)
