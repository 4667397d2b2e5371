"""Fetching a segment's transcript: ``GET .../transcripts/dialogs/{dialogId}/segments/{segmentId}``.

The endpoint sits next to the recording download (``../shared/ringcx-api.md`` section 3) and has its own
limit, 120 requests per minute, shared with the AI summaries
(:mod:`~airflow_provider_ringcx.hooks.summaries`): both are paced by one budget (connection extra
``transcript_budget``, budget endpoint ``transcript``), so archiving them never slows the recordings. The
token goes as ``Authorization: Bearer``, as for the recording.

The transport is :class:`~airflow_provider_ringcx.hooks.documents.DocumentClient`'s: **404 means "not ready
yet"** (the vendor's transcripts page says to back off and retry on 404, and a transcript is produced after
the call), so :meth:`TranscriptClient.fetch` returns ``None`` then, never an error; the body is read whole
but bounded, with its SHA-256. Parsing and checking it is the lander's job
(:mod:`~airflow_provider_ringcx.transfers.transcripts`), not the transport's.
"""

from __future__ import annotations

from airflow_provider_ringcx.hooks.documents import (
    MAX_DOCUMENT_BYTES,
    DocumentClient,
    FetchedDocument,
    RingCXDocumentTooLargeError,
)
from airflow_provider_ringcx.hooks.download import encode_id

#: Largest transcript body accepted (bytes). An hour's call transcribed is far below 1 MiB.
MAX_TRANSCRIPT_BYTES = MAX_DOCUMENT_BYTES
#: A transcript as RingCX sent it (the shared document shape).
FetchedTranscript = FetchedDocument
#: A transcript body larger than the limit (the shared document error).
RingCXTranscriptTooLargeError = RingCXDocumentTooLargeError


def transcript_path(rc_account_id: str, sub_account_id: str, dialog_id: str, segment_id: str) -> str:
    """The vendor path of a transcript, ids encoded as single path segments."""
    return (
        f"/voice/api/cx/integration/v1/accounts/{encode_id(rc_account_id, 'rc_account_id')}"
        f"/sub-accounts/{encode_id(sub_account_id, 'sub_account_id')}"
        f"/transcripts/dialogs/{encode_id(dialog_id, 'dialog_id')}"
        f"/segments/{encode_id(segment_id, 'segment_id')}"
    )


class TranscriptClient(DocumentClient):
    """Fetches transcripts for one sub-account, paced by the transcript budget (bearer token).

    :param hook: a :class:`~airflow_provider_ringcx.hooks.ringcx.RingCXHook`.
    :param max_bytes: largest body accepted.
    """

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
        what = f"transcript dialog {dialog_id!r} segment {segment_id!r}"
        return self.get(self.path(dialog_id, segment_id), what)
