"""The sidecar: the chain-of-custody record stored next to each recording (``{segmentId}.json``).

Format ``ringcx-recording-sidecar/1``; :data:`SIDECAR_SCHEMA` is its JSON Schema (draft 2020-12). The
``metadata`` member is the vendor row exactly as listed (``segmentEvents`` with ``REC_START``/``REC_STOP``
included); everything else is computed while the bytes streamed into S3.

:func:`parse_sidecar` is the one place where a stored sidecar is read back and validated: against the
whole :data:`SIDECAR_SCHEMA` (so ``"size": "12,345"``, ``"size": null``, a missing member or a ``sha256``
that is not 64 lowercase hex digits are all refused), by ``jsonschema``, which Airflow's task SDK already
requires. The lander's idempotency check and the window report both go through it (via
:func:`~airflow_provider_ringcx.transfers.verdict.verify_archived`), so they cannot disagree on what a valid
sidecar is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import jsonschema

from airflow_provider_ringcx import __version__, jsonutil
from airflow_provider_ringcx.models import format_timestamp, printable

SIDECAR_FORMAT = "ringcx-recording-sidecar/1"

_NULLABLE_INT = {"type": ["integer", "null"], "minimum": 0}
_NULLABLE_STR = {"type": ["string", "null"]}

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
    },
}


def build_sidecar(
    *,
    ref: Mapping[str, Any],
    sub_account_id: str,
    row: Mapping[str, Any] | None,
    sha256_hex: str,
    size: int,
    wav: Any,
    source_path: str,
    content_length: int | None,
    content_type: str | None,
    bucket: str,
    key: str,
    version_id: str | None,
    upload: str,
    checksum_sha256: str | None,
    manifest_key: str | None,
    lock: Mapping[str, Any],
    retrieved_at: datetime | None = None,
) -> dict[str, Any]:
    """Assemble a sidecar document (see :data:`SIDECAR_SCHEMA`).

    :param row: the vendor metadata row from the manifest; the compact ref is used when it is unknown.
    :param wav: the stream's ``WavInfo`` (channels, sample_rate, bits_per_sample, data_size...).
    :param lock: ``ObjectLockMode``/``ObjectLockRetainUntilDate``/``ObjectLockLegalHoldStatus`` as sent.
    """
    until = lock.get("ObjectLockRetainUntilDate")
    return {
        "format": SIDECAR_FORMAT,
        "dialog_id": str(ref["dialog_id"]),
        "segment_id": str(ref["segment_id"]),
        "sub_account_id": str(sub_account_id),
        "sha256": sha256_hex,
        "size": int(size),
        "content_type": "audio/wav",
        "audio": {
            "channels": getattr(wav, "channels", None),
            "sample_rate": getattr(wav, "sample_rate", None),
            "bits_per_sample": getattr(wav, "bits_per_sample", None),
            "audio_format": getattr(wav, "audio_format", None),
            "data_size": getattr(wav, "data_size", None),
            "duration_seconds": getattr(wav, "duration_seconds", None),
        },
        "source": {"path": source_path, "content_length": content_length, "content_type": content_type},
        "s3": {
            "bucket": bucket,
            "key": key,
            "version_id": version_id,
            "upload": upload,
            "checksum_sha256": checksum_sha256,
            "manifest_key": manifest_key,
            "object_lock_mode": lock.get("ObjectLockMode"),
            "object_lock_retain_until": format_timestamp(until) if isinstance(until, datetime) else None,
            "object_lock_legal_hold": lock.get("ObjectLockLegalHoldStatus") == "ON",
        },
        "segment": {"start": ref.get("start"), "end": ref.get("end"), "duration_ms": ref.get("duration_ms")},
        "retrieved_at": format_timestamp(retrieved_at or datetime.now(timezone.utc)),
        "provider": {"name": "airflow-provider-ringcx", "version": __version__},
        "metadata": dict(row) if row is not None else {"_from_ref": dict(ref)},
    }


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
