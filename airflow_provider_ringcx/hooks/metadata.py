"""interaction-metadata: window planning across DST, streaming JSON parsing, filtering and dedupe.

The vendor takes a wall-clock ``segmentEndTime`` (``YYYY-MM-DD HH:mm:ss``) in ``timeZone`` and searches
forward ``timeInterval`` seconds. The server resolves the wall-clock time like Java's ``ZonedDateTime``:
a time in a DST gap is shifted forward by the gap, an ambiguous time in an overlap takes the earlier offset.
:func:`plan_windows` therefore computes, for each piece of the requested range, the instant the server will
start from, sizes ``timeInterval`` from that instant, and the caller filters the rows client-side to the
requested ``[start, end)`` by ``segmentEndTimeMs`` and dedupes by ``(dialogId, segmentId)``: no segment is
lost or duplicated across a transition. When the server's start would lie so far before the piece (the
repeated hour of a fall-back transition) that ``max_window_seconds`` cannot reach it, that piece is requested
in ``UTC`` instead, which has no ambiguity.

The response is a bare JSON array that may hold many thousands of rows;
:func:`~airflow_provider_ringcx.hooks.jsonstream.iter_json_array` decodes it element by element from the byte
chunks, so memory stays bounded by the largest row.

Each response body gets a total deadline (issue #12 item 11): the connection extra
``metadata_deadline_seconds`` (default
:data:`~airflow_provider_ringcx.hooks.bounds.METADATA_DEADLINE_SECONDS`, 300 s) bounds the time spent waiting
for its bytes, so a server that trickles a byte every few seconds (never tripping ``read_timeout``) fails the
window as a retryable :class:`RingCXIncompleteDownloadError` instead of holding the metadata pool's only slot.
A 100,000-row window (~150 MB) arrives in well under a minute on any real link; 300 s leaves a wide margin.
The body may be compressed (``Accept-Encoding: gzip, deflate`` is sent): it is decoded as it streams.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests

from airflow_provider_ringcx.exceptions import (
    RingCXBadPayloadError,
    RingCXBadRequestError,
    RingCXConfigError,
    RingCXIncompleteDownloadError,
    RingCXWindowNotReadyError,
)
from airflow_provider_ringcx.hooks.body import BodyReader
from airflow_provider_ringcx.hooks.bounds import METADATA_DEADLINE_SECONDS, RANGES
from airflow_provider_ringcx.hooks.budget import RateBudget
from airflow_provider_ringcx.hooks.client import HttpClient, TokenSource
from airflow_provider_ringcx.hooks.jsonstream import check_row_finite, iter_json_array
from airflow_provider_ringcx.hooks.settings import RingCXSettings
from airflow_provider_ringcx.models import SegmentRecord, format_timestamp

log = logging.getLogger(__name__)

#: The vendor rejects windows that end less than this long ago.
MIN_WINDOW_AGE = timedelta(minutes=5)
WALL_FORMAT = "%Y-%m-%d %H:%M:%S"
CHUNK_BYTES = 64 * 1024

OnInvalid = Callable[[str, RingCXBadPayloadError], None]


def server_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant a Java-like server gives a naive wall-clock time in ``tz``.

    ``fold=0`` in ``zoneinfo`` matches Java: in an overlap it takes the earlier offset (the first
    occurrence); in a gap it applies the offset before the transition, i.e. shifts forward by the gap.
    """
    return wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)


@dataclass(frozen=True)
class MetadataWindow:
    """One interaction-metadata request.

    :param start: first instant of the range this request is responsible for (UTC).
    :param end: end (exclusive) of that range.
    :param query_start: the instant the server starts searching from (``<= start``).
    """

    start: datetime
    end: datetime
    query_start: datetime
    segment_end_time: str
    time_interval: int
    time_zone: str

    @property
    def body(self) -> dict[str, Any]:
        """The JSON request body (schema ``InteractionMetadataRequest``)."""
        return {
            "segmentEndTime": self.segment_end_time,
            "timeInterval": self.time_interval,
            "timeZone": self.time_zone,
        }

    @property
    def label(self) -> str:
        """How messages name the window."""
        return (
            f"window {format_timestamp(self.start)}..{format_timestamp(self.end)} (segmentEndTime "
            f"{self.segment_end_time!r} {self.time_zone}, timeInterval {self.time_interval})"
        )


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise RingCXConfigError(
            f"{name}={value.isoformat()} has no time zone; pass a timezone-aware datetime"
        )
    return value.astimezone(timezone.utc)


