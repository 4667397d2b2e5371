"""The transcript and AI summary invariants of :mod:`tests.reliability.invariants` (issue 17), from S3 and
the simulator's ground truth only, never the code under test: see that module's docstring."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

SUMMARY_TAILS = {f".summary.{kind}.json": kind for kind in ("agent", "auto")}


def is_summary_key(key: str) -> bool:
    """Whether ``key`` names an AI summary (``{segment}.summary.{agent|auto}.json``)."""
    return any(key.endswith(tail) for tail in SUMMARY_TAILS)


def _beside(key: str, tail: str, wavs: set[str], everything: Mapping[str, Any], problems: list[str]) -> Any:
    """The ground-truth segment of the WAV next to a document, or ``None`` (an orphan, recorded)."""
    wav = key[: -len(tail)] + ".wav"
    segment = everything.get(wav)
    if wav not in wavs or segment is None:
        problems.append(f"{key}: orphan document (no WAV of a ground-truth segment next to it)")
        return None
    return segment


def _stored_json(s3: Any, bucket: str, key: str, problems: list[str]) -> Any:
    """The parsed document, if its bytes hash to its ``sha256`` metadata and parse; else ``None``."""
    body = bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    claimed = (s3.head_object(Bucket=bucket, Key=key).get("Metadata") or {}).get("sha256")
    if hashlib.sha256(body).hexdigest() != claimed:
        problems.append(f"{key}: its bytes do not hash to its sha256 metadata {claimed!r}")
        return None
    try:
        return json.loads(body)
    except ValueError:
        problems.append(f"{key}: document is not JSON")
        return None


def check_transcripts(
    s3: Any, bucket: str, keys: set[str], wavs: set[str], everything: Mapping[str, Any], problems: list[str]
) -> int:
    """The transcript invariant (module docstring); returns how many transcripts hold it."""
    good = 0
    for key in sorted(keys):
        segment = _beside(key, ".transcript.json", wavs, everything, problems)
        if segment is None:
            continue
        if segment.get("transcript") not in ("ok", "late"):
            problems.append(f"{key}: archived, but the simulator serves {segment.get('transcript')!r} for it")
            continue
        document = _stored_json(s3, bucket, key, problems)
        if document is None:
            continue
        ids = (segment["dialogId"], segment["segmentId"])
        if not isinstance(document, dict) or (document.get("dialogId"), document.get("segmentId")) != ids:
            problems.append(f"{key}: transcript is not an object naming {ids}")
        elif not isinstance(document.get("transcript"), list):
            problems.append(f"{key}: transcript has no transcript array")
        else:
            good += 1
    return good


def check_summaries(
    s3: Any, bucket: str, keys: set[str], wavs: set[str], everything: Mapping[str, Any], problems: list[str]
) -> int:
    """The AI summary invariant (module docstring); returns how many summaries hold it."""
    good = 0
    for key in sorted(keys):
        tail, kind = next((t, k) for t, k in SUMMARY_TAILS.items() if key.endswith(t))
        segment = _beside(key, tail, wavs, everything, problems)
        if segment is None:
            continue
        served = (segment.get("summaries") or {}).get(kind)
        if served not in ("ok", "late"):
            problems.append(f"{key}: archived, but the simulator serves {served!r} for its {kind} summary")
            continue
        document = _stored_json(s3, bucket, key, problems)
        if document is None:
            continue
        if not isinstance(document, dict):
            problems.append(f"{key}: summary is not a JSON object")
        elif (document.get("segmentId"), document.get("summaryType")) != (segment["segmentId"], kind.upper()):
            problems.append(f"{key}: summary is not the simulator's {kind} summary of {segment['segmentId']}")
        else:
            good += 1
    return good
