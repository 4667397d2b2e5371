"""Hostile and bad vendor input through the real operators (simulator over HTTP, moto S3 over HTTP), then the
independent invariant checker.

Each scenario feeds one 15-minute window something RingCX should never send - a broken metadata payload, a
body that is not a WAV, rows with missing or null fields, ids built to escape the key layout - and checks that
the answer is a clear error naming the item and the fix, and that nothing else is lost: every other segment is
archived byte-identical, the bad one is listed in the window report with its reason, nothing partial or
duplicated is left in S3, the report's counts add up and a re-run downloads 0 bytes.

The hostile payloads come from the simulator: fault rules (``html200``, ``malformed_json``, ``json_object``,
``non_wav``, targeted with ``match``) and injected segments (``POST /_sim/segments``: any ids, ``fields`` to
override row fields, ``omit`` to leave fields out).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError, RingCXError
from airflow_provider_ringcx.hooks.download import NOT_WAV_FIX
from tests.fixtures.simulator import SimulatorHandle
from tests.reliability.conftest import W_END, W_START, Checker
from tests.reliability.harness import SUB, Pipeline
from tests.reliability.invariants import encode_id, wav_key

WINDOW_LABEL = "interaction-metadata window 2026-03-02T14:00:00Z..2026-03-02T14:15:00Z"
PARTITION = f"sub_account={SUB}/year=2026/month=03/day=02/hour=14/"
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-%~/=")


def _ends(count: int) -> list[str]:
    """Distinct segment end times inside the window's 14:00 hour (injected segments last 5 s)."""
    base = W_START + timedelta(minutes=4)
    return [(base + timedelta(seconds=3 * i)).isoformat() for i in range(count)]


