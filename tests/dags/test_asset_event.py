"""The Asset event of an archived window: its URI is the archive's S3 location, its ``extra`` says which
window of which sub-account landed, with the counts.

A real ``dag.test()`` run of the example DAG (simulator + moto over HTTP), the DAG parsed with the
parse-time ``RINGCX_BUCKET``/``RINGCX_PREFIX`` a deployment sets; the event is read back from the Airflow
metadata DB (``asset_event`` joined to ``asset``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_ringcx.keys import manifest_key, report_key
from tests.fixtures.airflow_dag import parse_example_dag
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

UTC = timezone.utc
RUN = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # archives 16:00-16:15 (a window no other DAG test runs)
W_START = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
SUB = "99999999"


@pytest.fixture
def sim(make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    handle = make_simulator(calls_per_hour=40, seed=11)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    return handle


def _scheduler_asset_orphanage() -> None:
    """What the scheduler does every ``[scheduler] parsing_cleanup_interval``: an Asset no DAG references
    any more is deactivated, and a referenced one whose name or URI is then free is activated. A DAG
    re-parsed with another URI for the same Asset name needs it; ``dag.test()`` runs no scheduler."""
    from airflow.executors.local_executor import LocalExecutor
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.utils.session import create_session

    runner = SchedulerJobRunner(job=Job(), executors=[LocalExecutor()])
    with create_session() as session:
        runner._update_asset_orphanage(session=session)


@pytest.fixture
def parsed_with_bucket(example_dag: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The example DAG parsed as a deployment with ``RINGCX_BUCKET`` (and ``RINGCX_PREFIX``) parses it;
    afterwards parsed again without them, so later DAG tests see the ``ringcx://`` Asset active again."""
    # write the re-parsed DAG at once (Airflow skips a rewrite within 30 s of the last by default)
    monkeypatch.setenv("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")
    monkeypatch.setenv("RINGCX_BUCKET", bucket)  # where the DAG is parsed, and the run's bucket too
    monkeypatch.setenv("RINGCX_PREFIX", "rec")
    dag = parse_example_dag()
    _scheduler_asset_orphanage()
    yield dag
    monkeypatch.delenv("RINGCX_BUCKET")
    monkeypatch.delenv("RINGCX_PREFIX")
    parse_example_dag()
    _scheduler_asset_orphanage()


def _events(run_id: str) -> list[tuple[str, str, dict]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = (
        select(AssetModel.name, AssetModel.uri, AssetEvent.extra)
        .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
        .where(AssetEvent.source_run_id == run_id)
    )
    with create_session() as session:
        return [tuple(row) for row in session.execute(query).all()]  # type: ignore[misc]


def test_the_event_names_the_s3_archive_and_carries_window_sub_account_and_counts(
    parsed_with_bucket: Any, sim: SimulatorHandle, aws_conn: str, bucket: str, s3_client: Any
) -> None:
    dag = parsed_with_bucket
    [outlet] = dag.get_task("report_window").outlets
    assert outlet.uri == f"s3://{bucket}/rec"
    run = dag.test(logical_date=RUN, run_conf={"batch_size": 10, "allow_unarchived": []})
    assert run.state == "success"

    key = report_key("rec", SUB, W_START, W_START + timedelta(minutes=15))
    report = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    [(name, uri, extra)] = _events(run.run_id)
    assert (name, uri) == ("ringcx_recordings_archive", f"s3://{bucket}/rec")
    assert extra["window_start"] == "2026-03-02T16:00:00Z"
    assert extra["window_end"] == "2026-03-02T16:15:00Z"
    assert extra["window"] == "20260302T1600Z_20260302T1615Z"
    assert extra["sub_account_id"] == SUB
    counts = report["counts"]
    assert counts["expected"] > 0
    for name in ("expected", "archived", "not_archived", "bytes", "unparseable"):
        assert extra[name] == counts[name], name
    assert extra["complete"] is True
    assert extra["archive"] == uri  # where the window really went
    assert extra["report_key"] == key
    assert len(json.dumps(extra)) < 1000  # the event lives in the metadata DB


def test_each_download_task_links_its_windows_manifest(
    example_dag: Any, sim: SimulatorHandle, aws_conn: str, bucket: str
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    later = RUN + timedelta(minutes=15)  # 16:15-16:30, its own window
    run = example_dag.test(
        logical_date=later,
        run_conf={"bucket": bucket, "prefix": "rec", "batch_size": 4, "allow_unarchived": []},
    )
    assert run.state == "success"
    start = W_START + timedelta(minutes=15)
    manifest = manifest_key("rec", SUB, start, start + timedelta(minutes=15))
    query = XComModel.get_many(run_id=run.run_id, key="ringcx_manifest_link", task_ids="download_segments")
    with create_session() as session:
        pushed = [XComModel.deserialize_value(row) for row in session.scalars(query)]
    assert len(pushed) >= 2  # every mapped batch
    assert {(value["bucket"], value["key"], value["is_prefix"]) for value in pushed} == {
        (bucket, manifest, False)
    }
