"""Static provider metadata: connection type and its form, hooks, operators, triggers, extra links."""

from __future__ import annotations

from typing import Any

from airflow_provider_ringcx import __version__

_OPTIONAL_STRING: dict[str, Any] = {"type": ["string", "null"]}


def _field(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {**_OPTIONAL_STRING, **schema}}


CONNECTION_FIELDS: dict[str, dict[str, Any]] = {
    "auth_mode": _field(
        "Auth mode",
        "jwt: RingCentral JWT grant exchanged for a RingCX token (default). "
        "token: a pre-issued permanent RingCX API token.",
        enum=["jwt", "token"],
        default="jwt",
    ),
    # named "jwt_token" (not "jwt") so that Airflow's API and UI redact it: they hide extras by key name, and
    # only names containing e.g. "token" or "secret" count as sensitive.
    "jwt_token": _field(
        "RingCentral JWT", "JWT credential of the RingCentral user (auth mode jwt).", format="password"
    ),
    "api_token": _field(
        "RingCX API token", "Pre-issued permanent RingCX API token (auth mode token).", format="password"
    ),
    "platform_url": _field(
        "RingCentral platform URL",
        "RingCentral OAuth host.",
        default="https://platform.ringcentral.com",
    ),
    "api_url": _field(
        "RingCX API URL",
        "RingCX host; https://engage.ringcentral.com (older host) is also accepted.",
        default="https://ringcx.ringcentral.com",
    ),
    "plain_http_hosts": _field(
        "Plain-http hosts",
        "Host names that may be reached over http (only for a local simulator); every other URL must be "
        "https or loopback.",
    ),
    "rc_account_id": _field(
        "RingCentral account id", "rcAccountId: the RingCentral account UID (id of /account/~)."
    ),
    "sub_account_id": _field(
        "RingCX sub-account id", "subAccountId: the RingCX sub-account whose recordings are archived."
    ),
    "timezone": _field(
        "Time zone",
        "IANA time zone sent as timeZone to interaction-metadata (window times are converted to it).",
        default="UTC",
    ),
    "max_window_seconds": _field(
        "Max metadata window (s)", "Longest interaction-metadata window, 60..10800 (default 3600)."
    ),
    "metadata_budget": _field(
        "Metadata budget", "Requests per window, comma-separated, e.g. 2/60,9/900 (default)."
    ),
    "download_budget": _field("Download budget", "Recording downloads per window, e.g. 120/60 (default)."),
    # not "token_budget": Airflow masks extras whose name contains "token"
    "exchange_budget": _field(
        "Token exchange budget", "RingCX token exchanges and refreshes per window, e.g. 5/60 (default)."
    ),
    "connect_timeout": _field("Connect timeout (s)", "TCP connect timeout in seconds (default 10)."),
    "read_timeout": _field("Read timeout (s)", "Socket read timeout in seconds (default 60)."),
    "retry_attempts": _field(
        "Retry attempts", "Attempts per request on 429/5xx/connection errors, 1..20 (default 5)."
    ),
    "retry_max_wait_seconds": _field(
        "Retry wait limit (s)", "Total seconds of waiting between attempts of one request (default 300)."
    ),
    "backoff_initial_seconds": _field(
        "Backoff start (s)", "First exponential backoff step, with jitter (default 1)."
    ),
    "backoff_max_seconds": _field("Backoff cap (s)", "Longest single backoff step (default 60)."),
    "rate_limit_backoff_seconds": _field(
        "429 backoff (s)", "Smallest backoff after a 429 without Retry-After (default 20)."
    ),
    "refresh_margin_seconds": _field(
        "Token refresh margin (s)", "Refresh the RingCX token this long before it expires (default 60)."
    ),
    "download_deadline_floor_seconds": _field(
        "Download deadline floor (s)",
        "Smallest total time a recording body may take to arrive (default 60).",
    ),
    "download_min_bytes_per_second": _field(
        "Slowest download (bytes/s)",
        "A recording's deadline is its size at this rate, at least the floor (default 131072 = 128 KiB/s).",
    ),
    "metadata_deadline_seconds": _field(
        "Metadata deadline (s)", "Total time one interaction-metadata response may take (default 300)."
    ),
}

PROVIDER_INFO: dict[str, Any] = {
    "package-name": "airflow-provider-ringcx",
    "name": "RingCentral RingCX",
    "description": "Archive RingCentral RingCX call recordings into Amazon S3.",
    "versions": [__version__],
    "connection-types": [
        {
            "connection-type": "ringcx",
            "hook-class-name": "airflow_provider_ringcx.hooks.ringcx.RingCXHook",
            "hook-name": "RingCentral RingCX",
            "conn-fields": CONNECTION_FIELDS,
            "ui-field-behaviour": {
                "hidden-fields": ["schema", "port", "host"],
                "relabeling": {"login": "RingCentral client id", "password": "RingCentral client secret"},
                "placeholders": {
                    "login": "RingCentral app client id",
                    "password": "RingCentral app client secret",
                },
            },
        }
    ],
    "hooks": [
        {
            "integration-name": "RingCentral RingCX",
            "python-modules": ["airflow_provider_ringcx.hooks.ringcx"],
        }
    ],
    "operators": [
        {
            "integration-name": "RingCentral RingCX",
            "python-modules": [
                "airflow_provider_ringcx.operators.metadata",
                "airflow_provider_ringcx.operators.recordings",
            ],
        }
    ],
    "triggers": [
        {
            "integration-name": "RingCentral RingCX",
            "python-modules": ["airflow_provider_ringcx.triggers.window"],
        }
    ],
    "extra-links": [
        "airflow_provider_ringcx.links.RingCXS3PrefixLink",
        "airflow_provider_ringcx.links.RingCXReportLink",
    ],
    "integrations": [
        {
            "integration-name": "RingCentral RingCX",
            "external-doc-url": "https://developers.ringcentral.com/engage/voice/guide/workforce/call-recording",
            "tags": ["service"],
        }
    ],
}
