"""Archive a segment's transcript beside its recording: ``{segmentId}.transcript.json`` (issue 17).

Off by default; ``include_transcripts=True`` on the download operator (DAG setting ``include_transcripts``)
turns it on. Then, for every segment whose recording is archived (or already was) and whose metadata row
says ``hasTranscript``, :meth:`TranscriptLander.land` runs once, after the recording, and ends with one
outcome (:data:`TRANSCRIPT_OUTCOMES`); a transcript never changes the recording's outcome:

- ``already_archived``: the verdict (:func:`~airflow_provider_ringcx.transfers.verdict.verify_transcript`)
  finds it archived: nothing is fetched;
- ``archived``: fetched (its own budget, :mod:`~airflow_provider_ringcx.hooks.transcripts`), checked,
  written create-only and proven by the same verdict;
- ``pending``: RingCX answered 404 (a transcript is produced after the call: "not ready yet", never "lost"),
  or a retryable error. A later run retries it: the late-arrival rescan re-plans the earlier window's
  segments whose transcript is pending (see ``example_dags/tasks.plan_late_downloads``), and a re-run or
  the audit DAG's repair of a window does the same;
- ``not_archived``: the body is refused (not JSON, not an object, another segment's ids, no transcript
  array, larger than the limit), RingCX answered 403, or the key holds an object that is not proven to be
  this transcript (kept untouched: it may be under Object Lock, and a person decides).

**What is stored** is the vendor's body, byte for byte, so the object's checksum is the checksum of what
RingCX sent: one PutObject with ``ChecksumSHA256`` (S3 refuses bytes that do not hash to it), ``If-None-Match:
*`` (write-once; a concurrent run's copy is verified instead of overwritten), the SHA-256 also as the
``sha256`` user metadata with the source path and retrieval time, and the run's encryption, storage class,
tags and Object Lock arguments (retained until the segment's end + the recording's days, as the recording
is). **Verified** means the object was read back and its bytes hash to that SHA-256, which every checksum
S3 holds matches, and the body names this segment. The recording's sidecar references the transcript's key
(it may land later than the sidecar, so the object carries its own evidence).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from airflow_provider_ringcx import __version__, jsonutil
from airflow_provider_ringcx.exceptions import RingCXError, RingCXForbiddenError
from airflow_provider_ringcx.hooks.transcripts import FetchedTranscript, TranscriptClient
from airflow_provider_ringcx.keys import transcript_key
from airflow_provider_ringcx.models import format_timestamp, parse_timestamp, printable
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.s3.writeonce import is_precondition_failed
from airflow_provider_ringcx.scrub import scrub
from airflow_provider_ringcx.transfers.verdict import OBJECT_MISSING, Verdict, verify_transcript

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ARCHIVED, ALREADY, PENDING, NOT_ARCHIVED = "archived", "already_archived", "pending", "not_archived"
TRANSCRIPT_OUTCOMES = (ARCHIVED, ALREADY, PENDING, NOT_ARCHIVED)
_REASON_CHARS = 300
_KINDS = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


@dataclass(frozen=True)
class TranscriptOutcome:
    """What happened to one segment's transcript."""

    state: str
    key: str | None = None
    reason: str = ""
    size: int = 0


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
    try:
        document = jsonutil.strict_loads(body)
    except ValueError as err:
        return f"is not JSON ({type(err).__name__} at {getattr(err, 'pos', '?')})"
    if not isinstance(document, dict):
        return f"is a JSON {_KINDS.get(type(document), type(document).__name__)}, not an object"
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
        self.client = client
        self.bucket = bucket
        self.options = options

    def land(
        self, ref: Mapping[str, Any], wav_key: str, row: Mapping[str, Any] | None
    ) -> TranscriptOutcome | None:
        """Archive the transcript of a segment whose recording is at ``wav_key``; ``None`` when its row has
        no ``hasTranscript``. Never raises for the segment: every failure is an outcome with its reason."""
        if not has_transcript(row):
            return None
        dialog_id, segment_id = str(ref["dialog_id"]), str(ref["segment_id"])
        key = transcript_key(wav_key)
        try:
            return self._land(ref, key, dialog_id, segment_id)
        except RingCXForbiddenError as err:
            return _outcome(NOT_ARCHIVED, key, f"forbidden: {err}")
        except (RingCXError, ClientError, BotoCoreError, OSError) as err:
            retryable = not isinstance(err, RingCXError) or err.retryable
            state = PENDING if retryable else NOT_ARCHIVED
            return _outcome(state, key, f"{type(err).__name__}: {err}")

    def _verdict(self, key: str, dialog_id: str, segment_id: str) -> Verdict:
        return verify_transcript(
            self.client, self.bucket, key, lambda body: body_problem(body, dialog_id, segment_id)
        )

    def _land(self, ref: Mapping[str, Any], key: str, dialog_id: str, segment_id: str) -> TranscriptOutcome:
        verdict = self._verdict(key, dialog_id, segment_id)
        if verdict.archived:
            return TranscriptOutcome(ALREADY, key, size=int(verdict.size or 0))
        if verdict.state != OBJECT_MISSING:
            return _kept(key, verdict)
        fetched = self.fetcher.fetch(dialog_id, segment_id)
        if fetched is None:
            return _outcome(
                PENDING, key, "RingCX answered 404: the transcript is not ready yet (retried later)"
            )
        problem = body_problem(fetched.body, dialog_id, segment_id)
        if problem:
            return _outcome(NOT_ARCHIVED, key, f"the transcript RingCX sent {problem}: not archived")
        self._put(ref, key, fetched)
        verdict = self._verdict(key, dialog_id, segment_id)  # the proof: read back, hashed, checked
        if not verdict.archived:
            return (
                _kept(key, verdict)
                if verdict.state != OBJECT_MISSING
                else _outcome(PENDING, key, verdict.reason)
            )
        if verdict.sha256 != fetched.sha256:  # a concurrent run stored another body first: verified, kept
            return TranscriptOutcome(ALREADY, key, size=int(verdict.size or 0))
        return TranscriptOutcome(ARCHIVED, key, size=fetched.size)

    def _put(self, ref: Mapping[str, Any], key: str, fetched: FetchedTranscript) -> None:
        """One create-only, checksummed PutObject of the vendor's bytes (a 412: someone else's copy stands,
        and the verdict that follows judges it)."""
        lock_args = self.options.extra_args(segment_end=parse_timestamp(ref.get("end")))
        metadata = {
            "sha256": fetched.sha256,
            "provider-version": __version__,
            "source-path": fetched.path,  # ids percent-encoded: ASCII, as S3 metadata must be
            "retrieved-at": str(format_timestamp(datetime.now(timezone.utc))),
        }
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=fetched.body,
                ContentType="application/json",
                ChecksumAlgorithm="SHA256",  # x-amz-sdk-checksum-algorithm: Object Lock needs it
                ChecksumSHA256=base64.b64encode(hashlib.sha256(fetched.body).digest()).decode("ascii"),
                Metadata=metadata,
                IfNoneMatch="*",
                **lock_args,
            )
        except ClientError as err:
            if not is_precondition_failed(err):
                raise


def _outcome(state: str, key: str, reason: str) -> TranscriptOutcome:
    return TranscriptOutcome(state, key, printable(scrub(reason))[:_REASON_CHARS])


def _kept(key: str, verdict: Verdict) -> TranscriptOutcome:
    return _outcome(
        NOT_ARCHIVED,
        key,
        f"{verdict.state}: {verdict.reason}; the object at the key is kept as it is (it may be under Object "
        "Lock): compare it with RingCX's transcript and decide",
    )
