"""Fetching a segment's transcript: ``GET .../transcripts/dialogs/{dialogId}/segments/{segmentId}``.

The endpoint sits next to the recording download (``../shared/ringcx-api.md`` section 3) and has its own
limit, 120 requests per minute, so it is paced by its own shared budget (connection extra
``transcript_budget``, budget endpoint ``transcript``): archiving transcripts never slows the recordings.

**404 means "not ready yet"**: the vendor's transcripts page says to back off and retry on 404, and a
transcript is produced after the call, later than its recording. :meth:`TranscriptClient.fetch` returns
``None`` then, never an error, so the caller can record the transcript as *pending* and let a later run
retry it, instead of reporting it lost.

The body is JSON and small (a few KB), so it is read whole, but **bounded**: more than ``max_bytes``
(default :data:`MAX_TRANSCRIPT_BYTES`) is refused as soon as it is exceeded, so a hostile or broken server
cannot exhaust a worker's memory. The SHA-256 of the bytes as read is returned with them: it is the
evidence that what is archived is what RingCX sent. Parsing and checking the body is the lander's job
(:mod:`~airflow_provider_ringcx.transfers.transcript_format`), not the transport's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import requests

from airflow_provider_ringcx.exceptions import (
    RingCXBadPayloadError,
    RingCXNotFoundError,
    RingCXTransientError,
)
from airflow_provider_ringcx.hooks.download import encode_id

#: Largest transcript body accepted (bytes). An hour's call transcribed is far below 1 MiB.
MAX_TRANSCRIPT_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024


class RingCXTranscriptTooLargeError(RingCXBadPayloadError):
    """A transcript body is larger than the limit: refused, not archived (an Airflow retry reads the same)."""

    retryable = False


@dataclass(frozen=True)
class FetchedTranscript:
    """A transcript body as RingCX sent it, with the SHA-256 and size of those bytes and where from."""

    body: bytes
    sha256: str
    path: str
    content_type: str | None

    @property
    def size(self) -> int:
        return len(self.body)


def transcript_path(rc_account_id: str, sub_account_id: str, dialog_id: str, segment_id: str) -> str:
    """The vendor path of a transcript, ids encoded as single path segments."""
    return (
        f"/voice/api/cx/integration/v1/accounts/{encode_id(rc_account_id, 'rc_account_id')}"
        f"/sub-accounts/{encode_id(sub_account_id, 'sub_account_id')}"
        f"/transcripts/dialogs/{encode_id(dialog_id, 'dialog_id')}"
        f"/segments/{encode_id(segment_id, 'segment_id')}"
    )


class TranscriptClient:
    """Fetches transcripts for one sub-account, paced by the transcript budget.

    :param hook: a :class:`~airflow_provider_ringcx.hooks.ringcx.RingCXHook`: its settings, HTTP session,
        token manager and ``budget("transcript")`` are used, so a transcript request is retried, re-authed
        and paced like every other request of the hook.
    :param max_bytes: largest body accepted.
    """

    def __init__(self, hook: Any, *, max_bytes: int = MAX_TRANSCRIPT_BYTES) -> None:
        self.settings = hook.settings
        self.http = hook.http
        self.tokens = hook.tokens
        self.budget = hook.budget("transcript")
        self.max_bytes = int(max_bytes)

    def path(self, dialog_id: str, segment_id: str) -> str:
        """The vendor path of one transcript."""
        settings = self.settings
        return transcript_path(settings.rc_account_id, settings.sub_account_id, dialog_id, segment_id)

    def fetch(self, dialog_id: str, segment_id: str) -> FetchedTranscript | None:
        """GET the transcript; ``None`` when RingCX answers 404 (not ready yet, or none).

        :raises RingCXForbiddenError: 403 (no permission for this transcript).
        :raises RingCXTranscriptTooLargeError: the body exceeds ``max_bytes``.
        :raises RingCXTransientError: the body broke off (retryable), or another typed error of the hook.
        """
        path = self.path(dialog_id, segment_id)
        what = f"transcript dialog {dialog_id!r} segment {segment_id!r}"
        try:
            response = self.http.send_authenticated(
                "GET",
                self.settings.api_url + path,
                self.tokens,
                what=f"GET {what}",
                budget=self.budget,
                headers={"Accept": "application/json", "Accept-Encoding": "identity"},
                stream=True,
            )
        except RingCXNotFoundError:
            return None
        try:
            body = self._read(response, what)
        finally:
            response.close()
        return FetchedTranscript(
            body=body,
            sha256=hashlib.sha256(body).hexdigest(),
            path=path,
            content_type=response.headers.get("Content-Type"),
        )

    def _read(self, response: requests.Response, what: str) -> bytes:
        """The whole body, refused as soon as it exceeds ``max_bytes``."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_large(what, f"Content-Length {declared}")
        buffer = bytearray()
        try:
            for chunk in response.iter_content(_CHUNK):
                buffer += chunk
                if len(buffer) > self.max_bytes:
                    raise self._too_large(what, f"more than {len(buffer)} bytes")
        except (requests.RequestException, OSError) as err:
            raise RingCXTransientError(
                f"{what}: the body broke off after {len(buffer)} bytes ({type(err).__name__}); retry"
            ) from None
        return bytes(buffer)

    def _too_large(self, what: str, found: str) -> RingCXTranscriptTooLargeError:
        return RingCXTranscriptTooLargeError(
            f"{what}: the body is too large ({found}, the limit is {self.max_bytes} bytes); not archived - "
            "report the segment to RingCentral support"
        )
