"""``scripts/compose_env.py`` (``make compose-env``): the compose stack's secrets, written once into ``.env``.

It must create the file 0600 with a valid Fernet key and random secrets, and never overwrite: a second run
changes nothing, an existing ``.env`` keeps every line and only gains the names it lacks.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from scripts.compose_env import SECRETS, ComposeEnvError, defined, ensure_env, main


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_the_secrets_once_0600_with_a_valid_fernet_key(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    added = ensure_env(env, uid=1234)
    assert added == [*SECRETS, "AIRFLOW_UID"]
    assert _mode(env) == 0o600
    values = defined(env.read_text())
    token = Fernet(values["AIRFLOW__CORE__FERNET_KEY"].encode()).encrypt(b"connection password")
    assert Fernet(values["AIRFLOW__CORE__FERNET_KEY"].encode()).decrypt(token) == b"connection password"
    assert len(values["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64
    assert len(values["AIRFLOW__API__SECRET_KEY"]) >= 43
    assert values["AIRFLOW_UID"] == "1234"
    other = tmp_path / "other.env"
    ensure_env(other, uid=1234)
    assert all(defined(other.read_text())[name] != values[name] for name in SECRETS)  # random each time


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    ensure_env(env, uid=1234)
    before = env.read_bytes()
    assert ensure_env(env, uid=1234) == []
    assert env.read_bytes() == before


def test_an_existing_env_keeps_its_lines_and_gains_only_what_it_lacks(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("AIRFLOW_UID=1000\nexport AIRFLOW__CORE__FERNET_KEY='my-own-key'\nCOMPOSE_PROFILES=celery")
    env.chmod(0o644)
    added = ensure_env(env, uid=4321)
    assert added == ["AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"]
    text = env.read_text()
    assert text.startswith(
        "AIRFLOW_UID=1000\nexport AIRFLOW__CORE__FERNET_KEY='my-own-key'\nCOMPOSE_PROFILES=celery\n"
    )
    values = defined(text)
    assert values["AIRFLOW__CORE__FERNET_KEY"] == "my-own-key"
    assert values["AIRFLOW_UID"] == "1000"
    assert _mode(env) == 0o600  # it holds secrets now


def test_an_empty_secret_is_refused_not_overwritten(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("AIRFLOW__API_AUTH__JWT_SECRET=\n")
    with pytest.raises(
        ComposeEnvError, match=r"AIRFLOW__API_AUTH__JWT_SECRET to an empty value.*delete the line"
    ):
        ensure_env(env, uid=1234)
    assert env.read_text() == "AIRFLOW__API_AUTH__JWT_SECRET=\n"


def test_root_gets_the_compose_default_uid(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    assert "AIRFLOW_UID" not in ensure_env(env, uid=0)
    assert "AIRFLOW_UID" not in defined(env.read_text())


def test_main_names_what_it_wrote_and_never_prints_a_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".env"
    assert main(["--path", str(env)]) == 0
    out = capsys.readouterr().out
    assert "AIRFLOW__CORE__FERNET_KEY" in out
    for name in SECRETS:
        assert defined(env.read_text())[name] not in out
    assert main(["--path", str(env)]) == 0
    assert "left unchanged" in capsys.readouterr().out
    env.write_text("AIRFLOW__CORE__FERNET_KEY=\n")
    assert main(["--path", str(env)]) == 1
    assert "empty value" in capsys.readouterr().err
