"""Process-level faults: the download task's process SIGKILLed mid-batch then retried, two runs of the same
window at once (two processes), and a backfill over windows that scheduled runs already archived."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fixtures.simulator import SimulatorHandle
from tests.reliability.conftest import W_END, W_START, Checker
from tests.reliability.harness import Pipeline
from tests.reliability.invariants import check_archive, downloaded_bytes, expected_segments

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def _worker(pipe: Pipeline, s3_endpoint: str, start: datetime = W_START, end: datetime = W_END) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.worker", pipe.bucket, pipe.prefix,
         start.isoformat(), end.isoformat(), s3_endpoint],
        cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def _wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _done(proc: Any) -> dict:
    out, _ = proc.communicate(timeout=120)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert lines, out[-2000:]
    assert lines[-1]["event"] == "done", out[-2000:]
    return lines[-1]


def killed_bytes(s3_client: Any, pipe: Pipeline) -> int:
    """Bytes of the recordings landed with their sidecar (what a retry must not download again; a WAV whose
    sidecar the kill prevented is downloaded again to verify it, and not rewritten)."""
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=pipe.bucket, Prefix=pipe.prefix)
    objects = {o["Key"]: o["Size"] for p in pages for o in p.get("Contents", [])}
    return sum(
        size for key, size in objects.items() if key.endswith(".wav") and key[:-4] + ".json" in objects
    )


def test_sigkill_mid_batch_then_retry(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, s3_endpoint: str, invariants: Checker
) -> None:
    """The task process dies (SIGKILL: no cleanup, no finally) while recordings are in flight - one of them in
    the middle of a multipart upload - then the task is retried: nothing partial is visible at any final
    key, nothing is duplicated, and the retry archives the rest without downloading twice what landed."""
    rsim.control.add_segments(
        [{"dialogId": "big-dialog", "segmentId": "big-segment", "segmentEndTimeMs": "2026-03-02T14:10:00Z",
          "segmentDurationMs": 360_000}]
    )  # fmt: skip
    rsim.control.set_faults(
        [
            {"route": "download", "kind": "stall", "match": "big-segment", "after_bytes": 6 * MiB,
             "stall_seconds": 60, "times": 1},
            {"route": "download", "kind": "stall", "skip": 6, "after_bytes": 2000, "stall_seconds": 60,
             "times": 1},
        ]
    )  # fmt: skip
    os.environ["RINGCX_TEST_MULTIPART"] = "1"
    proc = _worker(pipe, s3_endpoint)
    try:
        _wait_for(lambda: rsim.control.stats()["faults"].get("stall", 0) == 2)
        _wait_for(lambda: bool(s3_client.list_multipart_uploads(Bucket=pipe.bucket).get("Uploads")), 30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        os.environ.pop("RINGCX_TEST_MULTIPART", None)
        if proc.poll() is None:
            proc.kill()
    truth = invariants.truth()
    # Right after the kill: whatever is at a final key is complete and true (checked against ground truth).
    killed = check_archive(
        s3_client,
        pipe.bucket,
        pipe.prefix,
        truth,
        complete_windows=False,
        allow_open_uploads=True,
        allow_missing_sidecars=True,
    )
    killed.assert_ok()
    assert 0 < killed.archived < killed.expected
    landed_before = killed_bytes(s3_client, pipe)
    rsim.control.clear_faults()
    before = downloaded_bytes(rsim.control.stats())
    pipe.download_kwargs.update(single_part_threshold=1 * MiB, multipart_chunksize=5 * MiB)
    retry = pipe.run_window(s3_client, W_START, W_END)
    assert retry.report is not None, retry.errors
    assert retry.report["complete"] is True, retry.errors
    assert retry.counts["already_archived"] >= killed.archived
    fetched = downloaded_bytes(rsim.control.stats()) - before
    # nothing that had landed before the kill was fetched again:
    assert fetched == sum(s["size"] for s in expected_segments(truth)) - landed_before
    check = check_archive(s3_client, pipe.bucket, pipe.prefix, truth, report=retry.report)
    check.assert_ok()  # ...and every invariant holds (the retry aborted the killed multipart upload)
    assert check.archived == check.expected
    assert check.open_uploads == 0
    before = downloaded_bytes(rsim.control.stats())
    again = pipe.run_window(s3_client, W_START, W_END)
    assert downloaded_bytes(rsim.control.stats()) == before
    assert again.counts["archived"] == 0


def test_two_runs_of_the_same_window_at_once(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, s3_endpoint: str, invariants: Checker
) -> None:
    """Two processes archive the same window at the same time: one manifest, one version of every object."""
    first, second = _worker(pipe, s3_endpoint), _worker(pipe, s3_endpoint)
    results = [_done(first), _done(second)]
    assert all(r["complete"] for r in results), results
    counts = [r["counts"] for r in results]
    truth = invariants.truth()
    recorded = len(expected_segments(truth))
    assert sum(c.get("archived", 0) for c in counts) >= recorded
    final = pipe.run_window(s3_client, W_START, W_END)
    invariants(final, truth=truth)


def test_backfill_over_archived_windows_downloads_only_new_windows(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    """Scheduled runs archived 14:00-14:30; a backfill then covers 14:00-14:45: the two archived windows
    reuse their manifests and download 0 bytes; only 14:30-14:45 is downloaded."""
    step = timedelta(minutes=15)
    windows = [(W_START + i * step, W_START + (i + 1) * step) for i in range(3)]
    for start, end in windows[:2]:
        assert pipe.run_window(s3_client, start, end).report["complete"] is True
    metadata_calls = sum(rsim.control.stats()["requests"]["metadata"].values())
    before = downloaded_bytes(rsim.control.stats())
    results = [pipe.run_window(s3_client, start, end) for start, end in windows]
    fetched = downloaded_bytes(rsim.control.stats()) - before
    new = expected_segments(rsim.control.ground_truth(*windows[2]))
    assert fetched == sum(s["size"] for s in new)
    assert sum(rsim.control.stats()["requests"]["metadata"].values()) == metadata_calls + 1
    for result in results[:2]:
        assert result.counts["archived"] == 0
        assert result.counts["already_archived"] > 0
    truth = rsim.control.ground_truth(windows[0][0], windows[-1][1])
    for result in results:
        assert result.report is not None
        assert result.report["complete"] is True
    check = check_archive(s3_client, pipe.bucket, pipe.prefix, truth)
    check.assert_ok()
    assert check.archived == check.expected == len(expected_segments(truth))
