"""The shared fixtures themselves: ``simulator``, ``make_simulator`` and ``ringcx_conn``."""

from __future__ import annotations

import json
import os

import requests

from tests.fixtures.simulator import FIXTURE_DEFAULTS


def test_simulator_fixture_uses_test_defaults(simulator):
    assert requests.get(simulator.url + "/_sim/health", timeout=5).json()["status"] == "ok"
    for knob, value in FIXTURE_DEFAULTS.items():
        assert getattr(simulator.config, knob) == value


def test_make_simulator_overrides_knobs(make_simulator):
    sim = make_simulator(seed=9, metadata_budget="2/60")
    assert sim.config.seed == 9
    assert sim.config.metadata_budget == "2/60"
    assert sim.config.download_budget == "off"


def test_ringcx_conn_points_at_the_simulator(simulator, ringcx_conn):
    assert ringcx_conn == "ringcx_default"
    conn = json.loads(os.environ["AIRFLOW_CONN_RINGCX_DEFAULT"])
    assert conn["conn_type"] == "ringcx"
    assert (conn["login"], conn["password"]) == ("sim-client-id", "sim-client-secret")
    extra = conn["extra"]
    assert extra["platform_url"] == extra["api_url"] == simulator.url
    assert extra["auth_mode"] == "jwt"
    assert extra["jwt_token"] == "sim-jwt-assertion"
    assert (extra["rc_account_id"], extra["sub_account_id"], extra["timezone"]) == (
        "980634004",
        "99999999",
        "UTC",
    )
    assert extra["metadata_budget"] == extra["download_budget"] == extra["exchange_budget"] == "off"
