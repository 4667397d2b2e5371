"""End to end: real ``airflow api-server``, ``scheduler`` and ``dag-processor`` processes (LocalExecutor on
SQLite, parallelism 4; ``make airflow`` runs the same stack as ``airflow standalone``) run a backfill of 5
consecutive windows against the simulator, created through the REST API. Then, from S3 and the simulator's
ground truth only: every recording in the range is archived exactly once (one object version in an Object
Lock bucket) with the simulator's SHA-256, every window has a complete report, and the reports' windows tile
the range. Everything is stopped with SIGINT.

Then (issue #12 item 10) every file under ``AIRFLOW_HOME/logs`` - the task log files the real supervisor
wrote at the default INFO level (``dag_id=.../run_id=.../task_id=.../attempt=N.log``), the scheduler's,
the dag-processor's and the API server's output - is scanned for the client secret, the JWT and every token
the simulator issued, raw and encoded (:mod:`tests.fixtures.secret_scan`). Zero hits; and the scan is shown
to find a leak planted in a copy of a task log, so it cannot pass vacuously.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import DAG_ID
from airflow_provider_ringcx.keys import DEFAULT_KEY_TEMPLATE, recording_key
from airflow_provider_ringcx.window_report import run_note
from airflow_provider_ringcx.windows import Window
from scripts.stack import Stack, free_port, poll
from tests.fixtures.secret_scan import log_file_places, scan_places, secret_needles
from tests.fixtures.tiling import tiling_problems

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

UTC = timezone.utc
FROM, TO = datetime(2026, 3, 2, 14, 15, tzinfo=UTC), datetime(2026, 3, 2, 15, 15, tzinfo=UTC)
LAG = timedelta(minutes=15)
# Runs at 14:15 ... 15:15 cover the data intervals [14:00, 15:15); minus the lag: windows [13:45, 15:00).
RANGE = Window(FROM - 2 * LAG, TO - LAG)
# Budgets off on both sides: the simulator's knobs and the connection's pacing extras.
SIM_BUDGETS_OFF = ["--metadata-budget", "off", "--download-budget", "off", "--token-budget", "off"]
FAST = {"metadata_budget": "off", "download_budget": "off", "exchange_budget": "off"}


def _diagnosis(stack: Stack, api: str, headers: dict[str, str]) -> str:
    """What a stuck backfill looked like: each run's task states and the tail of each service's log."""
    lines = []
    try:
        runs = requests.get(
            f"{api}/dags/{DAG_ID}/dagRuns", headers=headers, params={"limit": 100}, timeout=30
        ).json()["dag_runs"]
        for run in runs:
            tis = requests.get(
                f"{api}/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances", headers=headers, timeout=30
            ).json()["task_instances"]
            states = sorted(f"{ti['task_id']}[{ti['map_index']}]={ti['state']}" for ti in tis)
            lines.append(f"{run['dag_run_id']} {run['state']}: {', '.join(states)}")
    except Exception as err:  # a diagnosis must not hide the timeout
        lines.append(f"(runs unavailable: {err})")
    for log in sorted((stack.home / "logs").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-25:]
        lines += [f"--- {log.name}", *tail]
    return "\n" + "\n".join(lines)


def _scan_logs_for_secrets(stack: Stack) -> str:
    """Scan every file under the stack's ``AIRFLOW_HOME/logs`` for every secret; return a summary line."""
    connection = json.loads(stack.connections()["ringcx_default"])
    issued = requests.get(f"{stack.sim_url}/_sim/stats", timeout=30).json()["tokens_issued"]
    assert {t["kind"] for t in issued} >= {"rc_access", "access"}, issued
    named = {"client secret": connection["password"], "JWT credential": connection["extra"]["jwt_token"]}
    named.update({f"issued {t['kind']} token #{i}": str(t["token"]) for i, t in enumerate(issued)})
    needles = secret_needles(named, connection["login"])
    logs = stack.home / "logs"
    places = log_file_places(logs)
    task_logs = [where for where, _ in places if "/task_id=" in where and where.endswith(".log")]
    # not vacuous: 5 runs' task logs (resolve_run, fetch, plan, download, report...) and the services' logs
    assert len(task_logs) >= 5 * 5, [where for where, _ in places]
    for service in ("scheduler.log", "dag-processor.log", "api-server.log"):
        assert any(where.endswith(f"/{service}") for where, _ in places), service
    # INFO lines of the hook reach the task logs: the one task that exchanged a token says so (the others
    # of the host read the shared token cache, hooks/tokencache.py)
    exchange = "exchanged the RingCentral token for a RingCX token"
    fetch_log = next(
        (text for where, text in places if "task_id=fetch_metadata_window" in where and exchange in text), ""
    )
    assert exchange in fetch_log, "no fetch_metadata_window log names the token exchange"
    hits = scan_places(places, needles)
    assert not hits, f"{len(hits)} secret(s) in the log files:\n" + "\n".join(hits)
    # a leak planted in a copy of a task log (a token base64-encoded, as an HTTP client would dump it)
    planted = (
        fetch_log + "\nAuthorization: Basic " + base64.b64encode(str(issued[-1]["token"]).encode()).decode()
    )
    assert scan_places([("planted", planted)], needles), "the scan misses a planted leak"
    return (
        f"log scan: {len(named)} secrets and tokens ({len(issued)} issued), {len(needles)} needles, "
        f"{len(places)} files ({len(task_logs)} task logs), 0 hits"
    )


