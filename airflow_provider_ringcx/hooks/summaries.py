"""Fetching a segment's AI summary.

``GET /voice/api/v1/summary/accounts/{subAccountId}/segments/{segmentId}/{kind}``, where ``kind`` is
``agent`` or ``auto`` (:data:`SUMMARY_KINDS`; ``../shared/ringcx-api.md`` section 3). Three things set the
endpoint apart from the transcript's, and they are all this module knows:

- **the token is a cookie**: ``Cookie: access_token=<token>``, never ``Authorization: Bearer`` (the vendor
  doc says "instead of Bearer"), sent per request to the configured ``api_url`` host only
  (:mod:`~airflow_provider_ringcx.hooks.client`, ``token_in=COOKIE``);
- the path names the sub-account and the segment, not the main account or the dialog;
- **the body's shape is not documented**: the lander accepts any JSON object and stores the bytes as
  received (:mod:`~airflow_provider_ringcx.transfers.summaries`).

The rest is the transcript's (:class:`~airflow_provider_ringcx.hooks.documents.DocumentClient`): 404 is "not
ready yet" (``None``), a 403 (``Errors`` or ``{"errorCode": "access.denied.exception", ...}``) is
:class:`~airflow_provider_ringcx.exceptions.RingCXForbiddenError`, the body is bounded and hashed, and the
budget is the one ``transcript`` budget: "transcripts, summaries, most admin APIs" are one 120/min class.
"""

from __future__ import annotations

from collections.abc import Iterable

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.hooks.client import COOKIE
from airflow_provider_ringcx.hooks.documents import DocumentClient, FetchedDocument
from airflow_provider_ringcx.hooks.download import encode_id
from airflow_provider_ringcx.keys import SUMMARY_KINDS  # the kinds RingCX serves, each with its own key

__all__ = ["SUMMARY_KINDS", "SummaryClient", "parse_summary_kinds", "summary_path"]
_OFF = ("", "false", "none", "off", "no", "0")


def parse_summary_kinds(value: object) -> tuple[str, ...]:
    """The summary kinds asked for by an ``include_summaries`` value, in :data:`SUMMARY_KINDS` order.

    Off: ``False``, ``None``, ``""``, ``"false"``/``"none"``/``"off"``. One kind: ``"agent"`` or ``"auto"``.
    Both: ``"both"`` or ``True``. Or a list (or a comma-separated string) of kinds.

    :raises RingCXConfigError: a value or a kind that is none of these.
    """
    if value is None or value is False:
        return ()
    if value is True:
        return SUMMARY_KINDS
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _OFF:
            return ()
        items: Iterable[object] = SUMMARY_KINDS if text in ("both", "true") else text.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        raise _bad(value)
    kinds = {str(item).strip().lower() for item in items if str(item).strip()}
    if not kinds <= set(SUMMARY_KINDS):
        raise _bad(value)
    return tuple(kind for kind in SUMMARY_KINDS if kind in kinds)


def _bad(value: object) -> RingCXConfigError:
    return RingCXConfigError(
        f"include_summaries is {str(value)[:80]!r}: use false (default), 'agent', 'auto', 'both' or a list "
        "of 'agent'/'auto'"
    )


def summary_path(sub_account_id: str, segment_id: str, kind: str) -> str:
    """The vendor path of a summary, ids encoded as single path segments.

    :raises RingCXConfigError: ``kind`` is not one of :data:`SUMMARY_KINDS`.
    """
    if kind not in SUMMARY_KINDS:
        raise RingCXConfigError(f"summary kind {kind!r} is not one of {', '.join(SUMMARY_KINDS)}")
    return (
        f"/voice/api/v1/summary/accounts/{encode_id(sub_account_id, 'sub_account_id')}"
        f"/segments/{encode_id(segment_id, 'segment_id')}/{kind}"
    )


class SummaryClient(DocumentClient):
    """Fetches AI summaries for one sub-account: the token as the ``access_token`` cookie, the shared
    transcript budget.

    :param hook: a :class:`~airflow_provider_ringcx.hooks.ringcx.RingCXHook`.
    :param max_bytes: largest body accepted.
    """

    token_in = COOKIE

    def path(self, segment_id: str, kind: str) -> str:
        """The vendor path of one summary."""
        return summary_path(self.settings.sub_account_id, segment_id, kind)

    def fetch(self, segment_id: str, kind: str) -> FetchedDocument | None:
        """GET the summary of ``kind``; ``None`` when RingCX answers 404 (not ready yet, or none).

        :raises RingCXForbiddenError: 403, in either documented shape.
        :raises RingCXDocumentTooLargeError: the body exceeds ``max_bytes``.
        :raises RingCXTransientError: the body broke off (retryable), or another typed error of the hook.
        """
        return self.get(self.path(segment_id, kind), f"{kind} summary of segment {segment_id!r}")
