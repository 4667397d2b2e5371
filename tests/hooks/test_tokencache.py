"""The host's token cache file by itself (hooks/tokencache.py): names, modes, refusals, encryption.

No peer: these tests write and read the cache directory directly. The token path through the hook, across
processes and through a DAG run, is in ``test_auth_shared_token.py`` (against the simulator).
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.hooks.settings import RingCXSettings
from airflow_provider_ringcx.hooks.tokencache import (
    CACHE_SUBDIR,
    TokenCache,
    _warn_once,
    cache_name,
    forget_host,
)
from tests.fixtures.secret_scan import scan_places, secret_needles

CLIENT_ID = "tokencache-test-client-id"
SECRET = "tokencache-test-client-secret-value"
JWT = "eyJhbGciOiJSUzI1NiJ9.tokencache-test-jwt-payload.signature-part"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.tokencache-test-ringcx-access-token.sig"


def settings(
    *, client_id: str = CLIENT_ID, secret: str = SECRET, jwt: str = JWT, **extra: object
) -> RingCXSettings:
    base = {"jwt_token": jwt, "rc_account_id": "980634004", "sub_account_id": "99999999", **extra}
    return RingCXSettings.from_values(
        conn_id="ringcx_test", client_id=client_id, client_secret=secret, extra=base
    )


@pytest.fixture(autouse=True)
def _no_fernet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ``fernet_key`` unless a test sets one; Airflow's ``get_fernet`` is cached per process."""
    from airflow.sdk.crypto import get_fernet

    monkeypatch.delenv("AIRFLOW__CORE__FERNET_KEY", raising=False)
    get_fernet.cache_clear()
    _warn_once.cache_clear()
    yield
    get_fernet.cache_clear()
    _warn_once.cache_clear()


def cache(tmp_path: Path, **kw: object) -> TokenCache:
    made = TokenCache.for_settings(settings(**kw), tmp_path / "budgets")  # type: ignore[arg-type]
    assert made is not None
    return made


def store(entry: TokenCache, value: str = TOKEN, expires_at: float = 2e9) -> None:
    with entry.locked():
        entry.store(value, expires_at)


def load(entry: TokenCache) -> str | None:
    with entry.locked():
        cached = entry.load()
    return cached.value if cached else None


