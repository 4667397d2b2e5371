"""``make soak``: a simulated day (96 windows of 15 minutes) archived through the example DAG, one
``dag.test()`` run per window, while the simulator injects random faults at a fixed rate and tokens expire
every 5 s of real time (time_scale 60). Tasks are retried by Airflow (``RINGCX_RETRIES=3``, no delay).

Prints faults injected per kind, segments expected / archived / reported, duplicates, corrupt objects,
retries and 429s, then asserts 0 lost, 0 corrupt, 0 duplicates and a 0-byte re-run of the whole day.

Environment: ``RINGCX_SOAK_HOURS`` (default 24: the whole day), ``RINGCX_SOAK_MODE`` (``dag``, the default,
or ``harness``: the operators driven by ``tests/reliability/harness.py`` instead of the DAG, about 3x
faster), ``RINGCX_SOAK_VERBOSE=1`` to keep the INFO logs of every task and of the S3 server on the console.

Like the harness, the run records the hook's waits (Retry-After, backoff) on a virtual clock instead of
sleeping (:class:`~tests.reliability.harness.VirtualTime`, given to every ``RingCXHook``), and every window
starts with an empty secrets masker, as each Airflow task process would: ``dag.test()`` runs every task in
this process, where the masker would otherwise collect every token of the day and slow down quadratically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk._shared.secrets_masker import reset_secrets_masker

from airflow_provider_ringcx.hooks.ringcx import RingCXHook
from airflow_provider_ringcx.keys import report_key
from tests.fixtures.airflow_dag import parse_example_dag
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.reliability.conftest import FAST_RETRIES, W_START
from tests.reliability.harness import SUB, Pipeline, VirtualTime
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
PREFIX = "rel"
BATCH_SIZE = 20
#: The DAG archives ``[run - 30 min, run - 15 min)`` (15-minute windows, 15-minute lag).
RUN_LAG = timedelta(minutes=30)


@dataclass
class WindowRun:
    """One window's run, whatever drove it: its report, download summaries (or the report's
    not-archived items), and the task tries it took."""

    start: datetime
    end: datetime
    report: dict | None = None
    summaries: list[dict] = field(default_factory=list)
    tasks: int = 0
    tries: int = 0
    ok: bool = True


def _read_report(s3: Any, bucket: str, start: datetime, end: datetime) -> dict | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=report_key(PREFIX, SUB, start, end))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    report: dict = json.loads(body)
    return report


def _task_tries(run_id: str) -> tuple[int, int]:
    """``(tasks that ran, tries they took)`` of one DAG run, from the metadata DB."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tries = session.scalars(select(TaskInstance.try_number).where(TaskInstance.run_id == run_id)).all()
    ran = [n for n in tries if n > 0]  # tasks skipped by the DAG never get a try
    return len(ran), sum(ran)


class DagDriver:
    """Runs a window as ``dag.test()`` of the example DAG (every task, XCom and trigger rule for real)."""

    def __init__(self, dag: Any, bucket: str, s3: Any, clock: VirtualTime) -> None:
        self.dag, self.bucket, self.s3, self.clock = dag, bucket, s3, clock

    def __call__(self, start: datetime, end: datetime) -> WindowRun:
        reset_secrets_masker()  # a fresh masker per run, as each task process would start with
        self.clock.offset = 0.0  # every run's hooks start on the vendor's clock (see Pipeline.run_window)
        run = self.dag.test(
            logical_date=start + RUN_LAG,
            run_conf={"bucket": self.bucket, "prefix": PREFIX, "batch_size": BATCH_SIZE},
        )
        tasks, tries = _task_tries(run.run_id)
        report = _read_report(self.s3, self.bucket, start, end)
        summaries = [{"not_archived": report.get("not_archived") or []}] if report else []
        return WindowRun(start, end, report, summaries, tasks, tries, ok=run.state == "success")


class HarnessDriver:
    """Runs a window through the operators with :class:`Pipeline` (Airflow's retries mimicked)."""

    def __init__(self, pipe: Pipeline, s3: Any) -> None:
        self.pipe, self.s3 = pipe, s3

    def __call__(self, start: datetime, end: datetime) -> WindowRun:
        result = self.pipe.run_window(self.s3, start, end)
        return WindowRun(
            start,
            end,
            result.report,
            result.summaries,
            tasks=1 + len(result.batches),
            tries=result.task_tries,
            ok=result.report is not None and result.counts.get("failed", 0) == 0,
        )