def plan_windows(start: datetime, end: datetime, tz_name: str, max_seconds: int) -> list[MetadataWindow]:
    """Split ``[start, end)`` into requests of at most ``max_seconds`` each, DST-safe (see module doc).

    :raises RingCXConfigError: naive datetimes, or ``start >= end``.
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    if start >= end:
        raise RingCXConfigError(
            f"metadata range start {start.isoformat()} is not before end {end.isoformat()}"
        )
    tz = ZoneInfo(tz_name)
    span = timedelta(seconds=max_seconds)
    windows: list[MetadataWindow] = []
    cursor = start
    while cursor < end:
        zone, zone_name = tz, tz_name
        wall = cursor.astimezone(zone).replace(tzinfo=None, microsecond=0)
        query_start = server_instant(wall, zone)
        upper = min(end, cursor + span, query_start + span)
        if upper <= cursor:  # the repeated hour is out of reach in this zone: ask in UTC instead
            zone, zone_name = ZoneInfo("UTC"), "UTC"
            wall = cursor.replace(tzinfo=None, microsecond=0)
            query_start = server_instant(wall, zone)
            upper = min(end, query_start + span)
        interval = max(1, math.ceil((upper - query_start).total_seconds()))
        windows.append(
            MetadataWindow(
                start=cursor,
                end=upper,
                query_start=query_start,
                segment_end_time=wall.strftime(WALL_FORMAT),
                time_interval=interval,
                time_zone=zone_name,
            )
        )
        cursor = upper
    return windows


def _excerpt(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _body_chunks(
    response: requests.Response,
    what: str,
    deadline_seconds: float = METADATA_DEADLINE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[bytes]:
    """The decoded body in chunks, under a total wait deadline (module doc).

    :raises RingCXIncompleteDownloadError: the connection broke or the server sent too slowly.
    """
    yield from BodyReader(
        response, what=what, deadline=deadline_seconds, action="retrying the window", clock=clock
    )


class MetadataClient:
    """Fetches interaction-metadata windows for one sub-account.

    :param clock: wall-clock seconds (readiness check), injectable for tests.
    :param sleep: wait between whole-window retries after a broken body.
    :param monotonic: monotonic seconds for body deadlines, injectable for tests.
    """

    def __init__(
        self,
        settings: RingCXSettings,
        http: HttpClient,
        tokens: TokenSource,
        budget: RateBudget,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.http = http
        self.tokens = tokens
        self.budget = budget
        self._clock = clock
        self._sleep = sleep
        self.monotonic = monotonic  # body deadlines (injectable for tests)
        self.deadline_seconds = settings.metadata_deadline_seconds
        #: the longest ``timeInterval`` of one request: the connection's ``max_window_seconds`` (what the
        #: account accepts), or less (:meth:`limit_window`)
        self.max_window_seconds = settings.max_window_seconds

    def limit_window(self, seconds: int | None) -> int:
        """Ask at most ``seconds`` per request (``None``: the connection's ``max_window_seconds``); the
        connection's value stays the cap, as the account refuses anything longer. Returns the window used.

        :raises RingCXConfigError: ``seconds`` is outside the range of ``max_window_seconds``.
        """
        if seconds is not None:
            problem = RANGES["max_window_seconds"].problem("max_window_seconds", seconds)
            if problem:
                raise RingCXConfigError(f"{problem}; the connection's value applies when it is not given")
        cap = self.settings.max_window_seconds
        self.max_window_seconds = cap if seconds is None else min(int(seconds), cap)
        return self.max_window_seconds

    @property
    def path(self) -> str:
        """The vendor path of interaction-metadata for this sub-account."""
        s = self.settings
        return (
            f"/voice/api/cx/integration/v1/accounts/{quote(s.rc_account_id, safe='')}"
            f"/sub-accounts/{quote(s.sub_account_id, safe='')}/interaction-metadata"
        )

    def check_ready(self, end: datetime) -> None:
        """Refuse a range that ends less than 5 minutes ago (the vendor rejects it; rows are incomplete)."""
        end = _utc(end, "end")
        now = datetime.fromtimestamp(self._clock(), timezone.utc)
        if end > now - MIN_WINDOW_AGE:
            ready_at = end + MIN_WINDOW_AGE
            raise RingCXWindowNotReadyError(
                f"metadata window ending {format_timestamp(end)} is not complete yet; RingCX only answers "
                f"for windows that ended 5 or more minutes ago - retry at {format_timestamp(ready_at)}",
                ready_at=ready_at,
            )

    def iter_records(
        self, start: datetime, end: datetime, *, on_invalid: OnInvalid | None = None
    ) -> Iterator[SegmentRecord]:
        """Segments ending in ``[start, end)``, once each (see ``RingCXHook.iter_interaction_metadata``)."""
        self.check_ready(end)
        lower, upper = _utc(start, "start"), _utc(end, "end")
        seen: set[bytes] = set()  # the only per-row state: ~90 bytes per row (16-byte digests)
        for window in plan_windows(lower, upper, self.settings.timezone, self.max_window_seconds):
            count = 0
            for record in self.iter_window(window, on_invalid=on_invalid):
                if record.segment_end is not None and not lower <= record.segment_end < upper:
                    continue
                ident = _ident_digest(record.key)
                if ident in seen:
                    continue
                seen.add(ident)
                count += 1
                yield record
            log.info("interaction-metadata %s: %d new segment(s)", window.label, count)

    def iter_window(
        self, window: MetadataWindow, *, on_invalid: OnInvalid | None = None
    ) -> Iterator[SegmentRecord]:
        """Every parsed row of one request. A body broken mid-way is fetched again (rows may repeat)."""
        attempts = self.settings.retry_attempts
        for attempt in range(1, attempts + 1):
            try:
                yield from self._rows(window, on_invalid)
                return
            except RingCXIncompleteDownloadError as err:  # the request itself was already retried
                if attempt >= attempts:
                    raise
                delay = min(
                    self.settings.backoff_max_seconds,
                    self.settings.backoff_initial_seconds * 2 ** (attempt - 1),
                )
                log.warning("%s; fetching the window again in %.2f s", err, delay)
                self._sleep(delay)

    def _rows(self, window: MetadataWindow, on_invalid: OnInvalid | None) -> Iterator[SegmentRecord]:
        what = f"interaction-metadata {window.label}"
        try:
            response = self.http.send_authenticated(
                "POST",
                self.settings.api_url + self.path,
                self.tokens,
                what=f"POST {self.path} ({window.label})",
                budget=self.budget,
                json=window.body,
                headers={"Accept": "application/json"},
                stream=True,
            )
        except RingCXBadRequestError as err:
            raise self._explain_bad_request(err, window) from None
        with response:
            content_type = response.headers.get("Content-Type", "")
            if "html" in content_type.lower():
                raise RingCXBadPayloadError(
                    f"{what}: POST {self.path} answered HTTP {response.status_code} with an HTML page "
                    "instead of JSON; check that api_url points at the RingCX API (not a proxy or login page)"
                )
            chunks = _body_chunks(response, what, self.deadline_seconds, self.monotonic)
            for value, raw in iter_json_array(chunks, what=what):
                try:
                    check_row_finite(value, raw)  # NaN/Infinity: unparseable row, never stored
                    record = SegmentRecord.parse(value)
                except RingCXBadPayloadError as err:
                    if on_invalid is None:
                        raise
                    on_invalid(_excerpt(raw, 2000), err)
                    continue
                if "\\ud" in raw or "\\uD" in raw:  # a \uD800-\uDFFF escape: maybe a lone surrogate
                    record = _without_lone_surrogates(record)
                yield record

    def _explain_bad_request(
        self, err: RingCXBadRequestError, window: MetadataWindow
    ) -> RingCXBadRequestError:
        """Name the connection setting behind a rejected ``timeInterval`` (the account's maximum window)."""
        if not any(item.get("attributeName") == "timeInterval" for item in err.validation_errors):
            return err
        found = _MAX_INTERVAL.search(str(err))
        limit = f"{found.group(1)} s, as RingCX says" if found else "3600 s on older RingCX deployments"
        return RingCXBadRequestError(
            f"{err}. RingCX refused timeInterval {window.time_interval} s: it is over this account's maximum "
            f"window - set the connection extra max_window_seconds (now {self.settings.max_window_seconds}) "
            f"of {self.settings.conn_id!r} to at most {limit}",
            status_code=err.status_code,
            validation_errors=err.validation_errors,
        )


_MAX_INTERVAL = re.compile(r"timeInterval: must be between 1 and (\d+)")


def _scrub(value: Any) -> Any:
    """``value`` with every lone UTF-16 surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def _without_lone_surrogates(record: SegmentRecord) -> SegmentRecord:
    """A lone surrogate (``"\\ud800"``: valid JSON, not valid Unicode) cannot be written as UTF-8, so it
    would make the manifest and the sidecar unwritable and lose the whole window. The ids were already
    checked (a row whose id holds one is unparseable); in the other fields of the kept row it becomes U+FFFD.
    """
    scrubbed = _scrub(dict(record.raw))
    if scrubbed == record.raw:
        return record
    log.warning(
        "metadata row %r/%r holds text that is not valid Unicode (lone UTF-16 surrogates); they are kept "
        "as U+FFFD in the manifest and the sidecar",
        record.dialog_id,
        record.segment_id,
    )
    return dataclasses.replace(record, raw=scrubbed)


def _ident_digest(key: tuple[str, str]) -> bytes:
    """A 128-bit digest of ``(dialog_id, segment_id)``: the de-duplication set of a 100,000-row window
    holds these (~90 bytes each) instead of the id strings (~250 bytes); a collision is ~1e-29 likely."""
    text = f"{len(key[0])}:{key[0]}\x00{key[1]}"
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
