"""The sidecar: the chain-of-custody record stored next to each recording (``{segmentId}.json``).

Format ``ringcx-recording-sidecar/1``; :data:`SIDECAR_SCHEMA` is its JSON Schema (draft 2020-12). The
``metadata`` member is the vendor row exactly as listed (``segmentEvents`` with ``REC_START``/``REC_STOP``
included); everything else is computed while the bytes streamed into S3. ``pauses`` is the PCI pause evidence
read from that row's ``segmentEvents`` by :func:`~airflow_provider_ringcx.pauses.compute_pause_evidence` (the
rule's name and every problem found in the list included); ``transcript`` names the key of the segment's
transcript document when transcripts are archived (:mod:`~airflow_provider_ringcx.transfers.transcripts`:
the transcript may land later than the recording, so the document carries its own evidence), and
``summaries`` the keys of its AI summaries by kind (``{"agent": {"key": ...}}``,
:mod:`~airflow_provider_ringcx.transfers.summaries`). All are optional in the schema: sidecars written
before them stay valid.

:func:`build_sidecar` assembles the document from what it describes (the segment, the
:class:`DownloadEvidence` and the :class:`StoredRecording`); :func:`write_sidecar` writes it create-only.
:func:`parse_sidecar` is the one place where a stored sidecar is read back and validated: against the
whole :data:`SIDECAR_SCHEMA` (so ``"size": "12,345"``, ``"size": null``, a missing member or a ``sha256``
that is not 64 lowercase hex digits are all refused), by ``jsonschema``, which Airflow's task SDK already
requires. The lander's idempotency check and the window report both go through it (via
:func:`~airflow_provider_ringcx.transfers.verdict.verify_archived`), so they cannot disagree on what a valid
sidecar is.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import jsonschema
from botocore.exceptions import ClientError

from airflow_provider_ringcx import __version__, jsonutil
from airflow_provider_ringcx.keys import SUMMARY_KINDS
from airflow_provider_ringcx.models import format_timestamp, printable
from airflow_provider_ringcx.pauses import compute_pause_evidence
from airflow_provider_ringcx.s3.options import Retention
from airflow_provider_ringcx.s3.writeonce import is_precondition_failed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SIDECAR_FORMAT = "ringcx-recording-sidecar/1"

_NULLABLE_INT = {"type": ["integer", "null"], "minimum": 0}
_NULLABLE_STR = {"type": ["string", "null"]}
_KEY_REF = {"type": "object", "required": ["key"], "properties": {"key": {"type": "string", "minLength": 1}}}
_INTERVALS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["start", "end"],
        "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
    },
}

SIDECAR_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://github.com/airflow-provider-ringcx/schemas/recording-sidecar-1.json",
    "title": "RingCX recording sidecar",
    "type": "object",
    "required": [
        "format",
        "dialog_id",
        "segment_id",
        "sub_account_id",
        "sha256",
        "size",
        "content_type",
        "audio",
        "source",
        "s3",
        "retrieved_at",
        "provider",
        "metadata",
    ],
    "properties": {
        "format": {"const": SIDECAR_FORMAT},
        "dialog_id": {"type": "string", "minLength": 1},
        "segment_id": {"type": "string", "minLength": 1},
        "sub_account_id": {"type": "string", "minLength": 1},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "size": {"type": "integer", "minimum": 0},
        "content_type": {"type": "string"},
        "audio": {
            "type": "object",
            "required": ["channels", "sample_rate", "bits_per_sample", "data_size", "duration_seconds"],
            "properties": {
                "channels": {"type": "integer", "minimum": 1},
                "sample_rate": {"type": "integer", "minimum": 1},
                "bits_per_sample": {"type": "integer", "minimum": 1},
                "audio_format": _NULLABLE_INT,
                "data_size": _NULLABLE_INT,
                "duration_seconds": {"type": ["number", "null"], "minimum": 0},
            },
        },
        "source": {
            "type": "object",
            "required": ["path", "content_length"],
            "properties": {
                "path": {"type": "string"},
                "content_length": _NULLABLE_INT,
                "content_type": _NULLABLE_STR,
            },
        },
        "s3": {
            "type": "object",
            "required": ["bucket", "key", "version_id", "upload"],
            "properties": {
                "bucket": {"type": "string"},
                "key": {"type": "string"},
                "version_id": _NULLABLE_STR,
                "upload": {"enum": ["put", "multipart"]},
                "checksum_sha256": _NULLABLE_STR,
                "manifest_key": _NULLABLE_STR,
                "object_lock_mode": _NULLABLE_STR,
                "object_lock_retain_until": _NULLABLE_STR,
                "object_lock_legal_hold": {"type": "boolean"},
                "object_lock_retention": {"type": ["object", "null"]},
            },
        },
        "segment": {
            "type": "object",
            "properties": {
                "start": _NULLABLE_STR,
                "end": _NULLABLE_STR,
                "duration_ms": _NULLABLE_INT,
            },
        },
        "retrieved_at": {"type": "string", "format": "date-time"},
        "provider": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
        },
        "metadata": {"type": "object"},
        "pauses": {
            "type": "object",
            "required": ["rule", "recorded", "paused", "problems"],
            "properties": {
                "rule": {"type": "string", "minLength": 1},
                "recorded": _INTERVALS,
                "paused": _INTERVALS,
                "problems": {"type": "array", "items": {"type": "string"}},
            },
        },
        "transcript": _KEY_REF,
        "summaries": {
            "type": "object",
            "propertyNames": {"enum": list(SUMMARY_KINDS)},
            "additionalProperties": _KEY_REF,
        },
    },
}


@dataclass(frozen=True)
class DownloadEvidence:
    """What the download proved about the bytes: their SHA-256 and size as streamed, the WAV header
    (``WavInfo``: channels, sample_rate, bits_per_sample, data_size...) and where they came from."""

    sha256: str
    size: int
    wav: Any
    source_path: str
    content_length: int | None
    content_type: str | None


@dataclass(frozen=True)
class StoredRecording:
    """Where the bytes landed: the object's key and version, how it was uploaded (``put`` or
    ``multipart``), S3's checksum of a single-part upload, the Object Lock arguments as sent
    (``ObjectLockMode``/``ObjectLockRetainUntilDate``/``ObjectLockLegalHoldStatus``) and the retention
    rule's evidence (:class:`~airflow_provider_ringcx.s3.options.Retention`)."""

    bucket: str
    key: str
    version_id: str | None
    upload: str
    checksum_sha256: str | None
    lock: Mapping[str, Any]
    retention: Retention | None = None


