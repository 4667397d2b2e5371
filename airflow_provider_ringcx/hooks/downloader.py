"""Opening recording downloads: the GET (download budget, retries, re-auth), then a verifying stream.

:class:`RecordingDownloader` asks for ``audio/wav`` with ``Accept-Encoding: identity`` (a compressed body's
Content-Length would describe the compressed bytes, issue #12 item 3), checks the content type and the
RIFF/WAVE header before any byte is handed out, and passes the body's deadline settings and the expected
duration to :class:`~airflow_provider_ringcx.hooks.download.RecordingStream`, which holds the length proofs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import requests

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError
from airflow_provider_ringcx.hooks.budget import RateBudget
from airflow_provider_ringcx.hooks.client import HttpClient, TokenSource
from airflow_provider_ringcx.hooks.download import WAV_CONTENT_TYPES, RecordingStream, recording_path
from airflow_provider_ringcx.hooks.settings import RingCXSettings


class RecordingDownloader:
    """Opens recording streams for one sub-account, paced by the download budget.

    :param clock: monotonic seconds for body deadlines (:attr:`clock`; injectable for tests).
    """

    def __init__(
        self,
        settings: RingCXSettings,
        http: HttpClient,
        tokens: TokenSource,
        budget: RateBudget,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.http = http
        self.tokens = tokens
        self.budget = budget
        self.clock = clock

    def path(self, dialog_id: str, segment_id: str) -> str:
        """The vendor path of one recording."""
        return recording_path(
            self.settings.rc_account_id, self.settings.sub_account_id, dialog_id, segment_id
        )

    @contextlib.contextmanager
    def open(
        self, dialog_id: str, segment_id: str, *, expected_duration_seconds: float | None = None
    ) -> Iterator[RecordingStream]:
        """GET the recording, check status, content type and WAV header; yield the stream; close it after.

        :param expected_duration_seconds: the segment's duration from the metadata (``duration`` proof).
        """
        path = self.path(dialog_id, segment_id)
        what = f"recording dialog {dialog_id!r} segment {segment_id!r}"
        streams: list[RecordingStream] = []

        def check(response: requests.Response) -> None:
            streams.append(self._checked(response, what, expected_duration_seconds))

        self.http.send_authenticated(
            "GET",
            self.settings.api_url + path,
            self.tokens,
            what=f"GET {what}",
            budget=self.budget,
            # identity: a compressed body's Content-Length would describe the compressed bytes (item 3)
            headers={"Accept": "audio/wav", "Accept-Encoding": "identity"},
            stream=True,
            check=check,
        )
        stream = streams[-1]
        try:
            yield stream
        finally:
            stream.close()

    def _checked(
        self, response: requests.Response, what: str, expected_duration_seconds: float | None
    ) -> RecordingStream:
        settings = self.settings
        stream = RecordingStream(
            response,
            what=what,
            expected_duration_seconds=expected_duration_seconds,
            floor_seconds=settings.download_deadline_floor_seconds,
            min_bytes_per_second=settings.download_min_bytes_per_second,
            clock=self.clock,
        )
        if stream.content_type not in WAV_CONTENT_TYPES:
            hint = (
                "RingCX sends MP3 to browser-like User-Agents; do not override the hook's User-Agent"
                if "mpeg" in stream.content_type
                else "check that api_url points at the RingCX API (not a proxy or login page)"
            )
            stream.close()
            raise RingCXBadPayloadError(
                f"{what}: expected audio/wav but got Content-Type {stream.content_type!r}; {hint}"
            )
        stream.peek_header()
        return stream
