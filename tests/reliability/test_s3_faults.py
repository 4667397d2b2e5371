"""The S3 endpoint failing while recordings are written, through a fault proxy (``s3proxy.py``) in front of
the S3 server: connections reset mid-multipart (the part never arrives), answers lost after S3 acted on a
request (completion, single PUT, sidecar), and a full outage in the middle of a batch. The checker reads S3
directly (not through the proxy)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.s3 import aws_connection_json
from tests.fixtures.simulator import SimulatorHandle
from tests.reliability.conftest import W_END, W_START, Checker
from tests.reliability.harness import Pipeline
from tests.reliability.s3proxy import FaultProxy

MiB = 1024 * 1024
#: Recordings over 1 MiB go multipart in 5 MiB parts; the injected 4-minute stereo call is ~15 MB: 3 parts.
MULTIPART = {"single_part_threshold": 1 * MiB, "multipart_chunksize": 5 * MiB, "max_workers": 2}


@pytest.fixture
def proxy(s3_endpoint: str, aws_conn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    host, port = s3_endpoint.rsplit("/", 1)[-1].split(":")
    fault_proxy = FaultProxy((host, int(port)))
    conn = json.loads(aws_connection_json(fault_proxy.url))
    # botocore's own retries (2 attempts, no long backoff) so that an outage costs seconds, not minutes
    conn["extra"]["config_kwargs"]["retries"] = {"max_attempts": 2, "mode": "standard"}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    yield fault_proxy
    fault_proxy.close()


@pytest.fixture
def big(rsim: SimulatorHandle) -> dict[str, Any]:
    """A long call injected into the window, so that it is uploaded in several parts."""
    return rsim.control.add_segments(
        [
            {
                "dialogId": "big-dialog",
                "segmentId": "big-segment",
                "segmentEndTimeMs": "2026-03-02T14:10:00Z",
                "segmentDurationMs": 360_000,
            }
        ]
    )[0]


def _run(pipe: Pipeline, s3_client: Any) -> Any:
    pipe.download_kwargs.update(MULTIPART)
    return pipe.run_window(s3_client, W_START, W_END)


def test_reset_mid_multipart_part_is_retried_and_leaves_no_open_upload(
    proxy: FaultProxy, big: dict, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    assert big["size"] > 10 * MiB  # three parts
    # More cuts than botocore's own retries (2): the first upload fails and is aborted; the next lands.
    rule = proxy.cut(r"[?&]partNumber=2[& ]", times=3, after_bytes=100_000)
    result = _run(pipe, s3_client)
    assert rule.fired == 3
    assert result.report is not None, result.errors
    assert result.report["complete"] is True, result.errors
    check = invariants(result)
    assert check.open_uploads == 0


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(r"^POST \S+big-segment\.wav\?uploadId=\S+ HTTP", id="complete-multipart-answer-lost"),
        pytest.param(r"^PUT \S+\.wav HTTP", id="single-put-answer-lost"),
        pytest.param(r"^PUT \S+\.json HTTP", id="sidecar-put-answer-lost"),
    ],
)
def test_answer_lost_after_s3_acted_creates_no_duplicate(
    pattern: str, proxy: FaultProxy, big: dict, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    """S3 completed the write but the answer never came back (reset): the retry must not write a second
    version of the recording (versioned bucket: one version per key)."""
    rule = proxy.cut(pattern, times=6, forward=True)
    result = _run(pipe, s3_client)
    assert rule.fired >= 1
    assert result.report is not None, result.errors
    invariants(result)


def _outage_then_recovery(proxy: FaultProxy, pipe: Pipeline, s3_client: Any) -> Any:
    """S3 goes down while the big upload is in flight (after its first part); every write fails until it is
    back; then a new run (task retries) lands everything."""
    outage = proxy.cut(r"[?&]partNumber=2[& ]", times=1, after_bytes=50_000)
    pipe.retries = 0
    pipe.download_kwargs.update(segment_attempts=1)
    original = proxy._match

    def match(data: bytes) -> Any:
        rule = original(data)
        if rule is outage:
            proxy.down()
        return rule

    proxy._match = match  # type: ignore[method-assign]
    first = _run(pipe, s3_client)
    assert outage.fired == 1
    assert first.report is not None
    assert first.report["complete"] is False
    assert any(summary["retryable_failures"] for summary in first.summaries) or first.errors
    proxy.up()
    # the abort of the interrupted upload failed too (S3 was down): the upload is left open
    assert s3_client.list_multipart_uploads(Bucket=pipe.bucket).get("Uploads")
    pipe.retries = 2
    pipe.download_kwargs.update(segment_attempts=3)
    second = pipe.run_window(s3_client, W_START, W_END)
    assert second.report is not None, second.errors
    assert second.report["complete"] is True, second.errors
    return second


def test_s3_outage_mid_batch_then_recovery(
    proxy: FaultProxy, big: dict, pipe: Pipeline, s3_client: Any, invariants: Checker, rsim: SimulatorHandle
) -> None:
    """The abort of the multipart upload the outage interrupted fails too (S3 is down), so the first run
    leaves it open; the run that lands the recording aborts it (it predates that run's attempt)."""
    second = _outage_then_recovery(proxy, pipe, s3_client)
    check = invariants(second)  # no open upload allowed, and a re-run downloads nothing
    assert check.archived == check.expected
    assert check.open_uploads == 0
