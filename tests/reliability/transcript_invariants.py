"""The transcript invariant of :mod:`tests.reliability.invariants` (issue 17), from S3 and the simulator's
ground truth only, never the code under test: see that module's docstring."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def check_transcripts(
    s3: Any, bucket: str, keys: set[str], wavs: set[str], everything: Mapping[str, Any], problems: list[str]
) -> int:
    """The transcript invariant (module docstring); returns how many transcripts hold it."""
    good = 0
    for key in sorted(keys):
        wav = key[: -len(".transcript.json")] + ".wav"
        segment = everything.get(wav)
        if wav not in wavs or segment is None:
            problems.append(f"{key}: orphan transcript (no WAV of a ground-truth segment next to it)")
            continue
        if segment.get("transcript") not in ("ok", "late"):
            problems.append(f"{key}: archived, but the simulator serves {segment.get('transcript')!r} for it")
            continue
        body = bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        claimed = (s3.head_object(Bucket=bucket, Key=key).get("Metadata") or {}).get("sha256")
        if hashlib.sha256(body).hexdigest() != claimed:
            problems.append(f"{key}: its bytes do not hash to its sha256 metadata {claimed!r}")
            continue
        try:
            document = json.loads(body)
        except ValueError:
            problems.append(f"{key}: transcript is not JSON")
            continue
        ids = (segment["dialogId"], segment["segmentId"])
        if not isinstance(document, dict) or (document.get("dialogId"), document.get("segmentId")) != ids:
            problems.append(f"{key}: transcript is not an object naming {ids}")
        elif not isinstance(document.get("transcript"), list):
            problems.append(f"{key}: transcript has no transcript array")
        else:
            good += 1
    return good
