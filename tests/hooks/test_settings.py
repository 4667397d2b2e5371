"""Connection validation: every error names the field and the fix; secrets stay out of repr."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection
from airflow.sdk.log import redact

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.hooks.budget import BudgetLimit
from airflow_provider_ringcx.hooks.settings import RingCXSettings

SECRET = "settings-test-client-secret-value"
JWT = "eyJhbGciOiJSUzI1NiJ9.settings-test-jwt-payload.signature-part"
API_TOKEN = "aws80:settings-test-permanent-token"


def make(extra: dict | None = None, login: str | None = "client-id", password: str | None = SECRET):
    base = {"jwt_token": JWT, "rc_account_id": "980634004", "sub_account_id": "99999999"}
    conn = Connection(
        conn_id="ringcx_test",
        conn_type="ringcx",
        login=login,
        password=password,
        extra=json.dumps({**base, **(extra or {})}),
    )
    return RingCXSettings.from_connection(conn)


def test_defaults_follow_the_product_decisions():
    s = make()
    assert s.auth_mode == "jwt"
    assert s.api_url == "https://ringcx.ringcentral.com"
    assert s.platform_url == "https://platform.ringcentral.com"
    assert s.timezone == "UTC"
    assert s.max_window_seconds == 3600
    assert s.metadata_budget == (BudgetLimit(2, 60), BudgetLimit(9, 900))
    assert s.download_budget == (BudgetLimit(120, 60),)
    assert s.exchange_budget == (BudgetLimit(5, 60),)
    assert (s.connect_timeout, s.read_timeout) == (10, 60)
    assert s.budget_key("metadata") == "ringcx.ringcentral.com|99999999|metadata"


def test_form_values_arrive_as_strings():
    s = make(
        {
            "max_window_seconds": "10800",
            "metadata_budget": "3/60, 9/900",
            "download_budget": "off",
            "timezone": "US/Eastern",
            "api_url": "http://127.0.0.1:8765/",
            "connect_timeout": "2.5",
            "rc_account_id": 980634004,
        }
    )
    assert s.max_window_seconds == 10800
    assert s.metadata_budget == (BudgetLimit(3, 60), BudgetLimit(9, 900))
    assert s.download_budget == ()
    assert s.tz.key == "US/Eastern"
    assert s.api_url == "http://127.0.0.1:8765"
    assert s.connect_timeout == 2.5
    assert s.rc_account_id == "980634004"


def test_budget_and_margin_fields_are_not_masked_as_secrets():
    """Airflow masks extras whose name contains "token"; our non-secret knobs must not be named so."""
    from airflow.sdk._shared.secrets_masker import should_hide_value_for_key

    assert make({"exchange_budget": "3/60"}).exchange_budget == (BudgetLimit(3, 60),)
    from airflow_provider_ringcx.provider_info import CONNECTION_FIELDS

    for name in CONNECTION_FIELDS:
        assert should_hide_value_for_key(name) == (name in ("jwt_token", "api_token")), name


def test_jwt_is_read_from_the_jwt_token_field():
    assert make({"jwt_token": "eyJ.other-jwt.sig"}).jwt == "eyJ.other-jwt.sig"
    assert make().jwt == JWT


def test_repr_and_masker_hide_secrets():
    s = make()
    text = repr(s) + str(s)
    for secret in (SECRET, JWT):
        assert secret not in text
        assert secret not in redact(f"leak {secret} here")
    token = make({"auth_mode": "token", "api_token": API_TOKEN}, login=None, password=None)
    assert API_TOKEN not in repr(token)
    assert API_TOKEN not in redact(f"leak {API_TOKEN}")


@pytest.mark.parametrize(
    ("extra", "field", "fix"),
    [
        ({"timezone": "Mars/Base"}, "timezone", "IANA name"),
        ({"max_window_seconds": "0"}, "max_window_seconds", "1..10800"),
        ({"max_window_seconds": 10801}, "max_window_seconds", "1..10800"),
        ({"max_window_seconds": "1h"}, "max_window_seconds", "not a number"),
        ({"max_window_seconds": "90.5"}, "max_window_seconds", "whole number"),
        ({"metadata_budget": "2 per minute"}, "metadata_budget", "COUNT/SECONDS"),
        ({"download_budget": "0/60"}, "download_budget", "positive"),
        ({"sub_account_id": None}, "sub_account_id", "RingCX sub-account id"),
        ({"sub_account_id": "99/../1"}, "sub_account_id", "letters, digits"),
        ({"rc_account_id": ""}, "rc_account_id", "RingCentral account UID"),
        ({"api_url": "ringcx.ringcentral.com"}, "api_url", "http(s) base URL"),
        ({"auth_mode": "oauth"}, "auth_mode", "'jwt' or 'token'"),
        ({"jwt_token": ""}, "jwt_token", "JWT credential"),
        ({"auth_mode": "token"}, "api_token", "permanent RingCX API token"),
        ({"read_timeout": "-1"}, "read_timeout", "0.001..3600"),
        ({"retry_attempts": "0"}, "retry_attempts", "1..100"),
    ],
)
def test_errors_name_the_field_and_the_fix(extra, field, fix):
    with pytest.raises(RingCXConfigError) as info:
        make(extra)
    message = str(info.value)
    assert field in message
    assert fix in message
    assert "ringcx_test" in message
    assert SECRET not in message
    assert JWT not in message


def test_missing_client_credentials_are_named():
    with pytest.raises(RingCXConfigError, match="login"):
        make(login=None)
    with pytest.raises(RingCXConfigError, match="password"):
        make(password="")
