"""Airflow overhead: ``airflow dags test`` of one window holding N segments versus path (c) over them.

The example DAG (``dags/ringcx_recordings_to_s3.py``) runs against the simulator and moto's S3 server in
a fresh SQLite Airflow home prepared by ``scripts/stack.py`` (the same wiring as ``make demo``), with the
budgets off on both sides so that only Airflow and the operators' own work is measured. The window's
segments are injected into the simulator with exact sizes (no generated traffic). ``airflow dags test``
runs every task (resolve, metadata + manifest, planning, the mapped download batches, the report that
re-checks S3) in one process, one task after another; its wall time, CLI start-up included, is compared
with the bare loop (c) (``bench.throughput``: requests streaming into ``upload_fileobj``, sequential) over
the same recordings, given their ids.

    python -m bench --only airflow [--airflow-segments 1000] [--airflow-kb 200]
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench.common import MB, CpuMeter, Section, run_child, table
from bench.segments import duration_for

#: The run's logical date; with the DAG's default 15-minute lag it archives 14:00-14:15 UTC (as make demo).
RUN = "2026-03-02T14:30:00+00:00"
WINDOW_END = datetime.fromisoformat("2026-03-02T14:15:00+00:00")


def _inject(sim_url: str, count: int, size: int) -> list[dict[str, Any]]:
    specs = []
    for n in range(count):
        end = WINDOW_END - timedelta(minutes=15) + timedelta(minutes=15) * (n + 0.5) / count
        specs.append(
            {
                "dialogId": f"af-d{n // 2:05d}",
                "segmentId": f"af-s{n:05d}",
                "segmentEndTimeMs": int(end.timestamp() * 1000),
                "segmentDurationMs": duration_for(size),
                "channels": 2,
            }
        )
    refs = []
    for start in range(0, count, 500):
        response = requests.post(f"{sim_url}/_sim/segments", json=specs[start : start + 500], timeout=600)
        response.raise_for_status()
        refs += [
            {"dialog_id": s["dialogId"], "segment_id": s["segmentId"], "size": s["size"]}
            for s in response.json()["segments"]
        ]
    return refs


def _task_seconds(log: str) -> dict[str, float]:
    """Seconds per task id from ``airflow dags test`` output (best effort: start/end markers vary)."""
    found: dict[str, float] = {}
    for match in re.finditer(r"task_id=(\w+).*?(?:duration|run_duration)[=:]\s*([0-9.]+)", log):
        found[match.group(1)] = found.get(match.group(1), 0.0) + float(match.group(2))
    return found


def bench(workdir: Path, *, segments: int, kb: int) -> Section:
    from scripts.stack import REGION, S3_KEY, S3_SECRET, Stack

    section = Section(f"4. Airflow overhead: airflow dags test, one window of {segments} segments of {kb} KB")
    workdir.mkdir(parents=True, exist_ok=True)
    off = {"metadata_budget": "off", "download_budget": "off", "exchange_budget": "off"}
    sim_args = [
        "--calls-per-hour",
        "0",
        "--download-budget",
        "off",
        "--metadata-budget",
        "off",
        "--token-budget",
        "off",
        "--processing-delay",
        "0",
    ]
    stack = Stack(
        workdir / "home",
        sim_args=sim_args,
        ringcx_extra=off,
        airflow_env={"RINGCX_RETRIES": "0", "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"},
    )
    with stack.running():
        stack.prepare_home()
        refs = _inject(stack.sim_url, segments, kb * 1000)
        total = sum(r["size"] for r in refs)
        pids = {"simulator": stack.procs[0].pid, "moto": stack.procs[1].pid}
        with CpuMeter(pids) as dag_meter:
            began = time.monotonic()
            result = stack.airflow("dags", "test", "ringcx_recordings_to_s3", RUN, check=False, timeout=1800)
            dag_seconds = time.monotonic() - began
        (workdir / "dags-test.log").write_text(result.stdout + result.stderr)
        s3 = stack.s3_client()
        wavs = sum(
            1
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix="ringcx/")
            for obj in page.get("Contents", [])
            if obj["Key"].endswith(".wav")
        )
        refs_file = workdir / "refs.json"
        refs_file.write_text(json.dumps(refs))
        env = {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_DEFAULT_REGION": REGION}
        with CpuMeter(pids) as bare_meter:
            bare = run_child(
                "bench.throughput",
                ["--child", "bare", stack.sim_url, stack.s3_url, stack.bucket, str(refs_file)],
                env,
                timeout=1800,
            )
    ok = result.returncode == 0 and wavs == segments
    rows = [
        (
            "airflow dags test (whole DAG run, CLI start included)",
            f"{dag_seconds:.1f}",
            f"{total / MB / dag_seconds:.1f}",
            f"{segments / dag_seconds:.1f}",
            dag_meter.summary(),
        ),
        (
            "(c) bare loop over the same recordings",
            f"{bare['seconds']:.1f}",
            f"{total / MB / bare['seconds']:.1f}",
            f"{segments / bare['seconds']:.1f}",
            f"client {bare['client_cpu']:.1f} s, " + bare_meter.summary(),
        ),
    ]
    section.details = table(rows, ("run", "wall s", "MB/s", "rec/s", "server CPU"))
    ratio = dag_seconds / bare["seconds"]
    section.add("dags test / bare loop (wall)", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5 and ok)
    section.add(
        "DAG run state / WAVs in S3",
        f"{'success' if result.returncode == 0 else 'FAILED'} / {wavs}",
        f"success / {segments}",
        ok,
    )
    if not ok:
        section.notes.append(f"dags test exit {result.returncode}; log: {workdir / 'dags-test.log'}")
    section.notes.append(
        "dags test runs the mapped batches one after another in one process (batch_size 100, max_workers 4 "
        "each); under a LocalExecutor they would run in parallel up to the ringcx_downloads pool (4)"
    )
    return section
