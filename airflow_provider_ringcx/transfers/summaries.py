"""Archive a segment's AI summaries beside its recording: ``{segmentId}.summary.{kind}.json`` (issue 17).

Off by default; ``include_summaries`` on the download operator (DAG setting ``include_summaries``) turns it
on: ``"agent"``, ``"auto"``, ``"both"`` or a list of kinds
(:func:`~airflow_provider_ringcx.hooks.summaries.parse_summary_kinds`). Then each segment whose recording is
archived and whose row says ``hasTranscript`` gets each asked kind landed once, after the recording, with
the steps and outcomes of :mod:`~airflow_provider_ringcx.transfers.documents` (the transcript's: verdict,
fetch, check, one create-only checksummed PutObject with the recording's encryption and Object Lock,
verdict again). A summary never changes the recording's outcome; a 404 is ``pending`` (not ready yet, never
lost) and the late-arrival rescan retries it, as it does transcripts.

**Which segments**: RingCX's metadata has no summary flag. An AI summary is made from the conversation's
transcript, so only segments with ``hasTranscript`` are asked for one [INF]; asking for every segment would
spend the 120/min budget that summaries share with transcripts on 404s, and leave every segment without a
summary pending forever.

**What a valid body is**: RingCX does not document the summary's shape, so any JSON object is accepted
(strict UTF-8 JSON, no NaN, bounded depth) and stored byte for byte; anything else (an HTML page with status
200, truncated JSON, an array, a string) is refused with the reason, never archived.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx.hooks.summaries import SummaryClient, parse_summary_kinds
from airflow_provider_ringcx.keys import summary_key
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.transfers.documents import DocumentOutcome, DocumentWriter, json_object
from airflow_provider_ringcx.transfers.transcripts import has_transcript

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def has_summaries(row: Mapping[str, Any] | None) -> bool:
    """Whether a segment is asked for its summaries: its row says ``hasTranscript`` (module docstring)."""
    return has_transcript(row)


def summary_problem(body: bytes) -> str | None:
    """Why ``body`` is not a summary RingCX could have sent, or ``None``: it must be a JSON object (strict
    UTF-8 JSON, no NaN, bounded depth); its fields are not checked, as their shape is not documented."""
    if body.lstrip()[:1] == b"<":
        return "is an HTML or XML page, not JSON"
    return json_object(body)[1]


class SummaryLander:
    """Lands the asked summary kinds of one batch's segments; thread-safe.

    :param hook: the batch's RingCXHook (its transcript budget paces the fetches: one 120/min class).
    :param client: a boto3 S3 client.
    :param bucket: the archive bucket.
    :param options: the run's write options (the recording's: SSE, class, tags, Object Lock).
    :param kinds: the kinds to land (an ``include_summaries`` value).
    """

    def __init__(
        self, *, hook: Any, client: S3Client, bucket: str, options: S3WriteOptions, kinds: object
    ) -> None:
        self.kinds: Sequence[str] = parse_summary_kinds(kinds)
        self.fetcher = SummaryClient(hook)
        self.writers = {
            kind: DocumentWriter(client=client, bucket=bucket, options=options, noun=f"{kind} summary")
            for kind in self.kinds
        }

    def land(
        self, ref: Mapping[str, Any], wav_key: str, row: Mapping[str, Any] | None
    ) -> dict[str, DocumentOutcome] | None:
        """Archive each asked summary of a segment whose recording is at ``wav_key``: ``{kind: outcome}``;
        ``None`` when none is asked for it. Never raises for the segment."""
        if not self.kinds or not has_summaries(row):
            return None
        segment_id = str(ref["segment_id"])
        return {
            kind: self.writers[kind].land(
                ref,
                summary_key(wav_key, kind),
                lambda kind=kind: self.fetcher.fetch(segment_id, kind),  # type: ignore[misc]
                summary_problem,
            )
            for kind in self.kinds
        }
