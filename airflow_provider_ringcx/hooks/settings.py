"""Validated, immutable settings of a ``ringcx`` connection.

:class:`RingCXSettings` is built once per hook from the Airflow connection. Every problem is reported as a
:class:`~airflow_provider_ringcx.exceptions.RingCXConfigError` that names the connection field and says how
to fix it. Secrets (client secret, JWT, API token) are registered with Airflow's secret masker as they are
read (:mod:`~airflow_provider_ringcx.hooks.masking`) and never appear in ``repr``.

URLs (issue #12 item 8): ``platform_url`` and ``api_url`` receive the client secret, the JWT and every token,
so they must be ``https``; plain ``http`` is accepted only for loopback hosts (127.0.0.0/8, ``::1``,
``localhost``: the bundled simulator) and for host names listed in the extra ``plain_http_hosts`` (the
docker-compose demo's ``simulator``). A URL with ``user:password@`` is refused without echoing it, so
credentials pasted into a URL never reach a repr, a log line or an error.

Ranges (item 17): every numeric extra has a sane range in
:data:`~airflow_provider_ringcx.hooks.bounds.RANGES` (imported here), one table that the error messages and
the docs quote, and combinations whose worst case is absurd are refused too (see
:func:`check_combinations`): one request may not hold a worker for over an hour, backoff steps must grow, and
the metadata budget must let the windows keep up with real time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.hooks.bounds import (
    BUDGET_MAX_SPACING_SECONDS,
    BUDGET_WINDOW,
    DOWNLOAD_DEADLINE_FLOOR_SECONDS,
    DOWNLOAD_MIN_BYTES_PER_SECOND,
    MAX_REQUEST_WORST_CASE_SECONDS,
    METADATA_DEADLINE_SECONDS,
    RANGES,
    budget_limit_problem,
)
from airflow_provider_ringcx.hooks.budget import BudgetLimit, parse_budget
from airflow_provider_ringcx.hooks.masking import mask, mask_stripped
from airflow_provider_ringcx.hooks.urls import HOST_NAME, base_url_problem, is_ip

DEFAULT_PLATFORM_URL = "https://platform.ringcentral.com"
DEFAULT_API_URL = "https://ringcx.ringcentral.com"
AUTH_MODES = ("jwt", "token")

#: Connection extras with their defaults (strings as typed in the connection form).
DEFAULTS: dict[str, Any] = {
    "auth_mode": "jwt",
    "platform_url": DEFAULT_PLATFORM_URL,
    "api_url": DEFAULT_API_URL,
    "timezone": "UTC",
    "max_window_seconds": 3600,
    "metadata_budget": "2/60,9/900",
    "download_budget": "120/60",
    "exchange_budget": "5/60",
    "transcript_budget": "120/60",  # transcripts and AI summaries (issue 17): one 120/min class of RingCX's
    "connect_timeout": 10.0,
    "read_timeout": 60.0,
    "retry_attempts": 5,
    "retry_max_wait_seconds": 300.0,
    "backoff_initial_seconds": 1.0,
    "backoff_max_seconds": 60.0,
    "rate_limit_backoff_seconds": 20.0,
    "refresh_margin_seconds": 60.0,
    "plain_http_hosts": "",
    "redirect_allowed_hosts": "",
    "exchange_cache": True,  # hooks/tokencache.py; not "token_cache" (see exchange_budget)
    # total deadlines of response bodies (issue #12 item 11; defaults owned by hooks/bounds.py)
    "download_deadline_floor_seconds": DOWNLOAD_DEADLINE_FLOOR_SECONDS,
    "download_min_bytes_per_second": DOWNLOAD_MIN_BYTES_PER_SECOND,
    "metadata_deadline_seconds": METADATA_DEADLINE_SECONDS,
}


@dataclass(frozen=True)
class RingCXSettings:
    """Everything the hook needs from the connection, validated.

    Secrets are kept out of ``repr`` and comparisons.
    """

    conn_id: str
    auth_mode: str
    rc_account_id: str
    sub_account_id: str
    platform_url: str
    api_url: str
    timezone: str
    max_window_seconds: int
    metadata_budget: tuple[BudgetLimit, ...]
    download_budget: tuple[BudgetLimit, ...]
    exchange_budget: tuple[BudgetLimit, ...]
    connect_timeout: float
    read_timeout: float
    retry_attempts: int
    retry_max_wait_seconds: float
    backoff_initial_seconds: float
    backoff_max_seconds: float
    rate_limit_backoff_seconds: float
    refresh_margin_seconds: float
    plain_http_hosts: tuple[str, ...] = ()
    redirect_allowed_hosts: tuple[str, ...] = ()
    download_deadline_floor_seconds: float = DOWNLOAD_DEADLINE_FLOOR_SECONDS
    download_min_bytes_per_second: float = float(DOWNLOAD_MIN_BYTES_PER_SECOND)
    metadata_deadline_seconds: float = METADATA_DEADLINE_SECONDS
    exchange_cache: bool = True
    transcript_budget: tuple[BudgetLimit, ...] = ()
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False, compare=False)
    jwt: str | None = field(default=None, repr=False, compare=False)
    api_token: str | None = field(default=None, repr=False, compare=False)

    _SECRETS = ("client_secret", "jwt", "api_token")

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name not in self._SECRETS
        )
        return f"RingCXSettings({shown})"

    @property
    def tz(self) -> ZoneInfo:
        """The connection time zone."""
        return ZoneInfo(self.timezone)

    @property
    def api_host(self) -> str:
        """``host[:port]`` of the RingCX API, the first part of every budget key."""
        return urlsplit(self.api_url).netloc

    def budget_key(self, endpoint: str) -> str:
        """The key of a shared budget: API host, sub-account and endpoint."""
        return f"{self.api_host}|{self.sub_account_id}|{endpoint}"

    @classmethod
    def from_connection(cls, conn: Any) -> RingCXSettings:
        """Build settings from an Airflow ``Connection`` (login, password, extra).

        :raises RingCXConfigError: a field is missing or invalid; the message names it and the fix.
        """
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
        return cls.from_values(
            conn_id=getattr(conn, "conn_id", None) or "ringcx_default",
            client_id=getattr(conn, "login", None),
            client_secret=getattr(conn, "password", None),
            extra=extra,
            # Issue #12 item 10: Connection.extra_dejson (airflow.sdk.definitions.connection) has just masked
            # every extra whose name holds "token" (jwt_token, api_token); masking them again would only send
            # each value to the supervisor once more. The password is masked here: Airflow masks it only when
            # the connection is read through get_connection (execution_time.context._mask_connection_secrets).
            mask_extras=False,
        )

    @classmethod
    def from_values(
        cls,
        *,
        conn_id: str,
        client_id: str | None,
        client_secret: str | None,
        extra: Mapping[str, Any],
        mask_extras: bool = True,
    ) -> RingCXSettings:
        """Build settings from the pieces of a connection (see :meth:`from_connection`).

        :param mask_extras: register ``jwt_token`` and ``api_token`` with Airflow's secret masker (off for
            the extras of an Airflow ``Connection``, which ``extra_dejson`` masked already).
        """
        reader = _ExtraReader(conn_id, extra)
        client_secret = mask(client_secret or None)
        jwt = mask_stripped(reader.text("jwt_token"), reader.raw("jwt_token"), always=mask_extras)
        api_token = mask_stripped(reader.text("api_token"), reader.raw("api_token"), always=mask_extras)
        auth_mode = (reader.text("auth_mode") or DEFAULTS["auth_mode"]).lower()
        if auth_mode not in AUTH_MODES:
            raise reader.error("auth_mode", f"is {auth_mode!r}; use 'jwt' or 'token'")
        if auth_mode == "jwt":
            if not client_id:
                raise RingCXConfigError(
                    f"connection {conn_id!r}: login (RingCentral client id) is empty; set it to the "
                    "client id of the RingCentral REST API app (auth_mode jwt)"
                )
            if not client_secret:
                raise RingCXConfigError(
                    f"connection {conn_id!r}: password (RingCentral client secret) is empty; set it to the "
                    "client secret of the RingCentral REST API app (auth_mode jwt)"
                )
            if not jwt:
                raise reader.error(
                    "jwt_token", "is empty; paste the RingCentral user's JWT credential (auth_mode jwt)"
                )
        elif not api_token:
            raise reader.error("api_token", "is empty; set the permanent RingCX API token (auth_mode token)")

        plain_http_hosts = reader.host_list("plain_http_hosts")
        settings = cls(
            conn_id=conn_id,
            auth_mode=auth_mode,
            rc_account_id=reader.identifier(
                "rc_account_id", "the RingCentral account UID (id of GET /restapi/v1.0/account/~)"
            ),
            sub_account_id=reader.identifier(
                "sub_account_id", "the RingCX sub-account id (accountId of GET /voice/api/v1/admin/accounts)"
            ),
            platform_url=reader.url("platform_url", plain_http_hosts),
            api_url=reader.url("api_url", plain_http_hosts),
            timezone=reader.timezone(),
            max_window_seconds=int(reader.bounded("max_window_seconds")),
            metadata_budget=reader.budget("metadata_budget"),
            download_budget=reader.budget("download_budget"),
            # not "token_budget": Airflow masks extras named *token*, so "10/60" would be blanked from logs
            exchange_budget=reader.budget("exchange_budget"),
            connect_timeout=reader.bounded("connect_timeout"),
            read_timeout=reader.bounded("read_timeout"),
            retry_attempts=int(reader.bounded("retry_attempts")),
            retry_max_wait_seconds=reader.bounded("retry_max_wait_seconds"),
            backoff_initial_seconds=reader.bounded("backoff_initial_seconds"),
            backoff_max_seconds=reader.bounded("backoff_max_seconds"),
            rate_limit_backoff_seconds=reader.bounded("rate_limit_backoff_seconds"),
            refresh_margin_seconds=reader.bounded("refresh_margin_seconds"),
            plain_http_hosts=plain_http_hosts,
            redirect_allowed_hosts=reader.host_list(
                "redirect_allowed_hosts", addresses=True, why="recording redirects may reach those hosts"
            ),
            download_deadline_floor_seconds=reader.bounded("download_deadline_floor_seconds"),
            download_min_bytes_per_second=reader.bounded("download_min_bytes_per_second"),
            metadata_deadline_seconds=reader.bounded("metadata_deadline_seconds"),
            exchange_cache=reader.flag("exchange_cache"),
            transcript_budget=reader.budget("transcript_budget"),
            client_id=client_id or None,
            client_secret=client_secret,
            jwt=jwt,
            api_token=api_token,
        )
        check_combinations(settings)
        return settings


class _ExtraReader:
    """Reads and validates connection extras, with errors naming the field."""

    def __init__(self, conn_id: str, extra: Mapping[str, Any]) -> None:
        self.conn_id = conn_id
        self.extra = extra

    def error(self, name: str, problem: str) -> RingCXConfigError:
        return RingCXConfigError(f"connection {self.conn_id!r}: extra {name} {problem}")

    def raw(self, name: str) -> Any:
        value = self.extra.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULTS.get(name)
        return value

    def text(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        return str(value).strip()

    def identifier(self, name: str, what: str) -> str:
        value = self.raw(name)
        if isinstance(value, bool) or value is None:
            raise self.error(name, f"is missing; set it to {what}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        if not text or any(not ch.isalnum() and ch not in "-_" for ch in text):
            raise self.error(name, f"is {text!r}; set it to {what} (letters, digits, - and _ only)")
        return text

    def url(self, name: str, plain_http_hosts: tuple[str, ...] = ()) -> str:
        """A base URL that credentials may be sent to (see :mod:`~airflow_provider_ringcx.hooks.urls`)."""
        text = self.text(name) or ""
        problem = base_url_problem(
            text, f"write an https base URL such as {DEFAULTS[name]!r}", plain_http_hosts
        )
        if problem:
            raise self.error(name, problem)
        return text.rstrip("/")

    def host_list(
        self,
        name: str,
        *,
        addresses: bool = False,
        why: str = "it lets those hosts be reached over plain http, meant for a local simulator",
    ) -> tuple[str, ...]:
        """A comma-separated list of host names (and IP addresses if ``addresses``), lower-cased."""
        hosts = tuple(h.strip().lower() for h in (self.text(name) or "").split(",") if h.strip())
        for host in hosts:
            if addresses and is_ip(host.strip("[]")):
                continue
            if not HOST_NAME.match(host) or is_ip(host):
                kind = "host names or IP addresses" if addresses else "host names only (e.g. 'simulator')"
                raise self.error(name, f"lists {host!r}; list {kind}, comma-separated: {why}")
        return hosts

    def flag(self, name: str) -> bool:
        """A true/false extra (a JSON boolean, or the text true/false, yes/no, on/off, 1/0)."""
        value = self.raw(name)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return text in ("true", "yes", "on", "1")
        raise self.error(name, f"is {value!r}; use true or false (default {str(DEFAULTS[name]).lower()})")

    def bounded(self, name: str) -> float:
        """A numeric extra within its :data:`RANGES` entry."""
        bound = RANGES[name]
        return self.number(name, bound.low, bound.high, integer=bound.integer)

    def timezone(self) -> str:
        text = self.text("timezone") or "UTC"
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.error(
                "timezone",
                f"is {text!r}, which is not a known time zone; use an IANA name such as 'UTC', "
                "'US/Eastern' or 'America/New_York'",
            ) from None
        return text

    def number(self, name: str, low: float, high: float, *, integer: bool = False) -> float:
        value = self.raw(name)
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise self.error(name, f"is {value!r}, not a number; use a value in {low:g}..{high:g}") from None
        if not math.isfinite(number) or not low <= number <= high or (integer and not number.is_integer()):
            kind = "a whole number" if integer else "a number"
            bound = RANGES.get(name)
            why = f" ({bound.why})" if bound is not None and bound.why and number > high else ""
            raise self.error(name, f"is {value!r}; use {kind} in {low:g}..{high:g}{why}")
        return number

    def budget(self, name: str) -> tuple[BudgetLimit, ...]:
        try:
            limits = parse_budget(str(self.raw(name)), field=name)
        except RingCXConfigError as err:
            raise RingCXConfigError(f"connection {self.conn_id!r}: {err}") from None
        for limit in limits:
            problem = budget_limit_problem(limit.count, limit.seconds)
            if problem:
                raise self.error(
                    name,
                    f"is {self.raw(name)!r}: in {str(limit)!r} {problem}; write COUNT/SECONDS with a window "
                    f"of at most {BUDGET_WINDOW.high:g} s and at least one request per "
                    f"{BUDGET_MAX_SPACING_SECONDS:g} s (default {DEFAULTS[name]!r}), or 'off'",
                )
        return limits


def _worst_request_seconds(settings: RingCXSettings) -> float:
    """The longest one request may take: every attempt to both timeouts, plus the retry waits."""
    attempts = settings.retry_attempts
    return attempts * (settings.connect_timeout + settings.read_timeout) + settings.retry_max_wait_seconds


def check_combinations(settings: RingCXSettings) -> None:
    """Refuse combinations of settings whose worst case is absurd, naming the fields (item 17).

    :raises RingCXConfigError: one request could take over an hour; the first backoff step is larger than
        the cap; or the metadata budget cannot keep up with real time at ``max_window_seconds``.
    """
    conn = f"connection {settings.conn_id!r}"
    worst = _worst_request_seconds(settings)
    if worst > MAX_REQUEST_WORST_CASE_SECONDS:
        raise RingCXConfigError(
            f"{conn}: extras retry_attempts={settings.retry_attempts} x (connect_timeout="
            f"{settings.connect_timeout:g} + read_timeout={settings.read_timeout:g}) + "
            f"retry_max_wait_seconds={settings.retry_max_wait_seconds:g} let one request take {worst:g} s, "
            f"over the {MAX_REQUEST_WORST_CASE_SECONDS:g} s limit; lower retry_attempts or read_timeout "
            f"(defaults {DEFAULTS['retry_attempts']} and {DEFAULTS['read_timeout']:g})"
        )
    if settings.backoff_initial_seconds > settings.backoff_max_seconds:
        raise RingCXConfigError(
            f"{conn}: extra backoff_initial_seconds={settings.backoff_initial_seconds:g} is larger than "
            f"backoff_max_seconds={settings.backoff_max_seconds:g}; the first backoff step must not exceed "
            "the cap - lower backoff_initial_seconds or raise backoff_max_seconds"
        )
    if settings.metadata_budget:
        rate = min(limit.count / limit.seconds for limit in settings.metadata_budget)
        needed = 1.0 / settings.max_window_seconds
        if rate < needed:
            shortest = math.ceil(1.0 / rate)
            raise RingCXConfigError(
                f"{conn}: extras metadata_budget={','.join(map(str, settings.metadata_budget))!r} and "
                f"max_window_seconds={settings.max_window_seconds} cannot keep up: each "
                f"{settings.max_window_seconds} s of calls needs one request, but the budget allows one per "
                f"{1.0 / rate:g} s; raise max_window_seconds to at least {shortest} or the budget"
            )
