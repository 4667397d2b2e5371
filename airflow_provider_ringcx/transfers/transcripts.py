"""Archive a segment's transcript beside its recording: ``{segmentId}.transcript.json`` (issue 17).

Off by default; ``include_transcripts=True`` on the download operator (DAG setting ``include_transcripts``)
turns it on. Then, for every segment whose recording is archived (or already was) and whose metadata row
says ``hasTranscript``, :meth:`TranscriptLander.land` runs once, after the recording, and ends with one
outcome (:data:`TRANSCRIPT_OUTCOMES`: ``archived``, ``already_archived``, ``pending``, ``not_archived``); a
transcript never changes the recording's outcome. The steps (verdict first, fetch, check, one create-only
checksummed PutObject with the recording's encryption and Object Lock, verdict again) and what each outcome
means are :mod:`~airflow_provider_ringcx.transfers.documents`', shared with the AI summaries.

What is the transcript's own: which segments have one (:func:`has_transcript`: ``hasTranscript``, never a
guess), its key, and what a valid body is (:func:`body_problem`: a JSON object with a ``transcript`` array
that names no other segment). A pending transcript is retried by the late-arrival rescan: it re-plans the
earlier window's segments whose transcript is not archived (see ``example_dags/tasks.plan_late_downloads``).
The recording's sidecar references the transcript's key (it may land later than the sidecar, so the object
carries its own evidence).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx.hooks.transcripts import TranscriptClient
from airflow_provider_ringcx.keys import transcript_key
from airflow_provider_ringcx.models import printable
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.transfers.documents import (
    DOCUMENT_OUTCOMES,
    DocumentOutcome,
    DocumentWriter,
    json_object,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TRANSCRIPT_OUTCOMES = DOCUMENT_OUTCOMES
#: What happened to one segment's transcript.
TranscriptOutcome = DocumentOutcome


def has_transcript(row: Mapping[str, Any] | None) -> bool:
    """Whether a vendor row says the segment has a transcript (``hasTranscript`` true, ``"true"`` or 1);
    unlike ``hasRecording``, a missing or unreadable flag means no: nothing is fetched on a guess."""
    value = (row or {}).get("hasTranscript")
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return value is True or (isinstance(value, int) and value == 1)


def body_problem(body: bytes, dialog_id: str, segment_id: str) -> str | None:
    """Why ``body`` is not this segment's transcript, or ``None`` when it is: strict UTF-8 JSON (no NaN,
    bounded depth), an object, a ``transcript`` array, and no ``dialogId``/``segmentId`` naming another."""
    document, problem = json_object(body)
    if document is None:
        return problem
    for name, expected in (("dialogId", dialog_id), ("segmentId", segment_id), ("segmentID", segment_id)):
        found = document.get(name)
        if found is not None and str(found) != expected:
            return printable(f"names {name} {str(found)[:80]!r}, not {expected[:80]!r} (another segment's)")
    if not isinstance(document.get("transcript"), list):
        code = document.get("errorCode")
        return (
            f"has no transcript array (errorCode {printable(str(code))[:80]!r})"
            if code
            else ("has no transcript array")
        )
    return None


class TranscriptLander:
    """Lands transcripts of one batch; thread-safe (boto3 clients and the hook's session are).

    :param hook: the batch's RingCXHook (its transcript budget paces the fetches).
    :param client: a boto3 S3 client.
    :param bucket: the archive bucket.
    :param options: the run's write options (the recording's: SSE, class, tags, Object Lock).
    """

    def __init__(self, *, hook: Any, client: S3Client, bucket: str, options: S3WriteOptions) -> None:
        self.fetcher = TranscriptClient(hook)
        self.writer = DocumentWriter(client=client, bucket=bucket, options=options, noun="transcript")

    def land(
        self, ref: Mapping[str, Any], wav_key: str, row: Mapping[str, Any] | None
    ) -> TranscriptOutcome | None:
        """Archive the transcript of a segment whose recording is at ``wav_key``; ``None`` when its row has
        no ``hasTranscript``. Never raises for the segment: every failure is an outcome with its reason."""
        if not has_transcript(row):
            return None
        dialog_id, segment_id = str(ref["dialog_id"]), str(ref["segment_id"])
        return self.writer.land(
            ref,
            transcript_key(wav_key),
            lambda: self.fetcher.fetch(dialog_id, segment_id),
            lambda body: body_problem(body, dialog_id, segment_id),
        )