def test_round_trip_with_modes_0600_and_0700(tmp_path: Path) -> None:
    entry = cache(tmp_path)
    store(entry)
    assert load(entry) == TOKEN
    assert entry.directory == tmp_path / "budgets" / CACHE_SUBDIR
    assert stat.S_IMODE(entry.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(entry.lock_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in entry.directory.iterdir()) == sorted(
        [entry.path.name, entry.lock_path.name]
    )
    assert TOKEN not in repr(entry)


def test_the_name_changes_with_every_credential_and_holds_no_secret() -> None:
    base = cache_name(settings())
    others = {
        cache_name(settings(secret=SECRET + "x")),
        cache_name(settings(jwt=JWT + "x")),
        cache_name(settings(client_id=CLIENT_ID + "x")),
        cache_name(settings(sub_account_id="88888888")),
        cache_name(settings(api_url="https://engage.ringcentral.com")),
        cache_name(settings(platform_url="https://platform.devtest.ringcentral.com")),
    }
    assert base not in others
    assert len(others) == 6
    assert base.startswith("ringcx.ringcentral.com-99999999-")
    needles = secret_needles({"client secret": SECRET, "JWT": JWT}, CLIENT_ID)
    assert not scan_places([("name", base)], needles)


def test_the_file_holds_the_token_and_its_expiry_only(tmp_path: Path) -> None:
    entry = cache(tmp_path)
    store(entry, expires_at=1234567890.5)
    assert json.loads(entry.path.read_text()) == {"format": 1, "token": TOKEN, "expires_at": 1234567890.5}


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_file_others_may_read_is_refused_with_one_warning(
    tmp_path: Path, mode: int, caplog: pytest.LogCaptureFixture
) -> None:
    entry = cache(tmp_path)
    store(entry)
    entry.path.chmod(mode)
    with caplog.at_level(logging.WARNING):
        assert load(entry) is None
        assert load(entry) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"has mode {mode:04o}" in warnings[0]
    assert "exchanging a token of this task's own" in warnings[0]
    store(entry, "eyJ.replacement.token")  # the next write replaces it with a private file
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600
    assert load(entry) == "eyJ.replacement.token"


def test_a_directory_others_may_enter_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    entry = cache(tmp_path)
    store(entry)
    entry.directory.chmod(0o755)
    with caplog.at_level(logging.WARNING):
        assert load(entry) is None
        store(entry, "eyJ.not.written")  # nor written
    assert "has mode 0755" in caplog.text
    entry.directory.chmod(0o700)
    assert load(entry) == TOKEN


@pytest.mark.skipif(os.getuid() != 0, reason="changing a file's owner needs root")
def test_a_file_of_another_user_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    entry = cache(tmp_path)
    store(entry)
    os.chown(entry.path, 4242, -1)
    with caplog.at_level(logging.WARNING):
        assert load(entry) is None
    assert "is owned by uid 4242" in caplog.text


def test_a_symbolic_link_is_not_followed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    entry = cache(tmp_path)
    store(entry)
    target = tmp_path / "elsewhere.json"
    entry.path.rename(target)
    entry.path.symlink_to(target)
    with caplog.at_level(logging.WARNING):
        assert load(entry) is None
    assert "is a symbolic link" in caplog.text


@pytest.mark.parametrize(
    "content", [b"", b"not json", b"[]", b'{"format": 1, "token": 5}', b'{"token": "x"}']
)
def test_a_damaged_file_is_a_miss(tmp_path: Path, content: bytes) -> None:
    entry = cache(tmp_path)
    store(entry)
    entry.path.write_bytes(content)
    assert load(entry) is None


def test_evict_removes_only_the_rejected_token(tmp_path: Path) -> None:
    entry = cache(tmp_path)
    store(entry)
    with entry.locked():
        entry.evict("eyJ.some.other-token")
    assert load(entry) == TOKEN
    with entry.locked():
        entry.evict(TOKEN)
    assert not entry.path.exists()


def test_with_airflows_fernet_key_not_even_the_token_is_in_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.crypto import get_fernet

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    entry = cache(tmp_path)
    assert entry.fernet is not None
    assert "encrypted=True" in repr(entry)
    store(entry)
    raw = entry.path.read_text()
    needles = secret_needles({"token": TOKEN, "client secret": SECRET, "JWT": JWT}, CLIENT_ID)
    assert not scan_places([("cache file", raw)], needles)
    assert load(cache(tmp_path)) == TOKEN  # another process with the same key reads it

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())  # another key
    get_fernet.cache_clear()
    assert load(cache(tmp_path)) is None
    monkeypatch.delenv("AIRFLOW__CORE__FERNET_KEY")  # a plain reader ignores the encrypted file too
    get_fernet.cache_clear()
    assert load(cache(tmp_path)) is None


def test_an_invalid_fernet_key_turns_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "not-a-fernet-key")
    with caplog.at_level(logging.WARNING):
        assert TokenCache.for_settings(settings(), tmp_path) is None
    assert "cannot use [core] fernet_key (AirflowException): the cache is off" in caplog.text
    assert "not-a-fernet-key" not in caplog.text


def test_the_extra_turns_it_off_and_auth_mode_token_never_uses_it(tmp_path: Path) -> None:
    assert settings().exchange_cache is True
    for value in (False, "false", "no", "off", "0", " False "):
        assert settings(exchange_cache=value).exchange_cache is False
        assert TokenCache.for_settings(settings(exchange_cache=value), tmp_path) is None
    for value in (True, "true", "yes", "on", "1", ""):
        assert settings(exchange_cache=value).exchange_cache is True
    token_mode = RingCXSettings.from_values(
        conn_id="ringcx_test",
        client_id=None,
        client_secret=None,
        extra={"auth_mode": "token", "api_token": "aws80:x", "rc_account_id": "1", "sub_account_id": "2"},
    )
    assert TokenCache.for_settings(token_mode, tmp_path) is None


def test_a_wrong_flag_names_the_extra_and_the_fix() -> None:
    with pytest.raises(RingCXConfigError, match=r"extra exchange_cache is 'sometimes'; use true or false"):
        settings(exchange_cache="sometimes")


def test_forget_host_deletes_that_hosts_entries_only(tmp_path: Path) -> None:
    here = [
        cache(tmp_path, api_url="http://127.0.0.1:800"),
        cache(tmp_path, api_url="http://127.0.0.1:800", sub_account_id="7"),
    ]
    elsewhere = [cache(tmp_path, api_url="http://127.0.0.1:8000"), cache(tmp_path)]
    for entry in here + elsewhere:
        store(entry)
    assert forget_host(tmp_path / "budgets", "127.0.0.1:800") == 2
    assert [load(entry) for entry in here + elsewhere] == [None, None, TOKEN, TOKEN]
    assert forget_host(tmp_path / "nothing-here", "127.0.0.1:800") == 0
