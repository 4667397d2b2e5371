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
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

# Imported once, before any test: importing croniter runs platform.architecture(), which starts a `file -b`
# subprocess. Inside a unit test the tier guard below refuses it, the import fails and is retried (and
# refused) by every later test, so whichever unit test first built a timetable failed, depending on order.
import croniter  # noqa: F401  # isort: skip

# Bytecode caches are written (some images set PYTHONDONTWRITEBYTECODE): otherwise every Python process the
# suite starts (Airflow's task processes in the e2e test, the benchmark's children, the simulator CLI, the
# reliability workers) compiles Airflow from source again, ~3 s of CPU each. __pycache__ is git-ignored.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    sys.dont_write_bytecode = False

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
    "tests.fixtures.redis",
]

#: The fixtures that start or reach a real peer; every other peer fixture (``simulator``, ``ringcx_conn``,
#: ``s3_client``, ``aws_conn``, ``bucket``, ``hook``, ``s3``, ...) depends on one of them, and pytest's
#: ``fixturenames`` is the closure over those dependencies.
PEER_FIXTURES = frozenset(
    {"make_simulator", "s3_endpoint", "capture_server", "example_dag", "redis_server", "make_redis_server"}
)

#: Directories whose every test is integration by nature: the example DAG parsed and run by real Airflow
#: (dags), the benchmark's subprocesses (bench) and the browser (ui). The reliability suite is classified
#: test by test: its scenarios use the peer fixtures, its parse-time checks are unit tests.
INTEGRATION_DIRS = ("dags", "bench", "ui")

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
def _unit_tests_reach_no_peer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test not marked ``integration`` fails if it opens a TCP connection or starts a subprocess.

    This keeps the tiers honest: a unit test that starts a peer on its own would otherwise slip into
    ``make test-fast``. Unix sockets and ``multiprocessing`` pipes stay allowed.
    """
    if request.node.get_closest_marker("integration"):
        return
    nodeid = request.node.nodeid
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def _refuse(what: str) -> AssertionError:
        return AssertionError(
            f"{nodeid} {what}: it talks to a real peer, so mark it @pytest.mark.integration (or use the "
            "peer fixtures of tests/fixtures/, which mark it automatically)"
        )

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise _refuse(f"connects to {address}")
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise _refuse(f"connects to {address}")
        return real_connect_ex(sock, address)

    def execute_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        raise _refuse(f"starts a subprocess {args!r}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(subprocess.Popen, "_execute_child", execute_child)


@pytest.fixture(autouse=True)
def _fresh_secrets_masker() -> None:
    """Every test starts with an empty secrets masker, as every Airflow task process does.

    The hook masks each token it receives, and the masker recompiles one pattern over all its secrets on
    each new one. In one pytest process that has run ``dag.test()`` and the reliability scenarios, thousands
    of tokens would make every later mask call slow enough to outlast a 1-second test token.
    """
    from airflow.sdk._shared.secrets_masker import reset_secrets_masker

    reset_secrets_masker()
