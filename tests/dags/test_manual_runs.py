"""Manual runs and configuration errors with real Airflow (``dag.test()``; issue #12 item 16).

- A manual run whose logical date is off the schedule's grid is refused: ``resolve_run`` fails at its first
  try although the DAG has 3 retries (``AirflowFailException``), nothing is archived, and the message names
  the grid-aligned logical dates around it and the backfill command.
- A run without a data interval (Airflow 3 REST trigger without ``logical_date``): ``dag.test()`` always
  sets a logical date, so the ``resolve_run`` task body is called with the context such a run gets
  (``data_interval_start``/``end`` ``None``) and must raise the same no-retry failure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ringcx.exceptions import RingCXConfigError
from tests.fixtures.airflow_dag import parse_example_dag
from tests.fixtures.s3 import list_keys
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

UTC = timezone.utc


@pytest.fixture
def retrying_dag(
    example_dag: Any, make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The example DAG with its production retries (3), a 1 s retry delay, on a simulator."""
    handle = make_simulator(calls_per_hour=20, seed=3)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    monkeypatch.setenv("RINGCX_RETRIES", "3")
    monkeypatch.setenv("RINGCX_RETRY_DELAY_SECONDS", "1")
    return parse_example_dag()


def _tis(run: Any) -> dict[str, Any]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id)).all()
        for row in rows:
            session.expunge(row)
    return {ti.task_id: ti for ti in rows}


def test_off_grid_manual_run_is_refused_at_the_first_try_and_archives_nothing(
    retrying_dag: Any, aws_conn: str, bucket: str, s3_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    off_grid = datetime(2026, 3, 2, 14, 37, tzinfo=UTC)  # data interval 14:22-14:37: two windows' halves
    run = retrying_dag.test(logical_date=off_grid, run_conf={"bucket": bucket, "prefix": "rec"})
    assert run.state == "failed"
    tis = _tis(run)
    resolve = tis["resolve_run"]
    assert resolve.state == "failed"  # not up_for_retry: a configuration error is not retried
    assert resolve.max_tries == 3
    assert resolve.try_number == 1
    assert tis["fetch_metadata_window"].state == "upstream_failed"
    assert list_keys(s3_client, bucket, "rec/") == []
    logged = capsys.readouterr().out  # the task log (dag.test logs to stdout)
    assert "is not on the schedule's grid" in logged
    assert "logical date 2026-03-02T14:30:00Z" in logged
    assert "logical date 2026-03-02T14:45:00Z" in logged
    assert "airflow backfill create --dag-id ringcx_recordings_to_s3" in logged


def test_a_run_without_a_data_interval_fails_without_retries_naming_the_fix(
    retrying_dag: Any, aws_conn: str, bucket: str
) -> None:
    body = retrying_dag.get_task("resolve_run").python_callable
    context = {
        "data_interval_start": None,
        "data_interval_end": None,
        "dag": retrying_dag,
        "dag_run": None,
    }
    with pytest.raises(AirflowFailException) as caught:
        body(params={"bucket": bucket}, **context)
    assert isinstance(caught.value, RingCXConfigError)
    message = str(caught.value)
    assert message.startswith("configuration error (not retried): the run has no data interval")
    assert "trigger it with a logical date on the schedule's grid" in message
    assert "section 'Logical dates and manual runs' of docs/operations.md" in message
