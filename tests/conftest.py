"""Test session setup.

Airflow reads ``AIRFLOW_HOME`` on first import, so it is pointed at a throw-away directory here, before any
test module imports airflow. Fixtures live in ``tests/fixtures/`` by concern (S3, simulator, Airflow).

Test tiers: a test is ``integration`` when it talks to a real peer (the simulator over HTTP, the moto S3
server, the capture server, Airflow's metadata DB and ``dag.test()``, a subprocess). Marking is automatic
(:func:`pytest_collection_modifyitems`): a test that uses one of :data:`PEER_FIXTURES` (directly or through
another fixture) or lives in one of :data:`INTEGRATION_DIRS` is marked, so a new test needs no marker as
long as it reaches its peer through the shared fixtures. A test that starts its peer itself (its own
``SimulatorServer``, a subprocess, real processes) carries ``@pytest.mark.integration``. ``make test-fast``
runs the rest: pure unit tests, in seconds.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="ringcx-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
# The default "dags-folder" bundle points here; without it every dag.test() warns that the path is missing.
os.makedirs(os.path.join(os.environ["AIRFLOW_HOME"], "dags"), exist_ok=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__PARALLELISM", "4")
# The cross-process budget pacer keeps its state here; one directory per test session.
os.environ.setdefault("AIRFLOW__RINGCX__BUDGET_DIR", tempfile.mkdtemp(prefix="ringcx-budget-"))

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.simulator",
    "tests.fixtures.airflow_dag",
    "tests.fixtures.capture",
    "tests.fixtures.landing",
]

#: The fixtures that start or reach a real peer; every other peer fixture (``simulator``, ``ringcx_conn``,
#: ``s3_client``, ``aws_conn``, ``bucket``, ``hook``, ``s3``, ...) depends on one of them, and pytest's
#: ``fixturenames`` is the closure over those dependencies.
PEER_FIXTURES = frozenset({"make_simulator", "s3_endpoint", "capture_server", "example_dag"})

#: Directories whose every test is integration by nature: real Airflow runs and processes (dags,
#: reliability), the benchmark's subprocesses (bench) and the browser (ui).
INTEGRATION_DIRS = ("dags", "reliability", "bench", "ui")

_TESTS = Path(__file__).resolve().parent


def _is_integration(item: pytest.Item) -> bool:
    if PEER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    try:
        parts = item.path.resolve().relative_to(_TESTS).parts
    except ValueError:
        return False
    return len(parts) > 1 and parts[0] in INTEGRATION_DIRS


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that talks to a real peer ``integration`` (see the module docstring)."""
    for item in items:
        if _is_integration(item):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _fresh_secrets_masker() -> None:
    """Every test starts with an empty secrets masker, as every Airflow task process does.

    The hook masks each token it receives, and the masker recompiles one pattern over all its secrets on
    each new one. In one pytest process that has run ``dag.test()`` and the reliability scenarios, thousands
    of tokens would make every later mask call slow enough to outlast a 1-second test token.
    """
    from airflow.sdk._shared.secrets_masker import reset_secrets_masker

    reset_secrets_masker()
