"""Test session setup.

Airflow reads ``AIRFLOW_HOME`` on first import, so it is pointed at a throw-away directory here, before any
test module imports airflow. Fixtures live in ``tests/fixtures/`` by concern (S3, simulator, Airflow).
"""

from __future__ import annotations

import os
import tempfile

import pytest

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="ringcx-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
# The default "dags-folder" bundle points here; without it every dag.test() warns that the path is missing.
os.makedirs(os.path.join(os.environ["AIRFLOW_HOME"], "dags"), exist_ok=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__PARALLELISM", "4")
# The cross-process budget pacer keeps its state here; one directory per test session.
os.environ.setdefault("RINGCX_BUDGET_DIR", tempfile.mkdtemp(prefix="ringcx-budget-"))

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.simulator",
    "tests.fixtures.airflow_dag",
    "tests.fixtures.capture",
    "tests.fixtures.landing",
]


@pytest.fixture(autouse=True)
def _fresh_secrets_masker() -> None:
    """Every test starts with an empty secrets masker, as every Airflow task process does.

    The hook masks each token it receives, and the masker recompiles one pattern over all its secrets on
    each new one. In one pytest process that has run ``dag.test()`` and the reliability scenarios, thousands
    of tokens would make every later mask call slow enough to outlast a 1-second test token.
    """
    from airflow.sdk._shared.secrets_masker import reset_secrets_masker

    reset_secrets_masker()
