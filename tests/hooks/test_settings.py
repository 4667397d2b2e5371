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
    assert s.transcript_budget == (BudgetLimit(120, 60),)  # its own, apart from the downloads
    assert s.budget_key("transcript") == "ringcx.ringcentral.com|99999999|transcript"
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
        ({"max_window_seconds": "0"}, "max_window_seconds", "60..10800"),
        ({"max_window_seconds": 10801}, "max_window_seconds", "60..10800"),
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
        ({"read_timeout": "-1"}, "read_timeout", "0.001..600"),
        ({"retry_attempts": "0"}, "retry_attempts", "1..20"),
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


# --- item 8: plain http and userinfo URLs -----------------------------------------------------------------


@pytest.mark.parametrize("field", ["platform_url", "api_url"])
@pytest.mark.parametrize(
    "url",
    [
        "http://ringcx.ringcentral.com",
        "http://10.0.0.5:8765",
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example",
        "ftp://ringcx.ringcentral.com",
    ],
)
def test_plain_http_to_a_non_loopback_host_is_refused_naming_the_field(field, url):
    with pytest.raises(RingCXConfigError) as info:
        make({field: url})
    message = str(info.value)
    assert f"extra {field} " in message
    assert "https" in message
    assert "ringcx_test" in message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765",
        "http://127.3.4.5:1",
        "http://[::1]:8765/",
        "http://localhost:8765",
        "https://x.io",
    ],
)
def test_https_or_loopback_http_is_accepted(url):
    assert make({"api_url": url, "platform_url": url}).api_url == url.rstrip("/")


def test_plain_http_hosts_lets_a_named_host_use_http_and_nothing_else():
    s = make(
        {
            "api_url": "http://simulator:8765",
            "platform_url": "http://Simulator:8765",
            "plain_http_hosts": "simulator",
        }
    )
    assert s.api_url == "http://simulator:8765"
    assert s.plain_http_hosts == ("simulator",)
    with pytest.raises(RingCXConfigError, match="extra platform_url"):
        make(
            {
                "api_url": "http://simulator:8765",
                "platform_url": "http://other:1",
                "plain_http_hosts": "simulator",
            }
        )
    with pytest.raises(RingCXConfigError, match="extra plain_http_hosts"):
        make({"plain_http_hosts": "10.0.0.5"})


@pytest.mark.parametrize("field", ["platform_url", "api_url"])
@pytest.mark.parametrize(
    "url",
    [
        "https://svc-user:Pa55-w0rd-Secret@ringcx.ringcentral.com",
        "https://Pa55-w0rd-Secret@ringcx.ringcentral.com/",
        "http://svc-user:Pa55-w0rd-Secret@127.0.0.1:8765",
        "https://ringcx.ringcentral.com\\:Pa55-w0rd-Secret@evil.example",
        "ftp://svc-user:Pa55-w0rd-Secret@host",
    ],
)
def test_userinfo_urls_are_refused_without_echoing_the_credentials(field, url):
    with pytest.raises(RingCXConfigError) as info:
        make({field: url})
    message = str(info.value)
    assert f"extra {field} " in message
    assert "Pa55-w0rd-Secret" not in message
    assert "svc-user" not in message
    assert "Pa55-w0rd-Secret" not in repr(info.value)


def test_an_invalid_port_or_host_is_refused_without_a_traceback():
    for url in ("https://ringcx.ringcentral.com:99999", "https://[::1", "https://bad host"):
        with pytest.raises(RingCXConfigError, match="extra api_url"):
            make({"api_url": url})


# --- item 17: every numeric setting bounded, and absurd combinations ---------------------------------------


@pytest.mark.parametrize(
    ("extra", "field", "fix"),
    [
        ({"download_budget": "1/31536000"}, "download_budget", "window of at most 3600 s"),
        ({"metadata_budget": "2/60,1/3600"}, "metadata_budget", "one request per 3600 s"),
        ({"exchange_budget": "1000000/60"}, "exchange_budget", "count 1000000 is outside"),
        ({"connect_timeout": 600}, "connect_timeout", "0.001..120"),
        ({"read_timeout": 3600}, "read_timeout", "0.001..600"),
        ({"retry_attempts": 100}, "retry_attempts", "1..20"),
        ({"retry_max_wait_seconds": 86400}, "retry_max_wait_seconds", "0..3600"),
        ({"backoff_initial_seconds": 3600}, "backoff_initial_seconds", "0..300"),
        ({"backoff_max_seconds": 3600}, "backoff_max_seconds", "0..900"),
        ({"rate_limit_backoff_seconds": 3600}, "rate_limit_backoff_seconds", "0..900"),
        ({"refresh_margin_seconds": 300}, "refresh_margin_seconds", "0..240"),
        ({"max_window_seconds": 30}, "max_window_seconds", "60..10800"),
        ({"connect_timeout": "nan"}, "connect_timeout", "0.001..120"),
        ({"read_timeout": "inf"}, "read_timeout", "0.001..600"),
    ],
)
def test_absurd_values_are_refused_with_field_value_range_and_fix(extra, field, fix):
    with pytest.raises(RingCXConfigError) as info:
        make(extra)
    message = str(info.value)
    assert f"extra {field} " in message
    assert fix in message
    assert str(next(iter(extra.values()))) in message


def test_every_default_is_inside_its_range():
    from airflow_provider_ringcx.hooks.bounds import RANGES
    from airflow_provider_ringcx.hooks.settings import DEFAULTS

    for name, bound in RANGES.items():
        assert bound.low <= DEFAULTS[name] <= bound.high, name
    s = make()  # and the defaults pass every combination check
    assert s.retry_attempts == 5


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (
            {"read_timeout": 600, "retry_attempts": 20},
            ("retry_attempts=20", "read_timeout=600", "connect_timeout=10", "retry_max_wait_seconds=300"),
        ),
        ({"backoff_initial_seconds": 120, "backoff_max_seconds": 60}, ("backoff_initial_seconds=120",)),
        (
            {"max_window_seconds": 60, "metadata_budget": "2/60,9/900"},
            ("metadata_budget='2/60,9/900'", "max_window_seconds=60", "at least 100"),
        ),
    ],
)
def test_absurd_combinations_are_refused_naming_every_field(extra, names):
    with pytest.raises(RingCXConfigError) as info:
        make(extra)
    for name in names:
        assert name in str(info.value)


def test_the_settings_the_suites_use_still_pass():
    """The fast-test knobs (time_scale 60 windows, tiny backoffs) stay inside the ranges."""
    make({"metadata_budget": "2/1,9/15", "max_window_seconds": 600, "retry_attempts": 1})
    make({"read_timeout": 0.3, "refresh_margin_seconds": 0.3, "download_budget": "120/1"})
    make({"retry_attempts": 5, "rate_limit_backoff_seconds": 2, "backoff_max_seconds": 100})
    make(
        {
            "retry_attempts": 4,
            "retry_max_wait_seconds": 30,
            "backoff_initial_seconds": 0.01,
            "backoff_max_seconds": 0.05,
            "rate_limit_backoff_seconds": 0.02,
        }
    )
