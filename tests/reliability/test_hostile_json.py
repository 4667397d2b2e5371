"""Hostile JSON through the real operators (simulator over HTTP, moto S3 over HTTP): nesting deep enough to
break a recursive decoder (issue #12 item 14), and ``NaN``/``Infinity`` in a vendor row (item 15).

The payloads come from the simulator's ``deep_nesting`` and ``non_finite`` fault kinds
(``simulator/ringcx_simulator/hostile_json.py``).
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError
from airflow_provider_ringcx.jsonutil import MAX_DEPTH, strict_loads
from tests.fixtures.simulator import SimulatorHandle
from tests.reliability.conftest import W_END, W_START, Checker
from tests.reliability.harness import Pipeline
from tests.reliability.test_hostile_input import WINDOW_LABEL, _objects


def _assert_everything_is_strict_json(s3: Any, bucket: str) -> int:
    """Every JSON object in the bucket (sidecars, report), every manifest line and every line of the archive
    index (gzip JSON Lines) parses with a strict parser (no NaN/Infinity); returns how many objects were
    checked."""
    checked = 0
    for key in _objects(s3, bucket):
        if key.endswith(".wav"):
            continue
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if key.endswith(".jsonl.gz"):
            body = gzip.decompress(body)
        lines = body.splitlines() if key.endswith((".jsonl", ".jsonl.gz")) else [body]
        for line in lines:
            strict_loads(line)  # raises on NaN, Infinity, -Infinity
        checked += 1
    return checked


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({}, id="whole-body"),
        pytest.param({"row_field": "agentNotes", "row": 1}, id="one-row-field"),
    ],
)
def test_deeply_nested_metadata_fails_the_window_as_a_bad_payload(
    fault: dict[str, Any], rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    """``[[[[...]]]]`` 100,000 levels deep (the whole body, or one row's field): every try of the fetch task
    fails with a bad-payload error naming the window, the depth limit and api_url - never a bare
    ``RecursionError`` - and leaves nothing in S3; once RingCX answers properly a re-run archives it all."""
    rsim.control.patch_config(calls_per_hour=30)
    pipe.retries = 1
    rsim.control.set_faults([{"route": "metadata", "kind": "deep_nesting", **fault}])
    result = pipe.run_window(s3_client, W_START, W_END)

    assert not [err for err in result.errors if isinstance(err, RecursionError)], result.errors
    payload_errors = [err for err in result.errors if isinstance(err, RingCXBadPayloadError)]
    assert len(payload_errors) == 2, result.errors  # retryable: both tries of the task
    message = str(payload_errors[0])
    assert message.startswith(WINDOW_LABEL), message
    assert f"the JSON nests deeper than {MAX_DEPTH} levels" in message
    assert "check api_url" in message
    assert _objects(s3_client, pipe.bucket) == []
    assert not s3_client.list_multipart_uploads(Bucket=pipe.bucket).get("Uploads")

    rsim.control.clear_faults()
    again = pipe.run_window(s3_client, W_START, W_END)
    assert again.report is not None, again.errors
    assert again.report["complete"] is True, again.errors
    invariants(again, rerun=False)


@pytest.mark.parametrize(
    ("row_field", "constant"),
    [
        ("dialogDurationMs", "NaN"),  # a field the product only copies: it used to reach S3 as NaN
        ("segmentDurationMs", "-Infinity"),  # a field the product reads
    ],
)
def test_non_finite_number_in_a_row_is_an_unparseable_row_and_nothing_written_is_non_standard(
    row_field: str,
    constant: str,
    rsim: SimulatorHandle,
    pipe: Pipeline,
    s3_client: Any,
    invariants: Checker,
) -> None:
    """``NaN``/``-Infinity`` in one row: that row is listed in the report as unparseable with the field
    named (it is not stored: the manifest and sidecars hold the vendor's row or nothing), the rest of the
    window is archived and verified, and every object written to S3 and every XCom is strict JSON."""
    rsim.control.patch_config(calls_per_hour=30)
    rsim.control.set_faults(
        [{"route": "metadata", "kind": "non_finite", "row_field": row_field, "constant": constant, "row": 0}]
    )
    result = pipe.run_window(s3_client, W_START, W_END)
    assert result.report is not None, result.errors
    report = result.report

    assert report["counts"]["unparseable"] == 1
    (row,) = report["unparseable_rows"]
    assert row["reason"].startswith(f"metadata row cannot be parsed: {row_field}={constant}: "), row
    assert "not JSON numbers" in row["reason"]
    assert report["complete"] is False  # an unparseable row blocks completeness unless allowed

    truth = invariants.truth()
    manifest = s3_client.get_object(Bucket=pipe.bucket, Key=report["manifest_key"])["Body"].read()
    (invalid,) = [line for line in map(strict_loads, manifest.splitlines()) if line["kind"] == "invalid"]
    victim = next(s for s in truth if f'"segmentId":"{s["segmentId"]}"' in invalid["raw"])
    assert _assert_everything_is_strict_json(s3_client, pipe.bucket) > 2
    assert any("/_index/" in key for key in _objects(s3_client, pipe.bucket))  # the index was checked too
    for pushed in [*result.xcoms, *result.batches, *result.summaries]:
        json.dumps(pushed, allow_nan=False)  # what goes through XCom is strict JSON too
    check = invariants(result, truth=[s for s in truth if s["segmentId"] != victim["segmentId"]], rerun=False)
    assert check.lost == 0
    assert check.archived == check.expected == report["counts"]["archived"] > 3
