"""What the provider registers with Airflow's secret masker (issue #12 item 10).

Every ``mask_secret`` call sends its value to the task supervisor in a ``MaskSecret`` message, which
in-process runners (``dag.test()``'s ``InProcessSupervisorComms.send``) log at DEBUG. So the provider
registers only what Airflow does not: the client secret (Airflow masks a password only when the connection
is read through ``get_connection``) and the tokens it is issued and uses. The ``jwt_token`` and
``api_token`` extras are masked by Airflow's ``Connection.extra_dejson`` (their names hold "token").
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk._shared.secrets_masker import redact

from airflow_provider_ringcx.hooks import masking, settings


@pytest.fixture
def mask_requests(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every value the provider passes to ``mask_secret`` (the real one still runs)."""
    calls: list[Any] = []
    real = masking.mask_secret  # the one place the provider masks (settings and auth use it)

    def counting(value: Any, name: str | None = None) -> None:
        calls.append(value)
        real(value, name)

    monkeypatch.setattr(masking, "mask_secret", counting)
    return calls


def test_only_used_tokens_are_masked_by_the_provider(
    simulator: Any, connect: Any, mask_requests: list
) -> None:
    hook = connect(simulator)
    hook.tokens.token()
    cfg = simulator.config
    # Airflow masked the connection's secrets when the hook read the connection ...
    assert redact(f"x {cfg.client_secret} y") == "x *** y"
    assert redact(f"x {cfg.jwt} y") == "x *** y"
    # ... the provider does not send the JWT again; it masks the tokens it uses, not the unused RC refresh
    assert cfg.jwt not in mask_requests
    issued = {t["kind"]: t["token"] for t in simulator.control.stats()["tokens_issued"]}
    expected = [cfg.client_secret, issued["rc_access"], issued["access"], issued["refresh"]]
    assert sorted(mask_requests) == sorted(expected)
    assert issued["rc_refresh"] not in mask_requests


def test_settings_built_from_values_still_mask(mask_requests: list) -> None:
    settings.RingCXSettings.from_values(
        conn_id="c",
        client_id="id",
        client_secret="a-client-secret-0123",
        extra={"jwt_token": "a-jwt-0123456789", "rc_account_id": "1", "sub_account_id": "2"},
    )
    assert mask_requests == ["a-client-secret-0123", "a-jwt-0123456789"]


def test_a_secret_extra_pasted_with_whitespace_is_masked_as_sent(mask_requests: list) -> None:
    """Airflow masks the raw extra (``"jwt\\n"``); the hook sends it stripped: that one is masked."""
    settings.RingCXSettings.from_values(
        conn_id="c",
        client_id="id",
        client_secret="a-client-secret-0123",
        extra={"jwt_token": "a-jwt-0123456789\n", "rc_account_id": "1", "sub_account_id": "2"},
        mask_extras=False,
    )
    assert "a-jwt-0123456789" in mask_requests


@pytest.mark.parametrize(
    ("url", "forms"),
    [
        ("redis://:Raw-pw-one1@127.0.0.1:6379/0", ["Raw-pw-one1"]),
        ("redis://:Pct%40pw%2Ftwo2@h:6379/0", ["Pct%40pw%2Ftwo2", "Pct@pw/two2"]),
        ("rediss://budget:Raw@At-three3@h:6380/2", ["Raw@At-three3"]),
        ("redis://h:6379/0?password=Query%26four4&socket_timeout=3", ["Query%26four4", "Query&four4"]),
        ("redis://h:6379/0?password=Plain-five5", ["Plain-five5"]),
    ],
)
def test_every_form_of_a_url_password_is_masked(url: str, forms: list[str]) -> None:
    """A Redis URL's password is masked as written (encoded or not) and decoded (what redis-py sends)."""
    assert set(masking.url_secrets(url)) == set(forms)
    masking.mask_url_secrets(url)
    shown = masking.mask_url(url)
    for form in forms:
        assert form not in redact(f"log line: {form} and {url}")
        assert form not in shown
    assert "***" in shown
    assert "h:63" in shown or "127.0.0.1:6379" in shown  # where it is stays readable


def test_an_unencoded_slash_hash_or_question_mark_in_a_password_is_found() -> None:
    assert masking.unencoded_password("redis://:pa/ss@h:6379/0")
    assert masking.unencoded_password("redis://u:pa#ss@h:6379/0")
    assert masking.mask_url("redis://u:pa#ss@h:6379/0") == "redis://u:***@h:6379/0"
    assert not masking.unencoded_password("redis://:pa%2Fss@h:6379/0")
    assert not masking.unencoded_password("redis://:p@ss@h:6379/0")  # '@': the last one ends the userinfo
    assert not masking.unencoded_password("redis://h:6379/0")
