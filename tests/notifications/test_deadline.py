"""The live window's Deadline Alert (issue 15 item 3), from the DAG definition to the notifier's file.

Deadline callbacks are not run by ``dag.test()``: in Airflow 3.3 the **scheduler** creates a ``Deadline``
row when it creates a run (``SerializedDAG.create_dagrun``), finds it expired in its loop
(``deadline_time < now`` and not missed) and calls ``Deadline.handle_miss``, which queues an
``AsyncCallback`` as a ``Trigger`` (a ``CallbackTrigger``); the **triggerer** loads that trigger's
classpath and kwargs and runs it, which constructs the notifier with the deadline's context and awaits it.
This test runs each of those steps with Airflow's own code, in this process and against the test
session's metadata DB, instead of a scheduler and a triggerer process: the DAG is parsed from a file and
written to the DB like any DAG, the run is created as the scheduler creates one, the expired deadline is
handled as the scheduler's loop does, and the trigger row is instantiated and run as the triggerer does.
No step is mocked; what is not exercised is only the processes' polling loops (their timing).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.notifications.deadline import window_deadline
from airflow_provider_ringcx.notifications.file import RingCXFileNotifier
from tests.fixtures.airflow_dag import parse_example_dag

UTC = timezone.utc
DAG_ID = "ringcx_deadline_probe"
LOGICAL = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # archives 14:00-14:15, due at 14:30
DAG_FILE = """
from datetime import datetime, timedelta, timezone

from airflow_provider_ringcx.example_dags import settings

from airflow_provider_ringcx.example_dags import shape
from airflow_provider_ringcx.example_dags.factory import ringcx_archive_dag
from airflow_provider_ringcx.notifications import RingCXFileNotifier, window_deadline

dag = ringcx_archive_dag(
    dag_id="{dag_id}",
    schedule=shape.build_timetable(),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    deadline=window_deadline(
        RingCXFileNotifier, margin=timedelta(seconds=5),
        kwargs={{"path": "{path}", "event": "deadline_missed"}},
    ),
)
"""


def test_the_deadline_is_the_logical_date_plus_the_margin_and_calls_the_notifier_in_the_triggerer() -> None:
    alert = window_deadline(kwargs={"path": "/tmp/a.jsonl"}, margin=timedelta(minutes=20))
    assert type(alert.reference).__name__ == "DagRunLogicalDateDeadline"
    assert alert.interval == timedelta(minutes=20)
    assert type(alert.callback).__name__ == "AsyncCallback"  # the triggerer runs it
    assert alert.callback.path == "airflow_provider_ringcx.notifications.file.RingCXFileNotifier"
    assert alert.callback.kwargs == {"path": "/tmp/a.jsonl"}
    with pytest.raises(Exception, match="more than 0"):
        window_deadline(margin=timedelta(0))


def test_a_window_not_archived_by_its_deadline_notifies_through_scheduler_and_triggerer_code(
    example_dag: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from airflow._shared.module_loading import import_string
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.deadline import Deadline
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    alerts = tmp_path / "alerts.jsonl"
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "probe.py").write_text(DAG_FILE.format(dag_id=DAG_ID, path=alerts))
    bag = BundleDagBag(dag_folder=str(folder), bundle_path=folder, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    assert bag.dags[DAG_ID].deadline is not None
    # Syncing this folder as the "dags-folder" bundle marks every other DAG of the bundle stale (the shipped
    # DAG, parsed once per session by example_dag): later dag.test() runs would find it "not serialized".
    request.addfinalizer(parse_example_dag)
    sync_bag_to_db(bag, "dags-folder", None)

    with create_session() as session:  # the scheduler creates the run (and so its deadline)
        dag = SerializedDagModel.get_dag(DAG_ID, session=session)
        assert dag is not None
        run = dag.create_dagrun(
            run_id="scheduled__2026-03-02T14:30:00+00:00", logical_date=LOGICAL,
            data_interval=(LOGICAL - timedelta(minutes=15), LOGICAL), run_after=LOGICAL,
            run_type=DagRunType.SCHEDULED, triggered_by=DagRunTriggeredByType.TIMETABLE,
            state=DagRunState.RUNNING, session=session,
        )  # fmt: skip
        session.flush()
        (deadline,) = session.scalars(select(Deadline).where(Deadline.dagrun_id == run.id)).all()
        assert deadline.deadline_time == LOGICAL + timedelta(seconds=5)
        # the scheduler's loop: every expired deadline that is not yet missed is handled
        expired = session.scalars(
            select(Deadline).where(Deadline.deadline_time < datetime.now(UTC)).where(~Deadline.missed)
        ).all()
        assert [d.id for d in expired if d.dagrun_id == run.id] == [deadline.id]
        deadline.handle_miss(session)
        session.flush()
        trigger = session.get(Trigger, deadline.callback.trigger_id)
        assert trigger is not None
        classpath, kwargs = trigger.classpath, trigger.kwargs
    assert not alerts.exists()  # queued, not yet run
    assert classpath == "airflow.triggers.callback.CallbackTrigger"
    assert kwargs["callback_path"] == f"{RingCXFileNotifier.__module__}.RingCXFileNotifier"

    # the triggerer: load the trigger's class, construct it with its kwargs, run it
    instance = import_string(classpath)(**kwargs)

    async def run_trigger() -> list[Any]:
        return [event async for event in instance.run()]

    events = asyncio.run(run_trigger())
    assert events[-1].payload["state"] == "success", events[-1].payload
    (line,) = [json.loads(text) for text in alerts.read_text().splitlines()]
    assert (line["event"], line["dag_id"], line["run_id"]) == ("deadline_missed", DAG_ID, run.run_id)
    assert line["window"] == {"start": "2026-03-02T14:00:00Z", "end": "2026-03-02T14:15:00Z"}
    assert line["deadline_time"] == "2026-03-02T14:30:05Z"
