"""OpenLineage events of a real run of the live example DAG, with the OpenLineage provider installed.

``airflow dags test`` runs the DAG in a subprocess (the provider's listener is registered when Airflow
loads its plugins, once per process, so the events cannot be switched on inside this test session), on the
session's metadata DB where the ``example_dag`` fixture serialized the DAG, against the simulator and the
moto S3 server over HTTP. The listener emits to OpenLineage's file transport (one JSON event per line);
the checks read that file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import DAG_ID
from tests.fixtures.airflow_dag import DAGS
from tests.fixtures.s3 import S3_SECRET, list_keys
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

RUN = "2026-03-02T14:30:00+00:00"  # archives 14:00-14:15 (15-minute lag)
SUB = "99999999"


def _dags_test(tmp_path: Path, bucket: str, **conf: Any) -> list[dict[str, Any]]:
    events = tmp_path / "openlineage.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "RINGCX_RETRIES": "0",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "ringcx-tests",
    }
    airflow = Path(sys.executable).with_name("airflow")
    run_conf = json.dumps({"bucket": bucket, "prefix": "rec", **conf})
    done = subprocess.run(
        [str(airflow), "dags", "test", DAG_ID, RUN, "-c", run_conf],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )  # fmt: skip
    assert events.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(line) for line in events.read_text().splitlines() if line.strip()]


def _task_events(events: list[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("job", {}).get("name") == f"{DAG_ID}.{task_id}"]


@pytest.fixture
def sim(make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    handle = make_simulator(calls_per_hour=40, seed=7, restricted_share=0.3)  # some 403s: the report fails
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    return handle


def test_a_dag_run_emits_inputs_outputs_statistics_and_failure_facets(
    example_dag: Any, sim: SimulatorHandle, aws_conn: str, bucket: str, s3_client: Any, tmp_path: Path
) -> None:
    """One run covers every event kind (one Airflow start-up in a subprocess, not two): the metadata and
    download tasks complete, the report fails over the forbidden recordings."""
    events = _dags_test(tmp_path, bucket, batch_size=4)
    wavs = [k for k in list_keys(s3_client, bucket, "rec/sub_account=") if k.endswith(".wav")]
    assert len(wavs) >= 3  # the run archived the window's allowed recordings
    namespace = sim.url.rstrip("/")

    fetch = _task_events(events, "fetch_metadata_window")
    assert [e["eventType"] for e in fetch] == ["START", "COMPLETE"]
    for event in fetch:
        (source,) = event["inputs"]
        assert source["namespace"] == namespace
        assert source["name"] == (
            f"/voice/api/cx/integration/v1/accounts/{sim.config.rc_account_id}/sub-accounts/{SUB}"
            "/interaction-metadata"
        )
        (manifest,) = event["outputs"]
        assert manifest["namespace"] == f"s3://{bucket}"
        assert (
            manifest["name"] == f"rec/_manifests/sub_account={SUB}/window=20260302T1400Z_20260302T1415Z.jsonl"
        )
    stats = fetch[-1]["outputs"][0]["outputFacets"]["outputStatistics"]
    head = s3_client.head_object(Bucket=bucket, Key=fetch[-1]["outputs"][0]["name"])
    assert (stats["fileCount"], stats["size"]) == (1, head["ContentLength"])
    assert stats["rowCount"] >= len(wavs)
    facet = fetch[-1]["run"]["facets"]["ringcx_archive"]
    assert (facet["window_start"], facet["sub_account_id"]) == ("2026-03-02T14:00:00+00:00", SUB)

    downloads = _task_events(events, "download_segments")
    completes = [e for e in downloads if e["eventType"] == "COMPLETE"]
    assert completes
    assert len([e for e in downloads if e["eventType"] == "START"]) == len(completes)
    names = {(e["outputs"][0]["namespace"], e["outputs"][0]["name"]) for e in downloads}
    hour = f"rec/sub_account={SUB}/year=2026/month=03/day=02/hour=14"  # a folder: no trailing /
    assert names == {(f"s3://{bucket}", hour)}  # one dataset for the window, not one per batch or recording
    assert all(e["inputs"][0]["name"].endswith(f"/sub-accounts/{SUB}/recordings") for e in downloads)
    files = sum(e["outputs"][0]["outputFacets"]["outputStatistics"]["fileCount"] for e in completes)
    size = sum(e["outputs"][0]["outputFacets"]["outputStatistics"]["size"] for e in completes)
    assert files == len(wavs)
    assert size == sum(s3_client.head_object(Bucket=bucket, Key=k)["ContentLength"] for k in wavs)
    forbidden = sum(e["run"]["facets"]["ringcx_archive"]["counts"].get("forbidden", 0) for e in completes)
    assert forbidden >= 1

    report = _task_events(events, "report_window")
    assert [e["eventType"] for e in report] == ["START", "FAIL"]
    failed = report[-1]
    assert failed["run"]["facets"]["ringcx_archive"]["state"] == "failed"
    assert failed["run"]["facets"]["ringcx_archive"]["counts"]["archived"] == len(wavs)
    assert "is incomplete" in failed["run"]["facets"]["errorMessage"]["message"]
    assert {d["name"] for d in failed["inputs"]} == {manifest["name"], hour}
    (written,) = failed["outputs"]  # the report is written before the task fails
    assert written["name"].startswith(f"rec/_reports/sub_account={SUB}/window=20260302T1400Z")
    assert written["outputFacets"]["outputStatistics"]["fileCount"] == 1

    text = json.dumps(events)
    for secret in (sim.config.client_secret, sim.config.jwt, S3_SECRET):
        assert secret not in text
