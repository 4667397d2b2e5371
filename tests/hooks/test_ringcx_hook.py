"""RingCXHook as Airflow sees it: lazy construction, provider registration, test_connection, and no secret
in any log line, output, repr or error of a full run with wrong and right secrets."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from airflow_provider_ringcx import get_provider_info
from airflow_provider_ringcx.exceptions import RingCXAuthError, RingCXConfigError
from airflow_provider_ringcx.hooks.ringcx import RingCXHook
from tests.fixtures.simulator import ringcx_connection_json
from tests.hooks.helpers import past_hour


def test_class_attributes():
    assert RingCXHook.conn_type == "ringcx"
    assert RingCXHook.default_conn_name == "ringcx_default"
    assert RingCXHook.conn_name_attr == "ringcx_conn_id"
    assert RingCXHook.hook_name == "RingCentral RingCX"


def test_constructing_touches_no_connection(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_RINGCX_DEFAULT", raising=False)
    hook = RingCXHook()  # no connection defined anywhere: still fine, nothing is read
    assert repr(hook) == "RingCXHook(ringcx_conn_id='ringcx_default')"
    assert "settings" not in hook.__dict__
    with pytest.raises(Exception, match="ringcx_default"):
        _ = hook.settings


def test_provider_info_declares_the_connection_form():
    info = get_provider_info()
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == "ringcx"
    assert conn["hook-class-name"] == "airflow_provider_ringcx.hooks.ringcx.RingCXHook"
    fields = conn["conn-fields"]
    assert fields["jwt_token"]["schema"]["format"] == "password"
    assert fields["auth_mode"]["schema"]["enum"] == ["jwt", "token"]
    expected = "platform_url api_url rc_account_id sub_account_id timezone max_window_seconds metadata_budget"
    for name in [*expected.split(), "download_budget", "exchange_budget"]:
        assert name in fields
    assert conn["ui-field-behaviour"]["relabeling"] == {
        "login": "RingCentral client id",
        "password": "RingCentral client secret",
    }


def test_test_connection_success(simulator, connect):
    hook = connect(simulator)
    ok, message = hook.test_connection()
    assert ok, message
    assert "sub-account 99999999" in message
    stats = simulator.control.stats()["requests"]
    assert stats["exchange"] == {"200": 1}
    assert stats["metadata"] == {"200": 1}


def test_test_connection_failures_are_messages(simulator, connect):
    ok, message = connect(simulator, password="definitely-wrong-secret").test_connection()
    assert not ok
    assert "RingCXAuthError" in message
    assert "definitely-wrong-secret" not in message
    ok, message = connect(simulator, timezone="Mars/Base").test_connection()
    assert not ok
    assert "IANA" in message


def test_invalid_connection_is_a_config_error(simulator, connect):
    hook = connect(simulator, max_window_seconds=20000)
    with pytest.raises(RingCXConfigError, match="max_window_seconds"):
        list(hook.iter_interaction_metadata(*past_hour()))


def test_no_secret_in_logs_output_reprs_or_errors(simulator, monkeypatch, caplog, capsys, tmp_path):
    """A full run (wrong secret, wrong JWT, then right ones: auth, metadata, a 401, downloads) at DEBUG
    level, urllib3 included, leaks no secret or issued token anywhere."""
    caplog.set_level(logging.DEBUG)
    config = simulator.config
    wrong_secret, wrong_jwt = "wrong-secret-Zq8w3Lk2Pp", "eyJhbGciOi.wrong-jwt-Zq8w3Lk2Pp.sig"
    seen_text: list[str] = []

    def hook_with(**overrides) -> RingCXHook:
        data = json.loads(ringcx_connection_json(simulator, retry_attempts=2, backoff_initial_seconds=0.01))
        data["password"] = overrides.pop("password", data["password"])
        data["extra"].update(overrides)
        monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", json.dumps(data))
        return RingCXHook(budget_dir=str(tmp_path))

    for overrides in ({"password": wrong_secret}, {"jwt_token": wrong_jwt}):
        hook = hook_with(**overrides)
        with pytest.raises(RingCXAuthError) as info:
            list(hook.iter_interaction_metadata(*past_hour()))
        seen_text += [str(info.value), repr(info.value), repr(hook), repr(hook.settings), repr(hook.tokens)]
        seen_text.append(hook.test_connection()[1])

    hook = hook_with()
    start, end = past_hour()
    records = [r for r in hook.iter_interaction_metadata(start, end) if r.has_recording][:3]
    simulator.control.set_faults([{"route": "download", "kind": "expire_token", "times": 1}])
    for record in records:
        with hook.stream_recording(*record.key) as stream:
            stream.read()
            seen_text.append(repr(stream))
    simulator.control.set_faults([{"route": "metadata", "kind": "expire_token", "times": 2}])
    with pytest.raises(RingCXAuthError) as info:
        list(hook.iter_interaction_metadata(end, end + timedelta(minutes=30)))
    seen_text += [str(info.value), repr(hook.tokens), repr(hook.settings), repr(hook.http)]
    seen_text.append(hook.test_connection()[1])

    issued = [t["token"] for t in simulator.control.stats()["tokens_issued"]]
    assert len(issued) >= 6
    secrets = [config.client_secret, config.jwt, wrong_secret, wrong_jwt, *issued]
    captured = capsys.readouterr()
    haystacks = {
        "log records": caplog.text,
        "formatted args": "\n".join(r.getMessage() for r in caplog.records),
        "stdout": captured.out,
        "stderr": captured.err,
        "reprs and errors": "\n".join(seen_text),
    }
    assert "interaction-metadata" in haystacks["log records"]  # the capture really saw the run
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"secret leaked into {where}"
