"""Small JSON documents RingCX keeps beside a recording (transcripts, AI summaries): one bounded GET each.

Both endpoints answer the same way (``../shared/ringcx-api.md`` section 3): a small JSON body, produced after
the call, so **404 means "not ready yet"** and :meth:`DocumentClient.get` returns ``None`` for it, never an
error: the caller records the document as *pending* and a later run retries it, instead of reporting it
lost. Both share one rate-limit class, "transcripts, summaries, most admin APIs: 120 / minute" (section 4.1),
so both are paced by the one ``transcript`` budget (connection extra ``transcript_budget``): archiving them
never slows the recordings, and summaries cannot push transcripts over RingCX's limit.

What differs is the caller's: the vendor path and where the token goes (the ``Authorization`` header for a
transcript, the ``access_token`` cookie for a summary; see :mod:`~airflow_provider_ringcx.hooks.client`).

The body is read whole, but **bounded**: more than ``max_bytes`` (default :data:`MAX_DOCUMENT_BYTES`) is
refused as soon as it is exceeded, so a hostile or broken server cannot exhaust a worker's memory. The
SHA-256 of the bytes as read is returned with them: the evidence that what is archived is what RingCX sent.
Checking the body is the lander's job, not the transport's.
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
from airflow_provider_ringcx.hooks.client import BEARER

#: Largest document body accepted (bytes). An hour's call transcribed is far below 1 MiB.
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
#: The hook budget both document endpoints share (one RingCX rate-limit class, 120/min).
DOCUMENT_BUDGET = "transcript"
_CHUNK = 64 * 1024


class RingCXDocumentTooLargeError(RingCXBadPayloadError):
    """A document body is larger than the limit: refused, not archived (an Airflow retry reads the same)."""

    retryable = False


@dataclass(frozen=True)
class FetchedDocument:
    """A document body as RingCX sent it, with the SHA-256 and size of those bytes and where from."""

    body: bytes
    sha256: str
    path: str
    content_type: str | None

    @property
    def size(self) -> int:
        return len(self.body)


class DocumentClient:
    """GETs small JSON documents of one sub-account, paced by the shared document budget.

    :param hook: a :class:`~airflow_provider_ringcx.hooks.ringcx.RingCXHook`: its settings, HTTP session,
        token manager and ``budget("transcript")`` are used, so a request is retried, re-authed and paced
        like every other request of the hook.
    :param max_bytes: largest body accepted.
    """

    #: Where the token goes (:data:`~airflow_provider_ringcx.hooks.client.BEARER` or ``COOKIE``).
    token_in = BEARER

    def __init__(self, hook: Any, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> None:
        self.settings = hook.settings
        self.http = hook.http
        self.tokens = hook.tokens
        self.budget = hook.budget(DOCUMENT_BUDGET)
        self.max_bytes = int(max_bytes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self.settings.api_url!r})"

    def get(self, path: str, what: str) -> FetchedDocument | None:
        """GET ``path`` on the configured ``api_url``; ``None`` when RingCX answers 404.

        :param what: how errors name the document (ids only, never a token).
        :raises RingCXForbiddenError: 403 (no permission for this document).
        :raises RingCXDocumentTooLargeError: the body exceeds ``max_bytes``.
        :raises RingCXTransientError: the body broke off (retryable), or another typed error of the hook.
        """
        try:
            response = self.http.send_authenticated(
                "GET",
                self.settings.api_url + path,
                self.tokens,
                what=f"GET {what}",
                budget=self.budget,
                token_in=self.token_in,
                headers={"Accept": "application/json", "Accept-Encoding": "identity"},
                stream=True,
            )
        except RingCXNotFoundError:
            return None
        try:
            body = self._read(response, what)
        finally:
            response.close()
        return FetchedDocument(
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

    def _too_large(self, what: str, found: str) -> RingCXDocumentTooLargeError:
        return RingCXDocumentTooLargeError(
            f"{what}: the body is too large ({found}, the limit is {self.max_bytes} bytes); not archived - "
            "report the segment to RingCentral support"
        )
