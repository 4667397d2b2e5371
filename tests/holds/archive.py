"""A small archive in a real S3 server for the legal-hold tests: recordings, sidecars, transcripts and the
index days naming them, written as the archive writes them (keys from the documented layout)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from airflow_provider_ringcx.keys import index_key
from airflow_provider_ringcx.transfers.sidecar import SIDECAR_FORMAT

SUB = "42"
PREFIX = "rec"

#: (dialog, segment, ANI, DNIS, day, with transcript)
CALLS = (
    ("d-1", "s-1", "+1 (555) 010-0100", "18005550199", "2026-03-02", True),
    ("d-1", "s-2", "+1 (555) 010-0100", "18005550199", "2026-03-02", False),
    ("d-2", "s-3", "+44 20 7946 0000", "15550100100", "2026-03-03", False),  # DNIS is the held number
    ("d-3", "s-4", "+1 555 777 8888", "18005550199", "2026-03-03", True),  # another number
    ("d-4", "s-5", "15550100100", "18005550199", "2026-03-05", False),  # outside the range
)


def wav_key(dialog: str, segment: str, day: str) -> str:
    y, m, d = day.split("-")
    return f"{PREFIX}/sub_account={SUB}/year={y}/month={m}/day={d}/hour=14/{dialog}/{segment}.wav"


def sidecar(bucket: str, wav: str, version: str | None, call: tuple[Any, ...]) -> bytes:
    """A valid ``ringcx-recording-sidecar/1`` document for one of :data:`CALLS` (the vendor row inside)."""
    dialog, segment, ani, dnis, day, _transcript = call
    start, end = f"{day}T14:01:00Z", f"{day}T14:05:00Z"
    return json.dumps({
        "format": SIDECAR_FORMAT, "dialog_id": dialog, "segment_id": segment, "sub_account_id": SUB,
        "sha256": "0" * 64, "size": 8, "content_type": "audio/wav",
        "audio": {"channels": 1, "sample_rate": 8000, "bits_per_sample": 16, "data_size": None,
                  "duration_seconds": None},
        "source": {"path": "/recordings", "content_length": None},
        "s3": {"bucket": bucket, "key": wav, "version_id": version, "upload": "put"},
        "segment": {"start": start, "end": end, "duration_ms": 240000},
        "retrieved_at": "2026-03-10T00:00:00Z",
        "provider": {"name": "airflow-provider-ringcx", "version": "t"},
        "metadata": {"dialogId": dialog, "segmentId": segment, "channelEndpointAddress": ani,
                     "contactEndpointAddress": dnis, "segmentStartTime": start, "segmentEndTime": end},
    }).encode()  # fmt: skip


def write_index(s3: Any, bucket: str, day: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """One index day object, gzip JSON Lines (the ``ringcx-index/1`` layout)."""
    key = index_key(PREFIX, SUB, date.fromisoformat(day))
    body = gzip.compress("".join(json.dumps(dict(row)) + "\n" for row in rows).encode(), mtime=0)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return key


def seed(s3: Any, bucket: str) -> dict[str, dict[str, Any]]:
    """Write every call's objects and the index; return the rows by segment id."""
    rows: dict[str, dict[str, Any]] = {}
    for call in CALLS:
        dialog, segment, ani, dnis, day, transcript = call
        wav = wav_key(dialog, segment, day)
        version = s3.put_object(Bucket=bucket, Key=wav, Body=b"RIFF" + segment.encode()).get("VersionId")
        s3.put_object(Bucket=bucket, Key=wav[:-4] + ".json", Body=sidecar(bucket, wav, version, call))
        transcript_key = wav[:-4] + ".transcript.json" if transcript else None
        if transcript_key:
            s3.put_object(Bucket=bucket, Key=transcript_key, Body=b"{}")
        rows[segment] = {
            "sub_account_id": SUB, "dialog_id": dialog, "segment_id": segment,
            "channel_endpoint_address": ani, "contact_endpoint_address": dnis,
            "start_time": f"{day}T14:01:00Z", "end_time": f"{day}T14:05:00Z", "outcome": "archived",
            "s3_key": wav, "sidecar_key": wav[:-4] + ".json", "version_id": version,
            "transcript_key": transcript_key, "legal_hold": False,
        }  # fmt: skip
    for day in sorted({call[4] for call in CALLS}):
        write_index(s3, bucket, day, [rows[c[1]] for c in CALLS if c[4] == day])
    return rows


def hold_status(s3: Any, bucket: str, key: str) -> str:
    try:
        answer = s3.get_object_legal_hold(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as err:
        if err.response["Error"]["Code"] in ("NoSuchObjectLockConfiguration", "InvalidRequest"):
            return "OFF"
        raise
    return str(answer.get("LegalHold", {}).get("Status") or "OFF")


def check_hold_audits(s3: Any, bucket: str, prefix: str = PREFIX) -> list[str]:
    """Invariants of the legal-hold audit records, from S3 alone (plain boto3, not the code under test):
    each record is one version of its key, standard JSON of the documented type, its counts add up, and
    every object it reports changed or unchanged holds that status in S3 now unless a later record of the
    same object changed it. Returns the problems (empty when all hold)."""
    problems: list[str] = []
    records = []
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=f"{prefix}/_audit/")
    versions: dict[str, int] = {}
    for page in pages:
        for item in page.get("Versions", []):
            versions[item["Key"]] = versions.get(item["Key"], 0) + 1
    for key in sorted(versions):
        if versions[key] != 1:
            problems.append(f"{key}: {versions[key]} versions (written once)")
        record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if record.get("record_type") != "ringcx-legal-hold-audit/1":
            problems.append(f"{key}: record_type {record.get('record_type')!r}")
        counted = {name: 0 for name in ("changed", "unchanged", "missing", "failed")}
        for obj in record["objects"]:
            counted[obj["result"]] += 1
        if {**counted, "objects": len(record["objects"])} != record["counts"]:
            problems.append(f"{key}: counts {record['counts']} do not add up to its objects")
        records.append(record)
    latest: dict[tuple[str, str | None], str] = {}
    for record in sorted(records, key=lambda r: r["completed_at"]):
        for obj in record["objects"]:
            if obj["result"] in ("changed", "unchanged"):
                latest[(obj["key"], obj["version_id"])] = obj["after"]
    for (key, version), status in latest.items():
        answer = s3.get_object_legal_hold(
            Bucket=bucket, Key=key, **({"VersionId": version} if version else {})
        )
        now = answer.get("LegalHold", {}).get("Status") or "OFF"
        if now != status:
            problems.append(f"{key} (version {version}): S3 says {now}, the last record says {status}")
    return problems
