"""The local stack used by ``make demo``, ``make airflow`` and the end-to-end test is wired consistently."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_provider_ringcx.provider_info import CONNECTION_FIELDS
from airflow_provider_ringcx.run_settings import SETTINGS_BY_NAME
from scripts.stack import REPO, Stack


def test_connections_and_environment_match_the_provider_and_the_dag(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "home", ringcx_extra={"metadata_budget": "off"})
    stack.sim_url, stack.s3_url = "http://127.0.0.1:1", "http://127.0.0.1:2"
    connections = {key: json.loads(value) for key, value in stack.connections().items()}
    assert set(connections) == {
        SETTINGS_BY_NAME["ringcx_conn_id"].default,
        SETTINGS_BY_NAME["aws_conn_id"].default,
    }
    ringcx = connections["ringcx_default"]
    assert ringcx["conn_type"] == "ringcx"
    assert set(ringcx["extra"]) <= set(CONNECTION_FIELDS)  # every extra is a field the hook reads
    assert ringcx["extra"]["metadata_budget"] == "off"
    assert connections["aws_default"]["extra"]["endpoint_url"] == "http://127.0.0.1:2"
    env = stack.env()
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    assert env["AIRFLOW_HOME"] == str(tmp_path / "home")
    assert env["RINGCX_BUCKET"] == stack.bucket
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert int(env["AIRFLOW__CORE__PARALLELISM"]) <= 4
    for ignored in (".demo/", ".airflow/"):
        assert ignored in (REPO / ".gitignore").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert "$(BIN)/python scripts/demo.py" in makefile
    assert "$(BIN)/python scripts/standalone.py" in makefile
