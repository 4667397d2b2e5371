"""Run-time settings of an archive run (run_settings.py): params > Variable > env > default, clear errors."""

from __future__ import annotations

import pytest

from airflow_provider_ringcx.example_dags.shape import start_date
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.run_settings import SETTINGS, resolve_settings


def _variables(values: dict[str, str]):
    return values.get


def test_precedence_params_then_variable_then_env_then_default() -> None:
    env = {"RINGCX_BUCKET": "env-bucket", "RINGCX_PREFIX": "env-prefix", "RINGCX_LAG_MINUTES": "20"}
    variables = {"ringcx_prefix": "var-prefix", "ringcx_batch_size": "50", "ringcx_tags": '{"team": "cx"}'}
    resolved = resolve_settings({"lag_minutes": 30, "bucket": None}, _variables(variables), env)
    assert resolved["lag_minutes"] == 30  # param
    assert resolved["prefix"] == "var-prefix"  # Variable over env
    assert resolved["batch_size"] == 50  # Variable, converted
    assert resolved["tags"] == {"team": "cx"}
    assert resolved["bucket"] == "env-bucket"  # env (param None falls through)
    assert resolved["rescan_lookback_minutes"] == 1440  # default
    assert resolved["allow_unarchived"] == []
    assert set(resolved) == {setting.name for setting in SETTINGS}


def test_booleans_and_lists() -> None:
    env = {
        "RINGCX_BUCKET": "b",
        "RINGCX_OBJECT_LOCK_LEGAL_HOLD": "yes",
        "RINGCX_ALLOW_UNARCHIVED": '["forbidden"]',
    }
    resolved = resolve_settings({}, _variables({}), env)
    assert resolved["object_lock_legal_hold"] is True
    assert resolved["allow_unarchived"] == ["forbidden"]


@pytest.mark.parametrize(
    ("params", "env", "message"),
    [
        ({}, {}, "no S3 bucket configured"),
        ({"lag_minutes": 4}, {"RINGCX_BUCKET": "b"}, "5-minute minimum"),
        ({}, {"RINGCX_BUCKET": "b", "RINGCX_BATCH_SIZE": "lots"}, "environment variable RINGCX_BATCH_SIZE"),
        ({"batch_size": 0}, {"RINGCX_BUCKET": "b"}, "batch_size=0"),
        ({}, {"RINGCX_BUCKET": "b", "RINGCX_TAGS": "[1]"}, "not a valid object"),
        ({"rescan_lookback_minutes": -1}, {"RINGCX_BUCKET": "b"}, "rescan_lookback_minutes"),
        ({}, {"RINGCX_BUCKET": "b", "RINGCX_FAIL_ON_MISSING": "maybe"}, "RINGCX_FAIL_ON_MISSING"),
    ],
)
def test_bad_values_name_the_setting_and_source(params: dict, env: dict, message: str) -> None:
    with pytest.raises(RingCXConfigError, match=message):
        resolve_settings(params, _variables({}), env)


def test_variable_errors_name_the_variable() -> None:
    with pytest.raises(RingCXConfigError, match="Variable ringcx_lag_minutes"):
        resolve_settings({}, _variables({"ringcx_lag_minutes": "soon"}), {"RINGCX_BUCKET": "b"})


def test_start_date() -> None:
    assert start_date({"RINGCX_START_DATE": "2026-05-01T00:00"}).isoformat() == "2026-05-01T00:00:00+00:00"
    with pytest.raises(RingCXConfigError, match="RINGCX_START_DATE"):
        start_date({"RINGCX_START_DATE": "yesterday"})
