"""``make soak``: a simulated day (96 windows of 15 minutes) archived through the operators while the
simulator injects random faults at a fixed rate and tokens expire every 5 s of real time (time_scale 60).
Prints faults injected per kind, segments expected / archived / reported, duplicates, corrupt objects,
retries and 429s, then asserts 0 lost, 0 corrupt, 0 duplicates and a 0-byte re-run of the whole day."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.reliability.conftest import FAST_RETRIES, W_START
from tests.reliability.harness import Pipeline
from tests.reliability.invariants import check_archive, downloaded_bytes

FAULT_RATE = 0.03
FAULTS = [
    {"route": "any", "kind": "status", "status": 503, "probability": FAULT_RATE},
    {"route": "any", "kind": "rate_limit", "probability": FAULT_RATE},
    {"route": "download", "kind": "reset", "after_bytes": 4000, "probability": FAULT_RATE},
    {"route": "download", "kind": "truncate", "after_bytes": 1000, "probability": FAULT_RATE},
    {"route": "download", "kind": "expire_token", "probability": FAULT_RATE},
    {"route": "metadata", "kind": "expire_token", "probability": FAULT_RATE},
]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_soak_simulated_day_with_random_faults(
    make_simulator: Callable[..., SimulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    aws_conn: str,
    versioned_bucket: str,
    s3_client: Any,
    tmp_path: Any,
) -> None:
    monkeypatch.setenv("RINGCX_BUDGET_DIR", str(tmp_path / "budgets"))
    sim = make_simulator(calls_per_hour=40, seed=2026, duration_scale=0.01, time_scale=60, fault_seed=6)
    hours = int(os.environ.get("RINGCX_SOAK_HOURS", "6"))
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(sim, **FAST_RETRIES))
    sim.control.set_faults(FAULTS)
    pipe = Pipeline(bucket=versioned_bucket, retries=3, batch_size=20)
    day = [(W_START.replace(hour=0) + i * timedelta(minutes=15),) for i in range(hours * 4)]
    windows = [(start, start + timedelta(minutes=15)) for (start,) in day]
    started = time.monotonic()
    results = [pipe.run_window(s3_client, start, end) for start, end in windows]
    elapsed = time.monotonic() - started
    stats = sim.control.stats()
    sim.control.clear_faults()

    truth = sim.control.ground_truth(windows[0][0], windows[-1][1])
    summaries = [summary for result in results for summary in result.summaries]
    check = check_archive(s3_client, pipe.bucket, pipe.prefix, truth, summaries=summaries)
    bad_counts = [
        r.report["window"]["key"]
        for r in results
        if r.report is None
        or r.report["counts"]["expected"]
        != r.report["counts"]["archived"] + r.report["counts"]["not_archived"]
    ]
    tasks = sum(1 + len(r.batches) for r in results)
    before = downloaded_bytes(sim.control.stats())
    rerun = [pipe.run_window(s3_client, start, end) for start, end in windows]
    rerun_bytes = downloaded_bytes(sim.control.stats()) - before
    figures = {
        **check.figures(),
        "windows": len(windows),
        "incomplete_windows": sum(1 for r in results if not (r.report or {}).get("complete")),
        "task_tries": sum(r.task_tries for r in results),
        "task_retries": sum(r.task_tries for r in results) - tasks,
        "hook_retry_waits": len(pipe.clock.sleeps),
        "http_429": sum(stats["rate_limited"].values()),
        "tokens_issued": len(stats["tokens_issued"]),
        "rerun_bytes_downloaded": rerun_bytes,
        "minutes": round(elapsed / 60, 1),
    }
    print("\nSOAK: simulated day, fault rate", FAULT_RATE, "per rule")
    print("  faults injected per kind:", dict(sorted(stats["faults"].items())))
    for name, value in figures.items():
        print(f"  {name}: {value}")
    check.assert_ok()
    assert not bad_counts, bad_counts
    assert check.lost == 0
    assert check.corrupt == 0
    assert check.duplicates == 0
    assert rerun_bytes == 0
    assert all(r.counts.get("archived", 0) == 0 for r in rerun)
