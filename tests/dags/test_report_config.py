"""A configuration error the report step detects fails it at once, through a real ``dag.test()`` run.

``report_window`` has retries of its own (2); a bad ``allow_unarchived`` (a status the report does not
know) is a configuration error that no retry can fix, so the task fails on its first try
(``RingCXConfigFailure``, an ``AirflowFailException``) and no report is written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.fixtures.s3 import list_keys
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

RUN = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)


def test_a_bad_allow_unarchived_fails_the_report_without_retries(
    example_dag: Any, make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch,
    aws_conn: str, bucket: str, s3_client: Any,
) -> None:  # fmt: skip
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    handle = make_simulator(calls_per_hour=40, seed=7)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    conf = {"bucket": bucket, "prefix": "rec", "allow_unarchived": ["forbiden"]}
    run = example_dag.test(logical_date=RUN, run_conf=conf)
    assert run.state == "failed"
    with create_session() as session:
        report = session.scalars(
            select(TaskInstance).where(
                TaskInstance.run_id == run.run_id, TaskInstance.task_id == "report_window"
            )
        ).one()
        state, try_number, max_tries = report.state, report.try_number, report.max_tries
    assert example_dag.get_task("report_window").retries == 2
    assert (state, try_number) == ("failed", 1), (state, try_number, max_tries)  # no retry spent
    assert not [key for key in list_keys(s3_client, bucket, "rec/_reports/") if key.endswith(".json")]
