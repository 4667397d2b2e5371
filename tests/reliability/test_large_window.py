"""A metadata window of 100,000 rows streams through the metadata task in bounded memory, reaches XCom as
1,000 small batch descriptors, and any batch is then archived by reading only its own byte range.

The metadata task runs in a child process (``large_window_task.py``) so that its memory is measured alone:
the simulator and moto run in this process. The simulator's bulk segments (``--bulk-segments``) make the
rows from their index and stream the response, so serving them is cheap.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.models import parse_timestamp
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from airflow_provider_ringcx.transfers.manifest_reader import load_batch, read_summary
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.operators.conftest import context, fast_hook
from tests.reliability.conftest import W_END, W_START
from tests.reliability.invariants import check_archive

ROWS = 100_000
SMALL = 20_000
ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def _metadata_task(
    make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch, bucket: str, rows: int
) -> tuple[SimulatorHandle, dict[str, Any]]:
    """Serve a window of ``rows`` bulk segments and run the metadata task on it in a child process."""
    sim = make_simulator(
        calls_per_hour=0, bulk_segments=rows, bulk_start=W_START.isoformat(), bulk_span=900, max_interval=900
    )
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(sim))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.large_window_task", bucket, f"rows{rows}",
         W_START.isoformat(), W_END.isoformat()],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    task = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"\n{rows}-row window: {task['seconds']} s, peak traced memory "
        f"{task['peak_traced_bytes'] / MiB:.1f} MiB, XCom {task['xcom_bytes'] / 1024:.0f} KB in "
        f"{len(task['batches'])} batches"
    )
    return sim, task


def test_a_100k_row_window_streams_and_batches_without_blowing_memory_or_xcom(
    make_simulator: Callable[..., SimulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    aws_conn: str,
    versioned_bucket: str,
    s3_client: Any,
) -> None:
    _, small = _metadata_task(make_simulator, monkeypatch, versioned_bucket, SMALL)
    sim, task = _metadata_task(make_simulator, monkeypatch, versioned_bucket, ROWS)

    # every row is in the manifest, in 1,000 batches of 100 (under Airflow's 1,024 map-length cap)
    assert task["counts"]["rows"] == task["counts"]["with_recording"] == ROWS
    batches = task["batches"]
    assert len(batches) == 1000
    assert [batch["count"] for batch in batches] == [100] * 1000
    summary = read_summary(s3_client, versioned_bucket, task["manifest_key"])
    assert summary["with_recording"] == ROWS
    manifest_size = s3_client.head_object(Bucket=versioned_bucket, Key=task["manifest_key"])["ContentLength"]
    assert manifest_size > 50 * MiB  # the rows really went through
    # XCom: descriptors, not 100,000 refs (~25 MB)
    assert task["xcom_bytes"] < 600 * 1000
    # Memory: a fixed part (the multipart part buffer and boto3's copies of it, parsing) plus ~90 bytes a
    # row (the de-duplication digests); never the rows or the refs (~650 bytes a row as dicts)
    per_row = (task["peak_traced_bytes"] - small["peak_traced_bytes"]) / (ROWS - SMALL)
    print(f"memory per extra row: {per_row:.0f} bytes; manifest {manifest_size / MiB:.0f} MiB")
    assert per_row < 150
    assert task["peak_traced_bytes"] < 64 * MiB

    # a download task of any batch reads only its byte range and archives its 100 segments
    summaries, truth = [], []
    for batch in (batches[0], batches[537], batches[-1]):
        refs, rows = load_batch(s3_client, versioned_bucket, batch)
        assert len(refs) == len(rows) == 100
        op = fast_hook(
            RingCXRecordingsToS3Operator(
                task_id="download", batch=batch, bucket=versioned_bucket, retry_backoff=0
            )
        )
        summaries.append(op.execute(context()))
        assert summaries[-1]["counts"]["archived"] == 100, summaries[-1]
        first, last = (parse_timestamp(end) for end in batch["ends"])
        assert first is not None
        assert last is not None
        wanted = {(ref["dialog_id"], ref["segment_id"]) for ref in refs}
        around = sim.control.ground_truth(first - timedelta(seconds=1), last + timedelta(seconds=1))
        truth += [t for t in around if (t["dialogId"], t["segmentId"]) in wanted]
    assert len(truth) == 300
    check = check_archive(s3_client, versioned_bucket, "ringcx", truth, summaries=summaries)
    check.assert_ok()
    assert check.archived == 300
