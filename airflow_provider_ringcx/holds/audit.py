"""The audit record of one legal-hold request: what changed, who asked, who approved, when.

One JSON object per task try, written once (``If-None-Match: *``) at
:func:`~airflow_provider_ringcx.keys.hold_audit_key` with the run's compliance options (encryption, tags,
Object Lock retention counted from the request), so the trail of holds is as tamper-evident as the
recordings. It is written whether the request changed anything or not (a second run's record says
``changed: 0``), when some objects were missing, before the task fails over them, and when S3 refused a
request midway: then it lists the objects handled until then and says why in ``error``, before the task
fails (no hold changes without a record).

**Who asked**: ``requested_by`` (an operator argument; the example DAG passes the run's ``requested_by``
param) and the DAG run's triggering user as Airflow knows it. **Approval**: what the approval task (the
example DAG's ``ApprovalOperator``) returned: the option chosen, who chose it, when. Names and ids only:
the record holds no credential, and phone numbers only as the request named them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx import __version__, jsonutil, keys
from airflow_provider_ringcx.holds.apply import Change
from airflow_provider_ringcx.models import printable
from airflow_provider_ringcx.s3.options import S3WriteOptions

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RECORD_TYPE = "ringcx-legal-hold-audit/1"
#: Longest error text a record keeps.
MAX_ERROR = 1000


def counts(changes: Sequence[Change]) -> dict[str, int]:
    """How many objects were changed, already in the wanted status, or missing."""
    found = {"objects": len(changes), "changed": 0, "unchanged": 0, "missing": 0, "failed": 0}
    for change in changes:
        found[change.result] = found.get(change.result, 0) + 1
    return found


def approval_of(value: Any) -> dict[str, Any] | None:
    """The approval task's answer (``HITLTriggerEventSuccessPayload``) as the record keeps it."""
    if not isinstance(value, Mapping):
        return None
    user = value.get("responded_by_user")
    responded = value.get("responded_at")
    return {
        "chosen_options": list(value.get("chosen_options") or []),
        "responded_by": dict(user) if isinstance(user, Mapping) else user,
        "responded_at": responded.isoformat() if isinstance(responded, datetime) else responded,
        "params_input": dict(value.get("params_input") or {}),
    }


def build_record(*, action: str, status: str, query: Mapping[str, Any], bucket: str, prefix: str | None,
                 changes: Sequence[Change], requested_by: str | None, triggered_by: str | None,
                 approval: Mapping[str, Any] | None, reason: str | None, run: Mapping[str, Any],
                 started_at: datetime, days_read: Sequence[str], days_without_index: Sequence[str],
                 segments: int,
                 index_days_updated: Sequence[str] | None = None,
                 error: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The audit record (a dict, JSON-ready). ``error``: why the request stopped before its last object
    (the record then lists the objects handled until then; ``null`` when it ran to the end)."""
    return {
        "record_type": RECORD_TYPE,
        "provider_version": __version__,
        "action": action,
        "legal_hold_status": status,
        "reason": reason,
        "requested_by": requested_by,
        "triggered_by": triggered_by,
        "approval": dict(approval) if approval else None,
        "requested_at": started_at.isoformat(),
        "completed_at": datetime.now(timezone.utc).isoformat(),
        "run": dict(run),
        "bucket": bucket,
        "prefix": keys.normalize_prefix(prefix),
        "query": dict(query),
        "days_read": list(days_read),
        "days_without_index": list(days_without_index),
        "segments": segments,
        "index_days_updated": None if index_days_updated is None else list(index_days_updated),
        "error": printable(error)[:MAX_ERROR] if error else None,
        "counts": counts(changes),
        "objects": [change.as_dict() for change in changes],
    }


def write_record(client: S3Client, bucket: str, key: str, record: Mapping[str, Any],
                 options: S3WriteOptions) -> dict[str, Any]:  # fmt: skip
    """Write the record once at ``key``; returns its ``{"key", "version_id", "sha256"}``."""
    body = jsonutil.dumps(record, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")
    digest = hashlib.sha256(body).digest()
    answer = client.put_object(
        Bucket=bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch="*",
        ChecksumSHA256=base64.b64encode(digest).decode("ascii"), **options.extra_args(),
    )  # fmt: skip
    return {"key": key, "version_id": answer.get("VersionId"), "sha256": digest.hex()}
