"""RingCXHook: the only code that talks to RingCX.

The hook composes small parts, each built lazily on first use (constructing the hook touches no connection,
so DAG parsing never does I/O):

- :mod:`~airflow_provider_ringcx.hooks.settings`: the validated connection;
- :mod:`~airflow_provider_ringcx.hooks.auth`: JWT grant, RingCX exchange, refresh, secret masking, and the
  RingCX token shared by the host's tasks (:mod:`~airflow_provider_ringcx.hooks.tokencache`);
- :mod:`~airflow_provider_ringcx.hooks.client`: one ``requests.Session``, tenacity retries, typed errors;
- :mod:`~airflow_provider_ringcx.hooks.metadata`: DST-safe windows, streaming JSON, filtering, dedupe;
- :mod:`~airflow_provider_ringcx.hooks.download`: verifying recording streams.

Budget design (three layers, so that the vendor's limits hold with any number of tasks):

1. **Airflow pools** cap concurrency across every worker and host: tasks that list metadata run in pool
   ``ringcx_metadata`` (1 slot), downloads in ``ringcx_downloads``.
2. **A shared pacer** (:class:`~airflow_provider_ringcx.hooks.budget.RateBudget`) keeps every process on a
   host under the request budgets (metadata 2/60 s and 9/900 s, downloads 120/60 s, token exchange 5/60 s
   by default; connection extras ``metadata_budget``, ``download_budget``, ``exchange_budget``). Each budget
   is a sliding-window log in a JSON file locked with ``fcntl.flock`` and keyed by API host + sub-account +
   endpoint, in the budget directory (Airflow option ``[ringcx] budget_dir``, resolved by
   :func:`~airflow_provider_ringcx.hooks.budget.default_budget_dir`), so mapped tasks and parallel DAG runs
   under the LocalExecutor share it.
   Steady state therefore sees no 429. A backfill's hook takes ``budget_priority="history"``: its
   requests borrow a window's reserve only when it is back for the live DAG within one slot, and take no
   slot a live request waits for (live first, :mod:`~airflow_provider_ringcx.hooks.budget_rule`).
3. **429 is the fallback**, not the plan: a 429 is retried after ``Retry-After`` (seconds or HTTP date) or
   an exponential backoff with jitter, and that wait is written into the shared budget so every process on
   the host backs off. This also covers workers on other hosts, which do not share the budget file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError, RingCXError, connection_not_defined
from airflow_provider_ringcx.hooks.admin import AdminClient, SubAccountStatus
from airflow_provider_ringcx.hooks.auth import TokenManager
from airflow_provider_ringcx.hooks.budget import RateBudget, default_budget_dir
from airflow_provider_ringcx.hooks.budget_rule import LIVE, check_priority
from airflow_provider_ringcx.hooks.client import HttpClient
from airflow_provider_ringcx.hooks.download import RecordingStream
from airflow_provider_ringcx.hooks.downloader import RecordingDownloader
from airflow_provider_ringcx.hooks.metadata import MetadataClient, OnInvalid
from airflow_provider_ringcx.hooks.settings import RingCXSettings
from airflow_provider_ringcx.models import SegmentRecord, format_timestamp
from airflow_provider_ringcx.subaccounts.listing import check_sub_account_id

__all__ = ["RecordingStream", "RingCXHook"]


class RingCXHook(BaseHook):
    """Interact with RingCentral RingCX: list interaction metadata and stream call recordings.

    :param ringcx_conn_id: the ``ringcx`` connection.
    :param sub_account_id: archive this sub-account instead of the connection's ``sub_account_id`` (one
        connection's credentials serve every sub-account of the main account; see
        :mod:`airflow_provider_ringcx.subaccounts`). The metadata and download budgets, paths, keys and
        reports are then this sub-account's; the token and its exchange budget stay the connection's, as
        the token belongs to the credentials, not to a sub-account (one exchange serves them all).
    :param budget_dir: where the shared budget files live (default
        :func:`~airflow_provider_ringcx.hooks.budget.default_budget_dir`: ``[ringcx] budget_dir``).
    :param budget_priority: the class of this hook's requests in the shared budgets: ``"live"`` (default,
        the live DAG) or ``"history"`` (a backfill: it borrows a window's reserve only when it is back
        within one slot, so it never delays live requests by more than one slot; see
        :mod:`~airflow_provider_ringcx.hooks.budget_rule`).
    :param clock: wall-clock seconds (token expiry, readiness, budgets); injectable for tests.
    :param sleep: how waits sleep (retries, budgets); injectable for tests.
    :raises RingCXConfigError: ``budget_priority`` is neither ``"live"`` nor ``"history"``.
    """

    conn_name_attr = "ringcx_conn_id"
    default_conn_name = "ringcx_default"
    conn_type = "ringcx"
    hook_name = "RingCentral RingCX"

    def __init__(
        self,
        ringcx_conn_id: str = default_conn_name,
        *,
        sub_account_id: str | None = None,
        budget_dir: str | None = None,
        budget_priority: str = LIVE,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ringcx_conn_id = ringcx_conn_id
        self.sub_account_id = (
            check_sub_account_id(sub_account_id, "sub_account_id") if sub_account_id else None
        )
        self._budget_dir = budget_dir
        self.budget_priority = check_priority(budget_priority)
        self._clock = clock or time.time
        self._sleep = sleep or time.sleep
        self._monotonic = clock or time.monotonic  # body deadlines; the injected clock in tests

    def __repr__(self) -> str:
        priority = "" if self.budget_priority == LIVE else f", budget_priority={self.budget_priority!r}"
        sub = f", sub_account_id={self.sub_account_id!r}" if self.sub_account_id else ""
        return f"RingCXHook(ringcx_conn_id={self.ringcx_conn_id!r}{sub}{priority})"

    # -- lazily built parts ---------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> RingCXSettings:
        """The validated connection (read on first use), with ``sub_account_id`` when the hook was given one.

        :raises RingCXConfigError: the connection does not exist, or a field of it is invalid.
        """
        settings = self.connection_settings
        if self.sub_account_id and self.sub_account_id != settings.sub_account_id:
            return dataclasses.replace(settings, sub_account_id=self.sub_account_id)
        return settings

    @cached_property
    def connection_settings(self) -> RingCXSettings:
        """The validated connection as it is (its own ``sub_account_id``): what the token belongs to.

        :raises RingCXConfigError: the connection does not exist, or a field of it is invalid.
        """
        try:
            conn = self.get_connection(self.ringcx_conn_id)
        except AirflowNotFoundException:
            raise connection_not_defined(
                self.ringcx_conn_id,
                label="RingCX",
                conn_type="RingCentral RingCX",
                param="ringcx_conn_id",
                alternative="an existing ringcx connection",
            ) from None
        if self.sub_account_id and not (conn.extra_dejson or {}).get("sub_account_id"):
            # a connection serving many sub-accounts need not name one
            return RingCXSettings.from_connection(_WithSubAccount(conn, self.sub_account_id))
        return RingCXSettings.from_connection(conn)

    @cached_property
    def http(self) -> HttpClient:
        """The HTTP transport (one ``requests.Session`` per hook)."""
        return HttpClient(self.settings, sleep=self._sleep)

    def budget(self, endpoint: str) -> RateBudget:
        """The shared budget of ``endpoint`` (``metadata``, ``download``, ``transcript`` or ``exchange``), in
        this hook's ``budget_priority``."""
        limits = {
            "metadata": self.settings.metadata_budget,
            "download": self.settings.download_budget,
            "exchange": self.settings.exchange_budget,
            "transcript": self.settings.transcript_budget,
        }[endpoint]
        # the exchange budget is the token's (the connection's), the others the sub-account's
        owner = self.connection_settings if endpoint == "exchange" else self.settings
        return RateBudget(
            owner.budget_key(endpoint),
            limits,
            self._budget_dir or default_budget_dir(),
            clock=self._clock,
            sleep=self._sleep,
            priority=self.budget_priority,
        )

    @cached_property
    def tokens(self) -> TokenManager:
        """The token manager."""
        # the connection's settings: one token (cache entry, exchange budget) for every sub-account it serves
        return TokenManager(self.connection_settings, self.http, self.budget("exchange"), clock=self._clock)

    @cached_property
    def metadata(self) -> MetadataClient:
        """The interaction-metadata client."""
        return MetadataClient(
            self.settings,
            self.http,
            self.tokens,
            self.budget("metadata"),
            clock=self._clock,
            sleep=self._sleep,
            monotonic=self._monotonic,
        )

    @cached_property
    def downloads(self) -> RecordingDownloader:
        """The recording downloader."""
        return RecordingDownloader(
            self.settings,
            self.http,
            self.tokens,
            self.budget("download"),
            clock=self._monotonic,
        )

    @cached_property
    def admin(self) -> AdminClient:
        """The admin API reads (the main account's sub-accounts and whether they are active)."""
        return AdminClient(self.settings, self.http, self.tokens)

    def list_sub_accounts(self, main_account_id: str | None = None) -> list[SubAccountStatus]:
        """The main account's sub-accounts with ``isActive`` (found from the token when not given)."""
        return self.admin.sub_accounts(main_account_id)

    def check_sub_account_active(self) -> None:
        """Refuse this hook's sub-account if the admin API lists it inactive, or not at all.

        :raises RingCXConfigError: naming the sub-account and the fix (not retried by the operators).
        """
        self.admin.check_active(self.settings.sub_account_id)

    def get_conn(self) -> HttpClient:
        """The HTTP transport (Airflow's generic hook accessor)."""
        return self.http

    def close(self) -> None:
        """Close the HTTP session if it was opened."""
        if "http" in self.__dict__:
            self.http.close()

    # -- public API -----------------------------------------------------------------------------------------

    def iter_interaction_metadata(
        self, start: datetime, end: datetime, *, on_invalid: OnInvalid | None = None
    ) -> Iterator[SegmentRecord]:
        """Yield every segment whose end lies in ``[start, end)``, once.

        The range is split into windows of at most ``max_window_seconds`` in the connection's time zone
        (DST-safe), each request is paced by the metadata budget, each JSON array is parsed as it streams,
        rows are filtered to ``[start, end)`` by ``segmentEndTimeMs`` and deduplicated by
        ``(dialogId, segmentId)``.

        :param start: timezone-aware start (inclusive).
        :param end: timezone-aware end (exclusive); must be at least 5 minutes in the past.
        :param on_invalid: called with ``(raw_excerpt, error)`` for a row that cannot be parsed; when
            ``None`` such a row raises.
        :raises RingCXWindowNotReadyError: ``end`` is less than 5 minutes ago (``ready_at`` says when).
        :raises RingCXBadPayloadError: a response is not a JSON array (HTML, object, malformed).
        """
        return self.metadata.iter_records(start, end, on_invalid=on_invalid)

    def stream_recording(
        self, dialog_id: str, segment_id: str, *, expected_duration_seconds: float | None = None
    ) -> contextlib.AbstractContextManager[RecordingStream]:
        """Open a recording as a verifying stream (context manager).

        Entering does the GET (download budget, retries up to the headers, one re-auth on 401), checks the
        status (403 -> :class:`RingCXForbiddenError`, 404 -> :class:`RingCXNotFoundError`), the content type
        and the RIFF/WAVE header (else :class:`RingCXBadPayloadError`), before any byte is handed out.
        Reading raises :class:`RingCXIncompleteDownloadError` at the end of a body whose length nothing
        proves (Content-Length, the WAV data size, or ``expected_duration_seconds``: see
        :mod:`~airflow_provider_ringcx.hooks.download`) and when the server sends too slowly for the body's
        total deadline.

        :param expected_duration_seconds: the segment's duration from the metadata; when given, a body
            whose length neither Content-Length nor the WAV header proves is accepted if its audio lasts
            that long (within ``max(2 s, 2 %)``).
        """
        return self.downloads.open(dialog_id, segment_id, expected_duration_seconds=expected_duration_seconds)

    def recording_path(self, dialog_id: str, segment_id: str) -> str:
        """The vendor path of a recording (ids URL-encoded as single segments), for sidecars."""
        return self.downloads.path(dialog_id, segment_id)

    def test_connection(self) -> tuple[bool, str]:
        """One token exchange and one 60-second metadata window ending 10 minutes ago.

        :return: ``(ok, message)``; the message never contains a secret.
        """
        try:
            settings = self.settings
            self.tokens.token()
            end = datetime.fromtimestamp(self._clock(), timezone.utc).replace(second=0, microsecond=0)
            end -= timedelta(minutes=10)
            start = end - timedelta(seconds=60)
            rows = invalid = 0

            def count_invalid(raw: str, err: RingCXBadPayloadError) -> None:
                nonlocal invalid
                invalid += 1

            for _ in self.metadata.iter_records(start, end, on_invalid=count_invalid):
                rows += 1
        except RingCXError as err:
            return False, f"{type(err).__name__}: {err}"
        except Exception as err:  # the UI shows this text; never let a traceback (or its locals) through
            return False, f"{type(err).__name__}: unexpected error while testing the connection"
        finally:
            self.close()
        mode = (
            "permanent API token" if settings.auth_mode == "token" else "JWT grant and RingCX token exchange"
        )
        extra = f", {invalid} unparseable row(s)" if invalid else ""
        return True, (
            f"Connected to RingCX sub-account {settings.sub_account_id} ({mode} OK); interaction-metadata "
            f"for {format_timestamp(start)}..{format_timestamp(end)} returned {rows} segment(s){extra}"
        )


class _WithSubAccount:
    """A connection whose extras lack ``sub_account_id``, seen with the hook's (the rest as it is)."""

    def __init__(self, conn: Any, sub_account_id: str) -> None:
        self.conn_id = getattr(conn, "conn_id", None)
        self.login = getattr(conn, "login", None)
        self.password = getattr(conn, "password", None)
        self.extra_dejson = {**(conn.extra_dejson or {}), "sub_account_id": sub_account_id}
