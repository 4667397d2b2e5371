"""Landing one small JSON document beside a recording (a transcript, an AI summary): the shared steps.

Transcripts (:mod:`~airflow_provider_ringcx.transfers.transcripts`) and AI summaries
(:mod:`~airflow_provider_ringcx.transfers.summaries`) are archived the same way, so the way lives here once;
what differs (which segments have one, the key, the fetch, what a valid body is) is the caller's.
:meth:`DocumentWriter.land` ends with one outcome (:data:`DOCUMENT_OUTCOMES`), never an exception:

- ``already_archived``: the verdict (:func:`~airflow_provider_ringcx.transfers.verdict.verify_transcript`)
  finds it archived: nothing is fetched;
- ``archived``: fetched (the shared document budget, :mod:`~airflow_provider_ringcx.hooks.documents`),
  checked, written create-only and proven by the same verdict;
- ``pending``: RingCX answered 404 (produced after the call: "not ready yet", never "lost"), or a retryable
  error; a later run retries it (the late-arrival rescan, a re-run, the audit DAG's repair);
- ``not_archived``: the body is refused (the caller's check, or larger than the limit), RingCX answered 403,
  or the key holds an object that is not proven to be this document (kept untouched: it may be under Object
  Lock, and a person decides).

**What is stored** is the vendor's body, byte for byte, so the object's checksum is the checksum of what
RingCX sent: one PutObject with ``ChecksumSHA256`` (S3 refuses bytes that do not hash to it), ``If-None-Match:
*`` (write-once; a concurrent run's copy is verified instead of overwritten), the SHA-256 also as the
``sha256`` user metadata with the source path and retrieval time, and the run's encryption, storage class,
tags and Object Lock arguments (retained until the segment's end + the recording's days, as the recording
is). **Verified** means the object was read back, its bytes hash to that SHA-256 (which every checksum S3
holds matches), and the caller's check accepts them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from airflow_provider_ringcx import __version__, jsonutil
from airflow_provider_ringcx.exceptions import RingCXError, RingCXForbiddenError
from airflow_provider_ringcx.hooks.documents import FetchedDocument
from airflow_provider_ringcx.models import format_timestamp, parse_timestamp, printable
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.s3.writeonce import is_precondition_failed
from airflow_provider_ringcx.scrub import scrub
from airflow_provider_ringcx.transfers.verdict import OBJECT_MISSING, Verdict, verify_transcript

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ARCHIVED, ALREADY, PENDING, NOT_ARCHIVED = "archived", "already_archived", "pending", "not_archived"
DOCUMENT_OUTCOMES = (ARCHIVED, ALREADY, PENDING, NOT_ARCHIVED)
_REASON_CHARS = 300
_KINDS = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
#: Gets the document from RingCX (``None``: 404, not ready yet).
Fetch = Callable[[], FetchedDocument | None]
#: Why the bytes are not the document, or ``None`` when they are.
Check = Callable[[bytes], str | None]


@dataclass(frozen=True)
class DocumentOutcome:
    """What happened to one segment's document."""

    state: str
    key: str | None = None
    reason: str = ""
    size: int = 0


def json_object(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """``(document, None)`` when ``body`` is a JSON object (strict UTF-8 JSON: no NaN, bounded depth), else
    ``(None, why not)``: the first check of every document's body."""
    try:
        document = jsonutil.strict_loads(body)
    except ValueError as err:
        return None, f"is not JSON ({type(err).__name__} at {getattr(err, 'pos', '?')})"
    if not isinstance(document, dict):
        return None, f"is a JSON {_KINDS.get(type(document), type(document).__name__)}, not an object"
    return document, None


class DocumentWriter:
    """Lands documents of one batch; thread-safe (boto3 clients and the hook's session are).

    :param client: a boto3 S3 client.
    :param bucket: the archive bucket.
    :param options: the run's write options (the recording's: SSE, class, tags, Object Lock).
    :param noun: how outcomes and verdicts name the document (``transcript``, ``agent summary``).
    """

    def __init__(self, *, client: S3Client, bucket: str, options: S3WriteOptions, noun: str) -> None:
        self.client = client
        self.bucket = bucket
        self.options = options
        self.noun = noun

    def land(self, ref: Mapping[str, Any], key: str, fetch: Fetch, check: Check) -> DocumentOutcome:
        """Archive the document ``fetch`` gets at ``key``, if ``check`` finds no problem in its bytes.
        Never raises for the segment: every failure is an outcome with its reason."""
        try:
            return self._land(ref, key, fetch, check)
        except RingCXForbiddenError as err:
            return outcome(NOT_ARCHIVED, key, f"forbidden: {err}")
        except (RingCXError, ClientError, BotoCoreError, OSError) as err:
            retryable = not isinstance(err, RingCXError) or err.retryable
            return outcome(PENDING if retryable else NOT_ARCHIVED, key, f"{type(err).__name__}: {err}")

    def _verdict(self, key: str, check: Check) -> Verdict:
        return verify_transcript(self.client, self.bucket, key, check, noun=self.noun)

    def _land(self, ref: Mapping[str, Any], key: str, fetch: Fetch, check: Check) -> DocumentOutcome:
        verdict = self._verdict(key, check)
        if verdict.archived:
            return DocumentOutcome(ALREADY, key, size=int(verdict.size or 0))
        if verdict.state != OBJECT_MISSING:
            return self._kept(key, verdict)
        fetched = fetch()
        if fetched is None:
            why = f"RingCX answered 404: the {self.noun} is not ready yet (retried later)"
            return outcome(PENDING, key, why)
        problem = check(fetched.body)
        if problem:
            return outcome(NOT_ARCHIVED, key, f"the {self.noun} RingCX sent {problem}: not archived")
        self._put(ref, key, fetched)
        verdict = self._verdict(key, check)  # the proof: read back, hashed, checked
        if not verdict.archived:
            if verdict.state != OBJECT_MISSING:
                return self._kept(key, verdict)
            return outcome(PENDING, key, verdict.reason)
        if verdict.sha256 != fetched.sha256:  # a concurrent run stored another body first: verified, kept
            return DocumentOutcome(ALREADY, key, size=int(verdict.size or 0))
        return DocumentOutcome(ARCHIVED, key, size=fetched.size)

    def _put(self, ref: Mapping[str, Any], key: str, fetched: FetchedDocument) -> None:
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

    def _kept(self, key: str, verdict: Verdict) -> DocumentOutcome:
        return outcome(
            NOT_ARCHIVED,
            key,
            f"{verdict.state}: {verdict.reason}; the object at the key is kept as it is (it may be under "
            f"Object Lock): compare it with RingCX's {self.noun} and decide",
        )


def outcome(state: str, key: str, reason: str) -> DocumentOutcome:
    """An outcome whose reason is scrubbed of credentials, printable and bounded."""
    return DocumentOutcome(state, key, printable(scrub(reason))[:_REASON_CHARS])