#: The ``audio`` members, read from the stream's ``WavInfo``.
_AUDIO_FIELDS = (
    "channels",
    "sample_rate",
    "bits_per_sample",
    "audio_format",
    "data_size",
    "duration_seconds",
)


def build_sidecar(
    ref: Mapping[str, Any],
    *,
    sub_account_id: str,
    row: Mapping[str, Any] | None,
    download: DownloadEvidence,
    stored: StoredRecording,
    manifest_key: str | None,
    retrieved_at: datetime | None = None,
    transcript_key: str | None = None,
    summary_keys: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Assemble the sidecar document of one landed recording (see :data:`SIDECAR_SCHEMA`).

    :param ref: the segment (``dialog_id``, ``segment_id``, ``start``, ``end``, ``duration_ms``).
    :param row: the vendor metadata row from the manifest; the compact ref is used when it is unknown.
    :param download: what the download proved about the bytes.
    :param stored: where and how they landed.
    :param manifest_key: the window manifest the segment was listed in.
    :param transcript_key: where the segment's transcript document is (or will be) archived, if it is.
    :param summary_keys: where its AI summaries are (or will be) archived, by kind, if they are.
    """
    wav, lock = download.wav, stored.lock
    until = lock.get("ObjectLockRetainUntilDate")
    pauses = compute_pause_evidence(row.get("segmentEvents"), has_recording=True) if row is not None else None
    document = {
        "format": SIDECAR_FORMAT,
        "dialog_id": str(ref["dialog_id"]),
        "segment_id": str(ref["segment_id"]),
        "sub_account_id": str(sub_account_id),
        "sha256": download.sha256,
        "size": int(download.size),
        "content_type": "audio/wav",
        "audio": {name: getattr(wav, name, None) for name in _AUDIO_FIELDS},
        "source": {
            "path": download.source_path,
            "content_length": download.content_length,
            "content_type": download.content_type,
        },
        "s3": {
            "bucket": stored.bucket,
            "key": stored.key,
            "version_id": stored.version_id,
            "upload": stored.upload,
            "checksum_sha256": stored.checksum_sha256,
            "manifest_key": manifest_key,
            "object_lock_mode": lock.get("ObjectLockMode"),
            "object_lock_retain_until": format_timestamp(until) if isinstance(until, datetime) else None,
            "object_lock_legal_hold": lock.get("ObjectLockLegalHoldStatus") == "ON",
            # both dates: the record's (end + days) and the one asked for (later for old history)
            "object_lock_retention": stored.retention.as_dict() if stored.retention else None,
        },
        "segment": {"start": ref.get("start"), "end": ref.get("end"), "duration_ms": ref.get("duration_ms")},
        "retrieved_at": format_timestamp(retrieved_at or datetime.now(timezone.utc)),
        "provider": {"name": "airflow-provider-ringcx", "version": __version__},
        "metadata": dict(row) if row is not None else {"_from_ref": dict(ref)},
        "pauses": pauses or {**compute_pause_evidence(None), "problems": [_NO_ROW]},
    }
    if transcript_key:
        document["transcript"] = {"key": transcript_key}
    if summary_keys:
        document["summaries"] = {kind: {"key": key} for kind, key in summary_keys.items()}
    return document


_NO_ROW = "no vendor row (a batch of refs without a manifest): segmentEvents unknown, no recorded interval"


_VALIDATOR = jsonschema.Draft202012Validator(SIDECAR_SCHEMA)
_REASON_CHARS = 200


class SidecarInvalid(ValueError):
    """A stored sidecar is not a valid ``ringcx-recording-sidecar/1`` document (the message says why)."""


def parse_sidecar(body: bytes) -> dict[str, Any]:
    """Parse and validate a stored sidecar.

    :param body: the sidecar object's bytes.
    :returns: the document, with ``size`` as an ``int``.
    :raises SidecarInvalid: not UTF-8 strict JSON (``NaN`` refused), not an object, or not valid against
        :data:`SIDECAR_SCHEMA` (the message names the first offending member; vendor values are capped).
    """
    try:  # strict: NaN/Infinity are not JSON; the vendor row sits one level below the top
        document = jsonutil.strict_loads(body, limit=jsonutil.MAX_DEPTH + 2)
    except ValueError as err:
        raise SidecarInvalid(f"is not JSON ({type(err).__name__} at {getattr(err, 'pos', '?')})") from None
    if not isinstance(document, dict):
        raise SidecarInvalid(f"is a JSON {type(document).__name__}, not an object")
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(document))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(document)"
        raise SidecarInvalid(printable(f"member {where}: {error.message}")[:_REASON_CHARS])
    document["size"] = int(document["size"])  # the schema allows 12.0 as an integer
    return document


#: Sidecar members that must agree for a stored sidecar to stand for a new one.
_SIDECAR_IDENTITY = ("sub_account_id", "dialog_id", "segment_id", "sha256", "size")


def write_sidecar(
    client: S3Client, bucket: str, key: str, document: Mapping[str, Any], lock_args: Mapping[str, Any]
) -> None:
    """Write a sidecar create-only: a concurrent run's sidecar for the same bytes is kept as is (no second
    version under versioning/Object Lock); a sidecar that disagrees, or is invalid, is replaced.

    :param lock_args: the run's write options for the sidecar (SSE, class, tags, Object Lock).
    """
    body = jsonutil.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, default=str).encode()
    try:
        _put(client, bucket, key, body, lock_args, IfNoneMatch="*")
    except ClientError as err:
        if not is_precondition_failed(err):
            raise
        existing = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:  # kept only if valid and about the same segment and bytes (else it is sidecar_invalid)
            stored = parse_sidecar(existing)
            same = all(stored.get(k) == document.get(k) for k in _SIDECAR_IDENTITY)
        except SidecarInvalid:
            same = False
        if not same:
            _put(client, bucket, key, body, lock_args)


def _put(
    client: S3Client, bucket: str, key: str, body: bytes, lock_args: Mapping[str, Any], **extra: Any
) -> None:
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",  # x-amz-sdk-checksum-algorithm: Object Lock needs it
        ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
        **lock_args,
        **extra,
    )
