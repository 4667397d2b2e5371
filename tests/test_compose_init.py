"""``docker/airflow-init.sh`` against a real Airflow CLI: a second ``docker compose up`` keeps UI edits.

The compose stack cannot run here (no Docker engine), but the init script's functions can: they are
sourced and run twice with the venv's ``airflow`` on a fresh SQLite home, around the same row updates
Admin > Connections and Admin > Pools make. Before issue 16 item 4 the script deleted and re-added the
connections (and re-set the pools) on every ``up``, so the edit was lost.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

INIT_SCRIPT = Path(__file__).resolve().parents[1] / "docker" / "airflow-init.sh"


def _airflow_env(home: Path) -> dict[str, str]:
    """The venv's airflow on a fresh SQLite home; none of this test session's AIRFLOW_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


_EDIT = """import sys
from airflow.models import Connection, Pool
from airflow.utils.session import create_session
with create_session() as session:  # what Admin > Connections / Pools does: update the rows in place
    session.query(Connection).filter_by(conn_id="ringcx_default").one().set_extra(sys.argv[1])
    session.query(Pool).filter_by(pool="ringcx_downloads").one().slots = 9
"""
_READ = """import json, sys
from airflow.models import Connection, Pool
from airflow.utils.session import create_session
with create_session() as session:
    extra = session.query(Connection).filter_by(conn_id="ringcx_default").one().extra_dejson
    slots = session.query(Pool).filter_by(pool="ringcx_downloads").one().slots
    open(sys.argv[1], "w").write(json.dumps({"extra": extra, "slots": slots}))
"""


@pytest.mark.integration
@pytest.mark.timeout(600)  # eight Airflow CLI starts (~8 s of CPU each) on a machine shared by many jobs
def test_init_leaves_connections_and_pools_edited_in_the_ui(tmp_path: Path) -> None:
    """The init script's functions against the venv's Airflow CLI on SQLite, twice around a UI edit."""
    conn = {
        "conn_type": "ringcx",
        "login": "client-id",
        "password": "client-secret",
        "extra": {"jwt_token": "jwt-credential"},
    }
    edited = {"jwt_token": "jwt-credential", "timezone": "America/New_York"}
    (tmp_path / "edit.py").write_text(_EDIT)
    (tmp_path / "read.py").write_text(_READ)
    script = f"""
        source {shlex.quote(str(INIT_SCRIPT))}
        airflow db migrate >/dev/null
        echo "--- first up"
        ensure_connection ringcx_default "$CONN"
        ensure_pool ringcx_downloads 4 "downloads"
        python edit.py "$EDITED"
        echo "--- second up"
        ensure_connection ringcx_default "$CONN"
        ensure_pool ringcx_downloads 4 "downloads"
        python read.py state.json
    """
    env = {**_airflow_env(tmp_path / "home"), "CONN": json.dumps(conn), "EDITED": json.dumps(edited)}
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    first, second = done.stdout.split("--- second up")
    assert "connection ringcx_default created" in first
    assert "pool ringcx_downloads created with 4 slots" in first
    assert "connection ringcx_default exists, left unchanged" in second
    assert "pool ringcx_downloads exists, left unchanged" in second
    assert json.loads((tmp_path / "state.json").read_text()) == {"extra": edited, "slots": 9}
    assert "jwt-credential" not in done.stdout + done.stderr  # the extra holds credentials: never logged
