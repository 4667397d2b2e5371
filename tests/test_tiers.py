"""The test tiers of ``tests/conftest.py``: which tests are ``integration``, and the guard that keeps a unit
test from reaching a real peer unmarked (so ``make test-fast`` stays fast and self-contained)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import PEER_FIXTURES, _is_integration

TESTS = Path(__file__).resolve().parent


def _item(path: str, *fixtures: str) -> pytest.Item:
    return SimpleNamespace(path=TESTS / path, fixturenames=list(fixtures))  # type: ignore[return-value]


@pytest.mark.parametrize("fixture", sorted(PEER_FIXTURES))
def test_a_test_using_a_peer_fixture_is_integration(fixture: str) -> None:
    assert _is_integration(_item("test_keys.py", "tmp_path", fixture))


def test_peer_fixtures_reach_the_marking_through_their_dependents(request: pytest.FixtureRequest) -> None:
    """Tests name ``simulator``, ``ringcx_conn``, ``bucket``, ``hook``...: each depends on a root fixture."""
    manager = request.session._fixturemanager
    dependents = ("simulator", "ringcx_conn", "s3_client", "aws_conn", "bucket", "locked_bucket", "hook")
    for name in dependents:
        closure = manager.getfixtureclosure(
            initialnames=(name,), parentnode=request.node, ignore_args=frozenset()
        )[1]
        assert PEER_FIXTURES.intersection(closure), name


def test_directories_of_real_airflow_subprocesses_and_the_browser_are_integration() -> None:
    for path in ("dags/test_dag_integrity.py", "bench/test_bench_smoke.py", "ui/test_ui.py"):
        assert _is_integration(_item(path))


def test_a_test_without_peers_is_a_unit_test() -> None:
    for path in ("test_keys.py", "hooks/test_settings.py", "reliability/test_bad_config.py"):
        assert not _is_integration(_item(path, "tmp_path", "monkeypatch"))


def test_this_unit_test_is_not_marked(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("integration") is None


def test_a_unit_test_that_opens_a_tcp_connection_fails_naming_the_marker() -> None:
    with pytest.raises(AssertionError, match=r"mark it @pytest.mark.integration"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_a_unit_test_that_starts_a_subprocess_fails_naming_the_marker() -> None:
    with pytest.raises(AssertionError, match=r"starts a subprocess.*mark it @pytest.mark.integration"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_unix_sockets_stay_allowed_in_unit_tests() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"


@pytest.mark.integration
def test_an_integration_test_may_start_a_subprocess() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=60)


def test_the_suite_writes_bytecode_caches() -> None:
    """Subprocesses inherit no PYTHONDONTWRITEBYTECODE: each would compile Airflow again (~3 s of CPU)."""
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ
    assert sys.dont_write_bytecode is False


def test_boto3_sessions_share_parsed_botocore_data() -> None:
    """tests/fixtures/s3.py: a new session's S3 client gets the model the first session parsed, not a copy."""
    import boto3

    def model(session: boto3.session.Session) -> object:
        keys = {"aws_access_key_id": "k", "aws_secret_access_key": "s"}
        client = session.client("s3", region_name="us-east-1", **keys)
        return client.meta.service_model._service_description

    assert model(boto3.session.Session()) is model(boto3.session.Session())
