"""``python -m airflow_provider_ringcx sub-accounts`` run as a person runs it: a subprocess, the
connection from ``AIRFLOW_CONN_RINGCX_DEFAULT`` pointing at the simulator, the listing on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from airflow_provider_ringcx.subaccounts.listing import parse_listing
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

REPO = Path(__file__).resolve().parents[2]


def run(sim: SimulatorHandle, tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AIRFLOW_CONN_RINGCX_DEFAULT": ringcx_connection_json(sim, **extra),
        "AIRFLOW__RINGCX__BUDGET_DIR": str(tmp_path / "budgets"),
    }
    argv = [sys.executable, "-m", "airflow_provider_ringcx", "sub-accounts", *args]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False)


def test_lists_the_sub_accounts_and_prints_the_line_of_the_active_ones(
    make_simulator, tmp_path: Path
) -> None:
    sim = make_simulator(sub_account_ids="11111111,22222222", inactive_sub_account_ids="33333333")
    done = run(sim, tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Sub-accounts of RingCX main account 99990000 (connection ringcx_default): 3, 2 active" in out
    assert "33333333" in out
    assert "NO (inactive" in out
    line = next(row for row in out.splitlines() if row.startswith("sub_accounts = "))
    assert line == "sub_accounts = 11111111,22222222"  # the inactive one is left out
    assert [sub.id for sub in parse_listing(line.split("=", 1)[1])] == ["11111111", "22222222"]
    assert "AIRFLOW__RINGCX__SUB_ACCOUNTS=11111111,22222222" in out
    assert "ringcx_metadata__11111111" in out
    assert "sim-client-secret" not in out + done.stderr


def test_json_output_and_an_explicit_main_account(make_simulator, tmp_path: Path) -> None:
    sim = make_simulator(sub_account_ids="11111111")
    done = run(sim, tmp_path, "--json", "--main-account-id", "99990000")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["mainAccountId"] == "99990000"
    assert [(row["subAccountId"], row["isActive"]) for row in body["subAccounts"]] == [
        ("11111111", True),
        ("99990001", False),  # the simulator's default inactive sub-account
    ]


def test_a_refused_listing_exits_3_and_a_missing_connection_2(make_simulator, tmp_path: Path) -> None:
    sim = make_simulator()
    refused = run(sim, tmp_path, "--main-account-id", "12345")
    assert refused.returncode == 3
    assert "RingCXForbiddenError" in refused.stderr
    assert "WFO_ACCESS" in refused.stderr
    missing = run(sim, tmp_path, "--conn-id", "ringcx_nowhere")
    assert missing.returncode == 2
    assert "ringcx_nowhere" in missing.stderr
