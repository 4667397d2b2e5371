"""Knobs: validation, runtime patching, the generated CLI (``--help`` lists every knob) and the subprocess."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import requests

from ringcx_simulator import SimConfig, SimulatorProcess
from ringcx_simulator.config import build_parser, config_from_args, parse_budget


@pytest.mark.integration  # a subprocess
def test_help_lists_every_knob():
    result = subprocess.run(
        [sys.executable, "-m", "ringcx_simulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for f in dataclasses.fields(SimConfig):
        assert "--" + f.name.replace("_", "-") in result.stdout, f.name
    for flag in ("--host", "--port", "--log-level"):
        assert flag in result.stdout


def test_cli_round_trip_via_to_argv():
    config = SimConfig(
        time_scale=60,
        sub_account_ids=("1", "2"),
        mp3_for_browsers=False,
        now="2026-03-02T15:00:00Z",
        faults=({"route": "download", "kind": "reset", "after_bytes": 10},),
    )
    parsed = config_from_args(build_parser().parse_args(config.to_argv()))
    assert parsed == config


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        ("time_scale", 0),
        ("token_format", "paseto"),
        ("mono_share", 1.5),
        ("metadata_budget", "lots"),
        ("agent_channel", 2),
        ("now", "yesterday"),
        ("min_duration", 1000.0),
        ("no_such_knob", 1),
    ],
)
def test_bad_knobs_are_rejected(knob, value):
    with pytest.raises(ValueError, match=knob.split("_")[0]):
        SimConfig().replace(**{knob: value})


def test_parse_budget():
    assert parse_budget("2/60,9/900") == [(2, 60.0), (9, 900.0)]
    assert parse_budget("off") == []
    with pytest.raises(ValueError, match="COUNT/SECONDS"):
        parse_budget("2 per minute")


@pytest.mark.integration  # a subprocess
def test_cli_rejects_bad_values_with_exit_code_2():
    result = subprocess.run(
        [sys.executable, "-m", "ringcx_simulator", "--mono-share", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "mono_share" in result.stderr


def test_patch_config_changes_knobs_and_masks_secrets(simulator):
    updated = simulator.control.patch_config(time_scale="30", segment_id_field="segmentID")
    assert updated["time_scale"] == 30.0
    assert simulator.config.segment_id_field == "segmentID"
    assert updated["client_secret"] == "***"
    assert "sim-client-secret" not in requests.get(simulator.url + "/_sim/config", timeout=5).text
    bad = requests.patch(simulator.url + "/_sim/config", json={"time_scale": -1}, timeout=5)
    assert bad.status_code == 400
    assert "time_scale" in bad.text


@pytest.mark.integration  # a subprocess
def test_simulator_as_subprocess():
    config = SimConfig(time_scale=60, calls_per_hour=10)
    with SimulatorProcess(config) as process:
        assert process.url.startswith("http://127.0.0.1:")
        assert requests.get(process.url + "/_sim/health", timeout=5).json()["time_scale"] == 60.0
        knobs = requests.get(process.url + "/_sim/config", timeout=5).json()
        assert knobs["calls_per_hour"] == 10
    with pytest.raises(requests.ConnectionError):
        requests.get(process.url + "/_sim/health", timeout=2)