@contextlib.contextmanager
def _quiet(verbose: bool, path: Path) -> Iterator[None]:
    """Unless ``verbose``, send what the runs print (the task logs of ``dag.test()``) to ``path`` and drop
    INFO records of the standard logging (one per S3 request): the console keeps the figures."""
    if verbose:
        yield
        return
    logging.disable(logging.INFO)
    try:
        with path.open("w") as out, contextlib.redirect_stdout(out):
            yield
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_soak_simulated_day_with_random_faults(
    make_simulator: Callable[..., SimulatorHandle],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    aws_conn: str,
    versioned_bucket: str,
    s3_client: Any,
    tmp_path: Any,
) -> None:
    hours = int(os.environ.get("RINGCX_SOAK_HOURS", "24"))
    mode = os.environ.get("RINGCX_SOAK_MODE", "dag")
    assert mode in ("dag", "harness"), f"RINGCX_SOAK_MODE={mode!r}: use dag or harness"
    monkeypatch.setenv("AIRFLOW__RINGCX__BUDGET_DIR", str(tmp_path / "budgets"))
    sim = make_simulator(calls_per_hour=40, seed=2026, duration_scale=0.01, time_scale=60, fault_seed=6)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(sim, **FAST_RETRIES))

    clock = VirtualTime()
    drive: Callable[[datetime, datetime], WindowRun]
    if mode == "dag":
        request.getfixturevalue("example_dag")  # a migrated DB with the DAG bundle
        monkeypatch.setenv("RINGCX_RETRIES", "3")  # parse-time; dag.test() re-parses on every call
        monkeypatch.setenv("RINGCX_RETRY_DELAY_SECONDS", "0")
        dag = parse_example_dag()
        hook_init = RingCXHook.__init__

        def virtual_time_hook(self: RingCXHook, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("clock", clock.now)
            kwargs.setdefault("sleep", clock.sleep)
            hook_init(self, *args, **kwargs)

        monkeypatch.setattr(RingCXHook, "__init__", virtual_time_hook)
        drive = DagDriver(dag, versioned_bucket, s3_client, clock)
    else:
        pipe = Pipeline(bucket=versioned_bucket, prefix=PREFIX, retries=3, batch_size=BATCH_SIZE, clock=clock)
        drive = HarnessDriver(pipe, s3_client)

    sim.control.set_faults(FAULTS)
    starts = [W_START.replace(hour=0) + i * timedelta(minutes=15) for i in range(hours * 4)]
    windows = [(start, start + timedelta(minutes=15)) for start in starts]
    output = Path(tmp_path) / "soak-output.log"
    with _quiet(os.environ.get("RINGCX_SOAK_VERBOSE") == "1", output):
        began = time.monotonic()
        runs = [drive(start, end) for start, end in windows]
        day_seconds = time.monotonic() - began
        stats = sim.control.stats()
        sim.control.clear_faults()
        before = downloaded_bytes(sim.control.stats())
        rerun = [drive(start, end) for start, end in windows]
        rerun_bytes = downloaded_bytes(sim.control.stats()) - before
        rerun_seconds = time.monotonic() - began - day_seconds
        truth = sim.control.ground_truth(windows[0][0], windows[-1][1])
        summaries = [summary for run in runs for summary in run.summaries]
        check = check_archive(s3_client, versioned_bucket, PREFIX, truth, summaries=summaries)
    bad_counts = [
        f"{run.start:%H:%M}"
        for run in runs
        if run.report is None
        or run.report["counts"]["expected"]
        != run.report["counts"]["archived"] + run.report["counts"]["not_archived"]
    ]
    tasks = sum(run.tasks for run in runs)
    tries = sum(run.tries for run in runs)
    figures = {
        **check.figures(),
        "windows": len(windows),
        "failed_runs": sum(1 for run in runs if not run.ok),
        "incomplete_windows": sum(1 for run in runs if not (run.report or {}).get("complete")),
        "tasks": tasks,
        "task_tries": tries,
        "task_retries": tries - tasks,
        "hook_retry_waits": len(clock.sleeps),
        "http_429": sum(stats["rate_limited"].values()),
        "tokens_issued": len(stats["tokens_issued"]),
        "rerun_bytes_downloaded": rerun_bytes,
        "rerun_failed_runs": sum(1 for run in rerun if not run.ok),
        "day_minutes": round(day_seconds / 60, 1),
        "seconds_per_window": round(day_seconds / len(windows), 1),
        "rerun_minutes": round(rerun_seconds / 60, 1),
        "task_output": str(output) if output.exists() else "console",
    }
    print(f"\nSOAK ({mode}): {hours} simulated hours, fault rate {FAULT_RATE} per rule")
    print("  faults injected per kind:", dict(sorted(stats["faults"].items())))
    for name, value in figures.items():
        print(f"  {name}: {value}")
    check.assert_ok()
    assert not bad_counts, bad_counts
    assert check.lost == 0
    assert check.corrupt == 0
    assert check.duplicates == 0
    assert rerun_bytes == 0
    assert all(run.ok and (run.report or {}).get("complete") for run in rerun)
