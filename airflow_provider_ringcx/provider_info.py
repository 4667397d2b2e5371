"""What this provider tells Airflow's ProvidersManager, in the shape the Apache providers use.

``get_provider_info()`` (the ``apache_airflow_provider`` entry point) returns :data:`PROVIDER_INFO`: the
connection type and its form, the hook, operator, transfer and trigger modules, the extra links, the
``ringcx://`` asset scheme and the ``[ringcx]`` config section. Airflow reads it in every process (CLI, API
server, scheduler, workers), while ``import airflow`` itself is discovering providers, so this module and
what it imports must not import Airflow (a circular import would break every Airflow command).

Nothing here is a second copy of a decision made elsewhere:

- the numeric connection fields take their JSON-schema type and ``minimum``/``maximum`` from
  :data:`~airflow_provider_ringcx.hooks.bounds.RANGES` (the table the hook validates with); the React
  connection form then shows a number input bounded like the hook. Their defaults are quoted in the
  descriptions, and a test holds them to :data:`~airflow_provider_ringcx.hooks.settings.DEFAULTS` (that
  module imports Airflow, which this one must not: see below);
- the ``[ringcx]`` section's names are :data:`~airflow_provider_ringcx.hooks.budget.CONFIG_SECTION` and
  :data:`~airflow_provider_ringcx.hooks.budget.BUDGET_DIR_OPTION`, which
  :func:`~airflow_provider_ringcx.hooks.budget.default_budget_dir` reads;
- ``documentation-url`` and ``dependencies`` come from the installed distribution's metadata
  (``[project.urls]`` and ``dependencies`` of ``pyproject.toml``). Airflow itself sets ``documentation-url``
  from the ``Documentation`` project URL when it discovers the provider; reading the same field here makes a
  direct ``get_provider_info()`` call agree with it.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from airflow_provider_ringcx import __version__
from airflow_provider_ringcx.assets import ASSET_SCHEME
from airflow_provider_ringcx.hooks.bounds import RANGES
from airflow_provider_ringcx.hooks.budget import (
    BACKENDS,
    BUDGET_BACKEND_OPTION,
    BUDGET_DIR_ENV,
    BUDGET_DIR_OPTION,
    BUDGET_REDIS_CONN_OPTION,
    BUDGET_REDIS_URL_OPTION,
    CONFIG_SECTION,
)
from airflow_provider_ringcx.subaccounts.listing import SUB_ACCOUNTS_OPTION

DISTRIBUTION = "airflow-provider-ringcx"
INTEGRATION = "RingCentral RingCX"
#: The integration name the Amazon provider gives S3 (the target of the recordings transfer).
S3_INTEGRATION = "Amazon Simple Storage Service (S3)"

_OPTIONAL_STRING: dict[str, Any] = {"type": ["string", "null"]}


def _field(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {**_OPTIONAL_STRING, **schema}}


def _number(name: str, label: str, description: str, default: float) -> dict[str, Any]:
    """A numeric extra, typed and bounded by its :data:`RANGES` entry.

    No ``default`` goes into the schema: the form would prefill it and store it in the extra, which would pin
    today's default into every connection. The default is quoted in the description instead.
    """
    bound = RANGES[name]
    kind = "integer" if bound.integer else "number"
    schema = {"type": [kind, "null"], "minimum": _plain(bound.low), "maximum": _plain(bound.high)}
    accepted = bound.describe()
    text = f"{description} {accepted[0].upper()}{accepted[1:]}; default {default:g}."
    return {"label": label, "description": text, "schema": schema}


def _plain(value: float) -> int | float:
    """``60.0`` as ``60`` (JSON and the form show it without a decimal point)."""
    return int(value) if float(value).is_integer() else value


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
    "redirect_allowed_hosts": _field(
        "Redirect-allowed internal hosts",
        "Private or loopback hosts (names or IP addresses, comma-separated) that a recording download may "
        "be redirected to over https; other internal addresses are refused.",
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
    "max_window_seconds": _number(
        "max_window_seconds",
        "Max metadata window (s)",
        "Longest interaction-metadata window in seconds.",
        3600,
    ),
    "metadata_budget": _field(
        "Metadata budget", "Requests per window, comma-separated, e.g. 2/60,9/900 (default)."
    ),
    "download_budget": _field("Download budget", "Recording downloads per window, e.g. 120/60 (default)."),
    "transcript_budget": _field(
        "Transcript budget",
        "Transcript and AI summary requests per window (one RingCX class), apart from downloads: 120/60.",
    ),
    # not "token_budget": Airflow masks extras whose name contains "token"
    "exchange_budget": _field(
        "Token exchange budget", "RingCX token exchanges and refreshes per window, e.g. 5/60 (default)."
    ),
    # not "token_cache", for the same reason
    "exchange_cache": _field(
        "Share the RingCX token",
        "true (default): the tasks of a host reuse one RingCX token from a 0600 file in the budget "
        "directory (Fernet-encrypted when Airflow's fernet_key is set) instead of one exchange each. "
        "false: every task exchanges its own.",
        enum=["true", "false"],
        default="true",
    ),
    "connect_timeout": _number(
        "connect_timeout", "Connect timeout (s)", "TCP connect timeout in seconds.", 10
    ),
    "read_timeout": _number("read_timeout", "Read timeout (s)", "Socket read timeout in seconds.", 60),
    "retry_attempts": _number(
        "retry_attempts", "Retry attempts", "Attempts per request on 429/5xx/connection errors.", 5
    ),
    "retry_max_wait_seconds": _number(
        "retry_max_wait_seconds",
        "Retry wait limit (s)",
        "Total seconds of waiting between attempts of one request.",
        300,
    ),
    "backoff_initial_seconds": _number(
        "backoff_initial_seconds", "Backoff start (s)", "First exponential backoff step, with jitter.", 1
    ),
    "backoff_max_seconds": _number(
        "backoff_max_seconds", "Backoff cap (s)", "Longest single backoff step.", 60
    ),
    "rate_limit_backoff_seconds": _number(
        "rate_limit_backoff_seconds",
        "429 backoff (s)",
        "Smallest backoff after a 429 without Retry-After.",
        20,
    ),
    "refresh_margin_seconds": _number(
        "refresh_margin_seconds",
        "Token refresh margin (s)",
        "Refresh the RingCX token this long before it expires.",
        60,
    ),
    "download_deadline_floor_seconds": _number(
        "download_deadline_floor_seconds",
        "Download deadline floor (s)",
        "Smallest total time a recording body may take to arrive.",
        60,
    ),
    "download_min_bytes_per_second": _number(
        "download_min_bytes_per_second",
        "Slowest download (bytes/s)",
        "A recording's deadline is its size at this rate (131072 = 128 KiB/s), at least the floor.",
        131072,
    ),
    "metadata_deadline_seconds": _number(
        "metadata_deadline_seconds",
        "Metadata deadline (s)",
        "Total time one interaction-metadata response may take.",
        300,
    ),
}

#: The ``[ringcx]`` section of ``airflow.cfg`` (``AIRFLOW__RINGCX__<OPTION>`` in the environment), declared as
#: the Apache providers declare theirs, so ``airflow config list`` and ``get-value`` know it.
CONFIG: dict[str, Any] = {
    CONFIG_SECTION: {
        "description": "Settings of the RingCentral RingCX provider that every Airflow process of a host "
        "(CLI, API server, scheduler, triggerer, workers) must share.",
        "options": {
            BUDGET_DIR_OPTION: {
                "description": "Directory of the shared request budgets: one small JSON file per RingCX "
                "host, sub-account and endpoint, locked with flock, through which every process of the "
                "host paces its RingCX calls. Every Airflow process of the host must use the same "
                "directory (processes on other hosts pace themselves apart). Unset: the "
                f"deprecated environment variable {BUDGET_DIR_ENV}, else "
                "<tempdir>/airflow-provider-ringcx-budgets.",
                "version_added": "0.2.0",
                "type": "string",
                "example": "/opt/airflow/budgets",
                "default": None,
            },
            BUDGET_BACKEND_OPTION: {
                "description": "Where the shared request budgets live: file (one locked file per budget in "
                f"{BUDGET_DIR_OPTION}; every process of one host shares them) or redis (every worker of "
                "every host shares them, and one host's 429 back-off holds all; set "
                f"{BUDGET_REDIS_URL_OPTION} or {BUDGET_REDIS_CONN_OPTION} and install "
                "airflow-provider-ringcx[redis]). If Redis cannot be reached, requests fail rather than go "
                "unpaced.",
                "version_added": "0.2.0",
                "type": "string",
                "example": "redis",
                "default": BACKENDS[0],
            },
            BUDGET_REDIS_URL_OPTION: {
                "description": f"The Redis of {BUDGET_BACKEND_OPTION} = redis: "
                "redis://[:password@]host:port/db (rediss:// for TLS). Every worker of every host must name "
                "the same one. The password is masked in logs and never shown in messages.",
                "version_added": "0.2.0",
                "type": "string",
                "sensitive": True,
                "example": "redis://:password@redis:6379/1",
                "default": None,
            },
            SUB_ACCOUNTS_OPTION: {
                "description": "The sub-accounts the example DAGs archive, one DAG each (per DAG kind: "
                "ringcx_recordings_to_s3__<id>, ringcx_recordings_history__<id>, "
                "ringcx_archive_audit__<id>), "
                "with the ringcx connection's credentials. Comma-separated ids, or a JSON list of ids and "
                'objects {"id", "name", and overrides of any run setting: "prefix", "kms_key_id", '
                '"object_lock_retention_days"...}. Read when the DAG files are parsed (no connection, no '
                "network); python -m airflow_provider_ringcx sub-accounts prints the line for the main "
                "account's active sub-accounts. Each sub-account's DAGs use their own pools "
                "(ringcx_metadata__<id>, ringcx_downloads__<id>, and the history ones). Unset: one DAG of "
                "each kind, for the connection's sub_account_id.",
                "version_added": "0.2.0",
                "type": "string",
                "example": "11111111,22222222",
                "default": None,
            },
            BUDGET_REDIS_CONN_OPTION: {
                "description": f"Instead of {BUDGET_REDIS_URL_OPTION}: an Airflow connection of type redis "
                "(host, port, password; extra db and ssl) naming the Redis of "
                f"{BUDGET_BACKEND_OPTION} = redis.",
                "version_added": "0.2.0",
                "type": "string",
                "example": "redis_budget",
                "default": None,
            },
        },
    },
}


def _distribution_metadata() -> tuple[str | None, list[str]]:
    """The ``Documentation`` project URL and the runtime requirements of the installed distribution.

    ``(None, [])`` when the package runs without its distribution metadata (e.g. copied into a DAG folder);
    Airflow discovers providers through that metadata, so it never sees this case.
    """
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None, []
    documentation = None
    for entry in dist.metadata.get_all("Project-URL") or []:
        name, _, url = entry.partition(",")
        if name.strip().lower() == "documentation":
            documentation = url.strip()
    requirements = [req for req in dist.requires or [] if "extra ==" not in req]
    return documentation, requirements


_DOCUMENTATION_URL, _DEPENDENCIES = _distribution_metadata()

PROVIDER_INFO: dict[str, Any] = {
    "package-name": DISTRIBUTION,
    "name": INTEGRATION,
    "description": "Archive RingCentral RingCX call recordings into Amazon S3.",
    "versions": [__version__],
    "documentation-url": _DOCUMENTATION_URL,
    "dependencies": _DEPENDENCIES,
    "integrations": [
        {
            "integration-name": INTEGRATION,
            "external-doc-url": "https://developers.ringcentral.com/engage/voice/guide/workforce/call-recording",
            "tags": ["service"],
        }
    ],
    "connection-types": [
        {
            "connection-type": "ringcx",
            "hook-class-name": "airflow_provider_ringcx.hooks.ringcx.RingCXHook",
            "hook-name": INTEGRATION,
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
            "integration-name": INTEGRATION,
            "python-modules": ["airflow_provider_ringcx.hooks.ringcx"],
        }
    ],
    "operators": [
        {
            "integration-name": INTEGRATION,
            "python-modules": [
                "airflow_provider_ringcx.operators.metadata",
                "airflow_provider_ringcx.operators.recordings",
                "airflow_provider_ringcx.operators.report",
                "airflow_provider_ringcx.operators.holds",
            ],
        }
    ],
    "transfers": [
        {
            "source-integration-name": INTEGRATION,
            "target-integration-name": S3_INTEGRATION,
            "python-module": "airflow_provider_ringcx.operators.recordings",
        }
    ],
    "triggers": [
        {
            "integration-name": INTEGRATION,
            "python-modules": ["airflow_provider_ringcx.triggers.window"],
        }
    ],
    "notifications": ["airflow_provider_ringcx.notifications.file.RingCXFileNotifier"],
    "extra-links": [
        "airflow_provider_ringcx.links.RingCXS3PrefixLink",
        "airflow_provider_ringcx.links.RingCXWindowManifestLink",
        "airflow_provider_ringcx.links.RingCXReportLink",
    ],
    # The archive's Asset is s3://{bucket}/{prefix} (the Amazon provider's scheme) when the bucket is known
    # at parse time, else ringcx://recordings-archive: this provider's scheme, normalised here (assets.py).
    "asset-uris": [{"schemes": [ASSET_SCHEME], "handler": "airflow_provider_ringcx.assets.sanitize_uri"}],
    "config": CONFIG,
}
