"""Archive a batch of segments: a small thread pool, in-task retries, outcomes, progress and a summary.

Each segment ends with exactly one outcome:

- ``archived``: downloaded, verified and written (object + sidecar) by this run;
- ``already_archived``: object and sidecar already in S3 with matching sha256 and size (nothing downloaded);
- ``forbidden``: RingCX answered 403 for the recording;
- ``missing``: RingCX answered 404 (unknown, or not processed yet);
- ``failed``: anything else, with the reason and whether a retry may succeed.

Each finished segment logs a progress line (``[3/5] 0.96 MB · 6.4 MB/s · archived <ids>``, see
:mod:`~airflow_provider_ringcx.transfers.progress`).

Retryable failures (5xx, resets, truncated bodies, S3 throttling...) are retried in-task a few times with
exponential backoff (tenacity) before they count as ``failed``; each attempt starts with the idempotency
check, so a retry after a concurrent success downloads nothing.

With a :class:`~airflow_provider_ringcx.transfers.transcripts.TranscriptLander`, each segment whose
recording is archived then gets its transcript landed too (its own outcome, ``transcript``; the recording's
outcome never depends on it). The summary then adds ``transcripts`` (counts per transcript outcome) and
``transcript_pending`` / ``transcript_not_archived`` (``{dialog_id, segment_id, reason}``, every one: the
late-arrival rescan retries the pending ones). A
:class:`~airflow_provider_ringcx.transfers.summaries.SummaryLander` does the same for the AI summaries
(``summaries``: one outcome per asked kind; the summary adds ``summaries`` and ``summary_pending`` /
``summary_not_archived``, each entry with its ``kind``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from airflow_provider_ringcx.exceptions import RingCXError, RingCXForbiddenError, RingCXNotFoundError
from airflow_provider_ringcx.models import SegmentRef, printable
from airflow_provider_ringcx.s3.writeonce import http_status
from airflow_provider_ringcx.scrub import scrub
from airflow_provider_ringcx.transfers.documents import DOCUMENT_OUTCOMES, DocumentOutcome
from airflow_provider_ringcx.transfers.landing import Landed, SegmentLander
from airflow_provider_ringcx.transfers.progress import BatchProgress
from airflow_provider_ringcx.transfers.summaries import SummaryLander
from airflow_provider_ringcx.transfers.transcripts import TranscriptLander

OUTCOMES = ("archived", "already_archived", "forbidden", "missing", "failed")
#: The summary's list of ``[dialog_id, segment_id]`` whose recording was already archived and whose
#: transcript or a summary landed in this batch (at most the batch's size; absent when empty).
DOCUMENTS_RELANDED = "documents_relanded"
#: At most this many not-archived segments are listed in the XCom summary (the counts stay exact).
MAX_LISTED = 50
_REASON_CHARS = 300
_RETRYABLE_S3_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling"}

log = logging.getLogger(__name__)


@dataclass
class SegmentOutcome:
    """What happened to one segment."""

    dialog_id: str
    segment_id: str
    outcome: str
    reason: str = ""
    retryable: bool = False
    key: str | None = None
    size: int = 0
    downloaded: int = 0
    attempts: int = 1
    transcript: str | None = None  # a DOCUMENT_OUTCOMES entry; None: not asked for, or no hasTranscript
    transcript_reason: str = ""
    summaries: dict[str, tuple[str, str]] | None = None  # kind -> (DOCUMENT_OUTCOMES entry, reason)

    def as_dict(self) -> dict[str, Any]:
        """The compact XCom form (not-archived segments only are listed)."""
        return {
            "dialog_id": self.dialog_id,
            "segment_id": self.segment_id,
            "outcome": self.outcome,
            "reason": self.reason[:_REASON_CHARS],
            "retryable": self.retryable,
        }


def is_retryable(err: BaseException) -> bool:
    """Whether another attempt may succeed: RingCX transient errors, S3 5xx/throttling, network errors."""
    if isinstance(err, RingCXError):
        return bool(err.retryable)
    if isinstance(err, ClientError):
        status = http_status(err) or 0
        code = err.response.get("Error", {}).get("Code", "")
        return status >= 500 or status in (408, 409, 429) or code in _RETRYABLE_S3_CODES
    if isinstance(err, (BotoCoreError, Boto3Error, ConnectionError, TimeoutError)):
        return True
    try:
        import requests

        return isinstance(err, requests.RequestException)
    except ImportError:  # pragma: no cover
        return False


def _reason(err: BaseException) -> str:
    """The reason as logged and reported: type and message, scrubbed of credentials
    (:func:`~airflow_provider_ringcx.scrub.scrub`), non-printable characters escaped, capped."""
    text = str(err) or type(err).__name__
    return printable(scrub(f"{type(err).__name__}: {text}"))[:_REASON_CHARS]


class BatchArchiver:
    """Run :class:`SegmentLander` over a batch with ``max_workers`` threads.

    :param attempts: tries per segment for retryable failures (1 = no in-task retry).
    :param backoff: first backoff in seconds (doubled each attempt, capped at 30 s).
    :param progress: where the progress lines go; default: a :class:`BatchProgress` on ``logger``. Pass the
        lander's (``SegmentLander(progress=...)``) so that its in-recording ticks count the same batch.
    """

    def __init__(
        self,
        lander: SegmentLander,
        *,
        max_workers: int = 4,
        attempts: int = 3,
        backoff: float = 1.0,
        logger: logging.Logger | Any = None,
        progress: BatchProgress | None = None,
        transcripts: TranscriptLander | None = None,
        summaries: SummaryLander | None = None,
    ) -> None:
        self.lander = lander
        self.transcripts = transcripts
        self.summaries = summaries
        self.max_workers = max(1, int(max_workers))
        self.attempts = max(1, int(attempts))
        self.backoff = max(0.0, float(backoff))
        self.log = logger or log
        self.progress = progress or BatchProgress(self.log)

    def run(self, batch: Sequence[SegmentRef]) -> list[SegmentOutcome]:
        """Archive every segment of ``batch``; return one outcome per segment, in batch order."""
        self.progress.start(len(batch))
        with ThreadPoolExecutor(max_workers=min(self.max_workers, max(len(batch), 1))) as pool:
            return list(pool.map(self._one, batch))

    def _one(self, ref: SegmentRef) -> SegmentOutcome:
        dialog_id, segment_id = str(ref["dialog_id"]), str(ref["segment_id"])
        attempts = 0

        def attempt() -> Landed:
            nonlocal attempts
            attempts += 1
            return self.lander.land(ref)

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=30)
            if self.backoff
            else wait_exponential(0, 0),
            retry=retry_if_exception(is_retryable),
            reraise=True,
            before_sleep=self._before_sleep(dialog_id, segment_id),
        )
        try:
            landed = retrying(attempt)
            outcome = SegmentOutcome(
                dialog_id,
                segment_id,
                landed.outcome,
                key=landed.key,
                size=landed.size,
                downloaded=landed.downloaded,
                attempts=attempts,
            )
            self._documents(ref, outcome)
        except RingCXForbiddenError as err:
            outcome = SegmentOutcome(dialog_id, segment_id, "forbidden", _reason(err), attempts=attempts)
        except RingCXNotFoundError as err:
            outcome = SegmentOutcome(dialog_id, segment_id, "missing", _reason(err), attempts=attempts)
        except Exception as err:
            outcome = SegmentOutcome(
                dialog_id, segment_id, "failed", _reason(err), retryable=is_retryable(err), attempts=attempts
            )
        ident = f"{outcome.dialog_id}/{outcome.segment_id}"
        self.progress.finished(outcome.outcome, ident, outcome.downloaded, outcome.reason)
        return outcome

    def _documents(self, ref: SegmentRef, outcome: SegmentOutcome) -> None:
        """Land the transcript and the AI summaries of a segment whose recording is archived (those that
        are on)."""
        if outcome.key is None:
            return
        row = self.lander.rows.get((outcome.dialog_id, outcome.segment_id))
        landed = self.transcripts.land(ref, outcome.key, row) if self.transcripts is not None else None
        if landed is not None:
            outcome.transcript, outcome.transcript_reason = landed.state, landed.reason
            self._log_document("transcript", outcome, landed)
        kinds = self.summaries.land(ref, outcome.key, row) if self.summaries is not None else None
        if kinds is not None:
            outcome.summaries = {kind: (one.state, one.reason) for kind, one in kinds.items()}
            for kind, one in kinds.items():
                self._log_document(f"{kind} summary", outcome, one)

    def _log_document(self, noun: str, outcome: SegmentOutcome, landed: DocumentOutcome) -> None:
        if landed.state not in ("archived", "already_archived"):
            self.log.info(
                "%s of %s/%s %s: %s",
                noun,
                printable(outcome.dialog_id),
                printable(outcome.segment_id),
                landed.state,
                landed.reason,
            )

    def _before_sleep(self, dialog_id: str, segment_id: str) -> Callable[[Any], None]:
        def hook(state: Any) -> None:
            err = state.outcome.exception() if state.outcome else None
            self.log.warning(
                "segment %s/%s attempt %d failed (%s); retrying",
                printable(dialog_id),
                printable(segment_id),
                state.attempt_number,
                _reason(err) if err else "?",
            )

        return hook


def summarize(outcomes: Sequence[SegmentOutcome], *, max_listed: int = MAX_LISTED) -> dict[str, Any]:
    """The compact XCom summary of a batch: counts, bytes and the (capped) list of not-archived segments."""
    counts = Counter({name: 0 for name in OUTCOMES})
    counts.update(outcome.outcome for outcome in outcomes)
    problems = [outcome for outcome in outcomes if outcome.outcome not in ("archived", "already_archived")]
    summary = {
        "segments": len(outcomes),
        "counts": dict(counts),
        "retryable_failures": sum(
            1 for outcome in outcomes if outcome.outcome == "failed" and outcome.retryable
        ),
        "bytes_archived": sum(outcome.size for outcome in outcomes if outcome.outcome == "archived"),
        "bytes_downloaded": sum(outcome.downloaded for outcome in outcomes),
        "not_archived": [outcome.as_dict() for outcome in problems[:max_listed]],
        "not_archived_truncated": max(0, len(problems) - max_listed),
    }
    transcripts: list[tuple[SegmentOutcome, str, str, dict[str, str]]] = [
        (o, str(o.transcript), o.transcript_reason, {}) for o in outcomes if o.transcript is not None
    ]
    _add_documents(summary, "transcripts", "transcript", transcripts)
    summaries = [
        (o, state, reason, {"kind": kind})
        for o in outcomes
        for kind, (state, reason) in (o.summaries or {}).items()
    ]
    _add_documents(summary, "summaries", "summary", summaries)
    relanded = [[o.dialog_id, o.segment_id] for o in outcomes if _documents_relanded(o)]
    if relanded:  # the rescan's report re-indexes these (window_report)
        summary[DOCUMENTS_RELANDED] = relanded
    return summary


def _documents_relanded(outcome: SegmentOutcome) -> bool:
    """A recording archived earlier whose transcript or a summary landed now (a rescan's retry)."""
    states = [outcome.transcript, *(state for state, _ in (outcome.summaries or {}).values())]
    return outcome.outcome == "already_archived" and "archived" in states


def _add_documents(
    summary: dict[str, Any],
    plural: str,
    noun: str,
    entries: Sequence[tuple[SegmentOutcome, str, str, dict[str, str]]],
) -> None:
    """When documents were asked for (transcripts, summaries): their counts, and every pending or refused
    one, all listed (the rescan needs them all): ``{plural}``, ``{noun}_pending``, ``{noun}_not_archived``."""
    if not entries:
        return
    counts = Counter({name: 0 for name in DOCUMENT_OUTCOMES})
    counts.update(state for _, state, _, _ in entries)
    summary[plural] = dict(counts)
    for state in ("pending", "not_archived"):
        summary[f"{noun}_{state}"] = [
            {"dialog_id": o.dialog_id, "segment_id": o.segment_id, **extra, "reason": reason}
            for o, found, reason, extra in entries
            if found == state
        ]