def _when(value: Any) -> datetime:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@pytest.fixture
def stack(tmp_path: Path) -> Any:
    sim_args = ["--calls-per-hour", "40", "--duration-scale", "0.02", "--seed", "11", *SIM_BUDGETS_OFF]
    env = {
        "RINGCX_START_DATE": "2030-01-01T00:00Z",  # no scheduled runs: only the backfill runs
        "RINGCX_CATCHUP": "false",
        "RINGCX_RETRIES": "1",
        "RINGCX_RETRY_DELAY_SECONDS": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    }
    stack = Stack(tmp_path / "airflow", sim_args=sim_args, ringcx_extra=FAST, airflow_env=env)
    stack.start_services()
    try:
        yield stack
    finally:
        procs = list(stack.procs)
        stack.stop()
        assert all(proc.returncode is not None for proc in procs)


def test_backfill_archives_every_window_exactly_once(stack: Stack) -> None:
    started = time.monotonic()
    stack.prepare_home()
    url = stack.start_airflow(free_port(), timeout=180, standalone=False)
    headers = {"Authorization": f"Bearer {stack.api_token(url)}"}
    api = f"{url}/api/v2"
    poll("the DAG to be parsed", lambda: requests.get(f"{api}/dags/{DAG_ID}", headers=headers).ok, 120)
    assert requests.patch(f"{api}/dags/{DAG_ID}", headers=headers, json={"is_paused": False}).ok
    body = {
        "dag_id": DAG_ID,
        "from_date": FROM.isoformat(),
        "to_date": TO.isoformat(),
        "max_active_runs": 4,
        "reprocess_behavior": "none",
        # each run also rescans the window before it: exercises the late-arrival branch across runs (the
        # windows are months old, so final: rescan_final_windows forces the rescans a backfill would skip)
        "dag_run_conf": {"rescan_lookback_minutes": 15, "rescan_final_windows": True},
    }

    def create() -> tuple[requests.Response] | None:
        # SQLite: while the scheduler holds the DB, the API answers 503 "Database is locked"; retry that.
        # (A tuple, because a Response with an error status is falsy and would be polled again.)
        response = requests.post(f"{api}/backfills", headers=headers, json=body, timeout=30)
        return None if response.status_code == 503 else (response,)

    (created,) = poll("the backfill to be created", create, 90, interval=3)
    assert created.status_code == 200, created.text
    backfill_id = created.json()["id"]

    def finished() -> list[dict] | None:
        runs = requests.get(
            f"{api}/dags/{DAG_ID}/dagRuns", headers=headers, params={"run_type": "backfill", "limit": 100}
        ).json()["dag_runs"]
        done = runs and all(run["state"] in ("success", "failed") for run in runs)
        return runs if done else None

    runs = poll(
        "the backfill runs", finished, 300, interval=2, details=lambda: _diagnosis(stack, api, headers)
    )
    assert len(runs) == 5
    assert {run["state"] for run in runs} == {"success"}, runs
    assert requests.get(f"{api}/backfills/{backfill_id}", headers=headers).ok
    intervals = sorted(Window(_when(r["data_interval_start"]), _when(r["data_interval_end"])) for r in runs)
    assert tiling_problems(intervals) == []

    s3, bucket = stack.s3_client(), stack.bucket
    truth = requests.get(
        f"{stack.sim_url}/_sim/ground-truth",
        params={"start": RANGE.start.isoformat(), "end": RANGE.end.isoformat(), "sha256": "true"},
        timeout=60,
    ).json()["segments"]
    expected = {
        recording_key(
            template=DEFAULT_KEY_TEMPLATE, prefix=stack.prefix, sub_account_id=str(s["subAccountId"]),
            dialog_id=s["dialogId"], segment_id=s["segmentId"], when=_when(s["segmentStartTimeMs"]),
        ): s["sha256"]
        for s in truth
        if s["hasRecording"] and not s["restricted"]
    }  # fmt: skip
    assert len(expected) >= 20
    versions: dict[str, list[dict]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=f"{stack.prefix}/"):
        for version in page.get("Versions", []):
            versions.setdefault(version["Key"], []).append(version)
    wavs = {key: found for key, found in versions.items() if key.endswith(".wav")}
    assert set(wavs) == set(expected)  # every recording, nothing else
    for key, sha in expected.items():
        assert len(wavs[key]) == 1, f"{key} written {len(wavs[key])} times"
        assert s3.head_object(Bucket=bucket, Key=key)["Metadata"]["sha256"] == sha

    reports = [key for key in versions if "/_reports/" in key]
    windows, notes = [], set()
    for key in reports:
        report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert report["complete"] is True, report["not_archived"]
        windows.append(Window(_when(report["window"]["start"]), _when(report["window"]["end"])))
        notes.add(run_note(report))
    assert len(windows) == 5
    # the scheduler's run-note listener (airflow_provider_ringcx/run_notes.py) wrote each window's summary
    assert {run["note"] for run in runs} == notes, [run["note"] for run in runs]
    assert tiling_problems(windows) == []
    assert (min(windows).start, max(windows).end) == (RANGE.start, RANGE.end)
    print(f"backfill e2e: {len(expected)} recordings in 5 windows, {time.monotonic() - started:.0f} s")
    print(_scan_logs_for_secrets(stack))