def _objects(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _sidecar(s3: Any, bucket: str, wav: str) -> dict:
    body = s3.get_object(Bucket=bucket, Key=wav[: -len(".wav")] + ".json")["Body"].read()
    return dict(json.loads(body))


# --- the metadata endpoint answers 200 with something that is not a JSON array ----------------------------

METADATA_PAYLOADS = {
    # kind: (what the error says the problem is, what it says to do)
    "html200": (
        "answered HTTP 200 with an HTML page instead of JSON",
        "check that api_url points at the RingCX",
    ),
    "malformed_json": ("malformed JSON", "retry it later; if it persists check api_url"),
    "json_object": ("expected a JSON array of segments but got a JSON object", "check api_url"),
}


@pytest.mark.parametrize("kind", list(METADATA_PAYLOADS))
def test_bad_metadata_payload_fails_the_window_clearly_and_writes_nothing(
    kind: str, rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    """HTML with status 200, a JSON array cut in the middle (rows already streamed into the manifest upload),
    and a JSON object instead of the array: every try of the fetch task fails with a typed error naming the
    window and the fix; no manifest, recording, report or open upload is left; once RingCX answers properly
    a re-run archives the whole window."""
    problem, fix = METADATA_PAYLOADS[kind]
    rsim.control.patch_config(calls_per_hour=30)  # a smaller window: the recovery run is what costs time
    pipe.retries = 1
    rsim.control.set_faults([{"route": "metadata", "kind": kind}])
    result = pipe.run_window(s3_client, W_START, W_END)

    payload_errors = [err for err in result.errors if isinstance(err, RingCXBadPayloadError)]
    assert len(payload_errors) == 2, result.errors  # both tries of the task, each a fresh request
    message = str(payload_errors[0])
    assert message.startswith(WINDOW_LABEL), message
    assert problem in message
    assert fix in message
    assert rsim.control.stats()["faults"][kind] == 2
    assert _objects(s3_client, pipe.bucket) == []  # the manifest upload was aborted: nothing half-written
    assert not s3_client.list_multipart_uploads(Bucket=pipe.bucket).get("Uploads")
    assert result.report is None
    report_error = result.errors[-1]
    assert isinstance(report_error, RingCXError)
    assert "has no manifest" in str(report_error)
    assert "see fetch_metadata_window's log, fix the cause and clear the run" in str(report_error)

    rsim.control.clear_faults()
    again = pipe.run_window(s3_client, W_START, W_END)
    assert again.report is not None, again.errors
    assert again.report["complete"] is True, again.errors
    invariants(again, rerun=kind == "malformed_json")  # one "re-run downloads 0 bytes" check is enough


# --- the download endpoint answers 200 with a body that is not a WAV -------------------------------------


def test_non_wav_body_is_refused_and_reported_and_the_rest_is_archived(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    """One recording is an HTML page served as ``audio/wav`` on every try: it is refused before a byte
    reaches S3 and listed in the report with a reason naming it and the fix. A non-WAV body once and an HTML
    page (``text/html``) once, on two other segments, are retried in the task and archived."""
    rsim.control.patch_config(calls_per_hour=30)
    pipe.retries = 1  # the victim fails 2 tries x 3 in-task attempts
    truth = [s for s in invariants.truth() if s["hasRecording"]]
    victim, flaky, html = truth[1], truth[2], truth[3]
    rsim.control.set_faults(
        [
            {"route": "download", "kind": "non_wav", "match": victim["segmentId"]},
            {"route": "download", "kind": "non_wav", "match": flaky["segmentId"], "times": 1},
            {"route": "download", "kind": "html200", "match": html["segmentId"], "times": 1},
        ]
    )
    result = pipe.run_window(s3_client, W_START, W_END)
    faults = rsim.control.stats()["faults"]
    assert faults["html200"] == 1
    assert faults["non_wav"] >= 2

    assert result.report is not None, result.errors
    assert result.report["complete"] is False
    (item,) = result.report["not_archived"]
    assert (item["dialog_id"], item["segment_id"]) == (victim["dialogId"], victim["segmentId"])
    assert item["status"] == "failed"
    reason = item["reason"]  # as the report keeps it: cut at 300 characters
    assert reason.startswith(
        f"RingCXBadPayloadError: recording dialog {victim['dialogId']!r} segment {victim['segmentId']!r}: "
        + NOT_WAV_FIX
    ), reason
    assert (
        s3_client.list_objects_v2(Bucket=pipe.bucket, Prefix=wav_key(pipe.prefix, victim)[:-4])["KeyCount"]
        == 0
    )
    invariants.one_reported_then_recovered(result)


# --- metadata rows with missing and null fields ------------------------------------------------------------

#: Rows that lack or null a field the recording does not depend on: each must still be archived.
ARCHIVABLE_ROWS: dict[str, dict[str, Any]] = {
    "hasRecording-null": {"fields": {"hasRecording": None}},
    "hasRecording-missing": {"omit": ["hasRecording"]},
    "start-null": {"fields": {"segmentStartTimeMs": None}},
    "end-missing": {"omit": ["segmentEndTimeMs"]},
    "duration-null": {"fields": {"segmentDurationMs": None}},
    "events-and-disposition-null": {"fields": {"segmentEvents": None, "systemDisposition": None}},
    "subaccount-and-interaction-missing": {"omit": ["subAccountId", "interactionId"]},
    "event-time-garbage": {"fields": {"segmentEvents": [{"eventType": "REC_START", "eventTimeMs": "soon"}]}},
    "notes-lone-surrogate": {"fields": {"agentNotes": "call back \ud800"}},
}
#: Rows that cannot name or place their recording: each must be listed as unparseable, with the field.
UNPARSEABLE_ROWS: dict[str, tuple[dict[str, Any], str]] = {
    "dialogId-null": ({"fields": {"dialogId": None}}, "dialogId is missing or null"),
    "dialogId-missing": ({"omit": ["dialogId"]}, "dialogId is missing or null"),
    "dialogId-object": ({"fields": {"dialogId": {"id": 7}}}, "dialogId is a JSON object"),
    "segmentId-null": ({"fields": {"segmentId": None}}, "segmentId is missing or null"),
    "segmentId-missing": ({"omit": ["segmentId"]}, "segmentId is missing or null"),
    "segmentId-empty": ({"fields": {"segmentId": "  "}}, "segmentId is empty"),
    "segmentId-lone-surrogate": (
        {"fields": {"segmentId": "seg-\udc00"}},
        "segmentId 'seg-\\udc00' is not valid",
    ),
    "times-missing": (
        {"omit": ["segmentStartTimeMs", "segmentEndTimeMs"]},
        "no segmentStartTimeMs nor segmentEndTimeMs",
    ),
    "start-garbage": (
        {"fields": {"segmentStartTimeMs": "yesterday"}},
        "segmentStartTimeMs='yesterday' is not a",
    ),
}


def test_rows_with_missing_or_null_fields_lose_nothing(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    """Bad rows in the middle of a normal window: the rest of the window is archived; a row whose recording
    can still be named and placed is archived too (a null or missing ``hasRecording`` is not taken as "no
    recording", which would drop it silently); a row that cannot is listed in the report as unparseable, with
    a reason naming the field and the row's surviving id."""
    rsim.control.patch_config(calls_per_hour=30)
    cases = {**{name: (extra, None) for name, extra in ARCHIVABLE_ROWS.items()}, **UNPARSEABLE_ROWS}
    specs = [
        {"dialogId": f"dlg-{name}", "segmentId": f"seg-{name}", "segmentEndTimeMs": end, **extra}
        for (name, (extra, _)), end in zip(cases.items(), _ends(len(cases)), strict=True)
    ]
    rsim.control.add_segments(specs)
    result = pipe.run_window(s3_client, W_START, W_END)
    assert result.report is not None, result.errors
    report = result.report

    # every unparseable row is in the report, with a reason naming the field and the row
    rows = report["unparseable_rows"]
    assert report["counts"]["unparseable"] == len(rows) == len(UNPARSEABLE_ROWS)
    assert report["complete"] is False  # unparseable rows block completeness unless allowed
    for name, (_, field_problem) in UNPARSEABLE_ROWS.items():
        survivor = f"seg-{name}" if name.startswith("dialogId") else f"dlg-{name}"
        matching = [row for row in rows if survivor in row["reason"]]
        assert len(matching) == 1, (name, rows)
        (row,) = matching
        assert row["status"] == "unparseable"
        assert row["reason"].startswith(f"metadata row cannot be parsed: {field_problem}"), row["reason"]
        assert "report the row to RingCentral support" in row["reason"]

    # everything else - the generated traffic and every archivable bad row - is archived and verified
    truth = invariants.truth()
    unparseable = {f"seg-{name}" for name in UNPARSEABLE_ROWS}
    check = invariants(result, truth=[s for s in truth if s["segmentId"] not in unparseable])
    assert check.lost == 0
    assert report["not_archived"] == []
    assert check.archived == check.expected == report["counts"]["archived"]
    assert check.archived > len(ARCHIVABLE_ROWS) + 3
    notes = next(s for s in truth if s["segmentId"] == "seg-notes-lone-surrogate")
    sidecar = _sidecar(s3_client, pipe.bucket, wav_key(pipe.prefix, notes))
    assert sidecar["metadata"]["agentNotes"] == "call back \ufffd"  # stored as valid UTF-8 JSON


# --- ids built to escape the key layout --------------------------------------------------------------------

HOSTILE_IDS: dict[str, str] = {
    "slash": "a/b",
    "encoded-slash": "a%2Fb",  # must not land on the key of "a/b"
    "bare-encoded-slash": "%2F",
    "dotdot": "..",
    "dot": ".",
    "traversal": "../../../etc/passwd",
    "control": "ctl\x00\x01\x1b\x7f\n\r\t",
    "percent": "%",
    "tilde-hash": "a~0123456789abcdef0123456789abcdef",  # looks like a shortened id
    "spaces": " lead and trail ",
    "query": "?x=1&y#frag",
    "backslash": "..\\..\\win",
    "unicode": "\u5bfe\u8a71/\u30bb\u30b0 \u00e9",
    "combining": "e\u0301",  # same text as "é", decomposed
    "bidi": "\u202eevil\u200b",
    "emoji-long": "\U0001f4de" * 300,  # 1,200 UTF-8 bytes, 3,600 once encoded
    "ascii-long": "x" * 5000,
}


def test_hostile_ids_get_safe_keys_under_the_prefix_and_keep_their_identity(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    """Each hostile id, as a dialog id and as a segment id, lands on its own key: percent-encoded, one key
    segment, under ``{prefix}/sub_account=.../hour=HH/``, at most 1024 bytes; the sidecar records the original
    ids (and the vendor row); no id reaches another's key; re-running downloads nothing."""
    rsim.control.patch_config(calls_per_hour=12)  # the hostile ids are the point; a little normal traffic
    specs = []
    ends = iter(_ends(2 * len(HOSTILE_IDS)))
    for name, value in HOSTILE_IDS.items():
        specs.append({"dialogId": value, "segmentId": f"seg-{name}", "segmentEndTimeMs": next(ends)})
        specs.append({"dialogId": f"dlg-{name}", "segmentId": value, "segmentEndTimeMs": next(ends)})
    injected = rsim.control.add_segments(specs)
    result = pipe.run_window(s3_client, W_START, W_END)
    assert result.report is not None, result.errors
    assert result.report["complete"] is True, result.report["not_archived"]
    check = invariants(
        result
    )  # every WAV at the documented key, with the ground-truth bytes; re-run: 0 bytes
    assert check.archived == check.expected

    keys = set(_objects(s3_client, pipe.bucket))
    seen: set[str] = set()
    for segment in injected:
        key = wav_key(pipe.prefix, segment)  # rendered by the checker, not by the product
        assert key in keys, key
        seen.add(key)
        head, _, leaf = key.partition(f"{pipe.prefix}/{PARTITION}")
        assert head == "", key  # under the prefix and the partition...
        dialog_part, _, segment_part = leaf.partition("/")
        assert "/" not in segment_part, key  # ...exactly one dialog level and one file below it
        assert dialog_part not in ("", ".", "..")
        assert segment_part[: -len(".wav")] not in ("", ".", "..")
        assert set(key) <= _KEY_CHARS, key  # no control character, space or raw unicode in a key
        assert len(key.encode()) <= 1024
        assert dialog_part == encode_id(segment["dialogId"])
        sidecar = _sidecar(s3_client, pipe.bucket, key)
        assert (sidecar["dialog_id"], sidecar["segment_id"]) == (segment["dialogId"], segment["segmentId"])
        assert (sidecar["metadata"]["dialogId"], sidecar["metadata"]["segmentId"]) == (
            segment["dialogId"],
            segment["segmentId"],
        )
        assert sidecar["s3"]["key"] == key
        assert len(sidecar["source"]["path"].split("/")) == 15  # each id one path segment at RingCX too
    assert len(seen) == len(injected)  # no two ids share a key ("a/b" vs "a%2Fb", "é" vs "e" + U+0301)
    assert all(_is_ascii_printable(key) for key in keys)


def _is_ascii_printable(text: str) -> bool:
    return all(0x20 < ord(ch) < 0x7F for ch in text)


def test_ids_shaped_like_a_document_key_and_hostile_summaries_lose_nothing(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    """Segments named ``x.summary.agent``, ``x.summary.auto`` and ``x.transcript`` beside a segment ``x``
    whose transcript and AI summaries are archived: no sidecar takes a document's key (the id's dot is
    encoded), and a summary RingCX sends as an HTML page or truncated JSON is refused, listed with its
    reason and never stored; the recordings are all archived and every invariant holds."""
    rsim.control.patch_config(
        calls_per_hour=6, summary_missing_share=0.0, summary_late_share=0.0, transcript_missing_share=0.0,
        transcript_late_share=0.0, summary_variants=["y=html", "z=malformed"],
    )  # fmt: skip
    pipe.download_kwargs.update(include_transcripts=True, include_summaries="both")
    ends = iter(_ends(6))
    names = {"x": True, "y": True, "z": True, "x.summary.agent": False, "x.summary.auto": False,
             "x.transcript": False}  # fmt: skip
    specs = [
        {"dialogId": "dlg-docs", "segmentId": name, "segmentEndTimeMs": next(ends), "hasTranscript": flag}
        for name, flag in names.items()
    ]
    injected = {segment["segmentId"]: segment for segment in rsim.control.add_segments(specs)}
    result = pipe.run_window(s3_client, W_START, W_END)
    assert result.report is not None, result.errors
    assert result.report["complete"] is True  # a refused summary is not a lost recording
    check = invariants(result)  # documents included; the re-run downloads 0 bytes
    assert check.summaries >= 2
    keys = set(_objects(s3_client, pipe.bucket))
    x_wav = wav_key(pipe.prefix, injected["x"])
    for kind in ("agent", "auto"):
        summary = json.loads(
            s3_client.get_object(Bucket=pipe.bucket, Key=x_wav[:-4] + f".summary.{kind}.json")["Body"].read()
        )
        assert (summary["segmentId"], summary["summaryType"]) == ("x", kind.upper())  # x's, not a sidecar
        assert wav_key(pipe.prefix, injected["y"])[:-4] + f".summary.{kind}.json" not in keys
    assert x_wav[:-4] + ".transcript.json" in keys
    for name in ("x.summary.agent", "x.summary.auto", "x.transcript"):
        key = wav_key(pipe.prefix, injected[name])
        assert key.endswith(encode_id(name) + ".wav")
        assert "%2E" in key
        assert _sidecar(s3_client, pipe.bucket, key)["segment_id"] == name
    refused = {
        (p["segment_id"], p["kind"]): p["reason"]
        for s in result.summaries
        for p in s.get("summary_not_archived", [])
    }
    assert set(refused) == {("y", "agent"), ("y", "auto"), ("z", "agent"), ("z", "auto")}
    assert all("HTML" in refused[("y", kind)] for kind in ("agent", "auto"))
    assert all("is not JSON" in refused[("z", kind)] for kind in ("agent", "auto"))
