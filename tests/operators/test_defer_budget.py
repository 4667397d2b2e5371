"""Deferral terminates (issue #12 item 3): a real Airflow run whose window needs more metadata calls than
one budget window admits.

The window is 5 minutes at ``max_window_seconds=60``: 5 calls. The connection's metadata budget admits 2
calls per 2 s and the simulator's (time-scaled: 2 per 80 simulated seconds at 60x, 1.3 real seconds)
enforces a looser one (the slack absorbs a token refresh between a call's budget slot and its request
on a loaded machine), so any client that paces right is never answered 429. The budget is blocked
when the task starts, so its first call would wait ~3 s, over ``defer_waits_over=1``: the task defers on a
``DateTimeTrigger`` (``dag.test()`` runs the trigger in line, as the triggerer would) and resumes in
``execute_after_wait``. The resumed fetch needs two more budget waits (before calls 3 and 5), each over
``defer_waits_over`` too: before the fix each of them deferred again and the resume started over from the
first call (run against the old code, this test saw 17 deferrals before a lucky timing let one resume
through; a real 9/900 budget never gets lucky). Now the run finishes, having deferred once, and the
simulator saw exactly ceil(300 / 60) = 5 metadata calls, all 200.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.hooks.budget import BudgetLimit, pacing_seconds
from airflow_provider_ringcx.hooks.ringcx import RingCXHook
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from tests.fixtures.s3 import list_keys
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.operators.conftest import context

START = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
END = START + timedelta(minutes=5)
DAG_ID = "ringcx_test_defer_budget"


def metadata_counts(sim: SimulatorHandle) -> dict[str, int]:
    return dict(sim.control.stats()["requests"].get("metadata", {}))


@pytest.fixture
def paced_sim(
    make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch
) -> SimulatorHandle:
    sim = make_simulator(metadata_budget="2/80", time_scale=60, calls_per_hour=60, seed=3)
    monkeypatch.setenv(
        "AIRFLOW_CONN_RINGCX_DEFAULT",
        ringcx_connection_json(sim, max_window_seconds=60, metadata_budget="2/2", exchange_budget="off"),
    )
    return sim


def _register(dag: Any) -> None:
    """Write ``dag`` (defined in this test, outside the DAG folder) to the DB, as ``dag.test()`` needs."""
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session,
            files_parsed=set(),
        )  # fmt: skip


@pytest.fixture(scope="module")
def airflow_db(example_dag: Any) -> None:
    """The session's metadata DB with the default bundle, as ``example_dag`` prepares it. (Not a reset of
    its own: a ``resetdb()`` here dropped the session's serialized example DAG, and every later
    ``dag.test()`` of it failed with "the dag is not serialized".)"""


@pytest.fixture
def defer_dag(airflow_db: None, bucket: str) -> Any:
    """A one-task DAG: the metadata operator over the explicit window, deferring waits over 1 s.

    Right before its first execution (``pre_execute``, in the task process) another task "was answered 429
    with Retry-After 3 s": the shared budget is blocked, so the first call must wait ~3 s and defers.
    """
    from airflow.sdk import DAG

    blocked: list[float] = []

    def vendor_backoff(context: Any) -> None:
        if not blocked:  # the first execution only, not the resume
            blocked.append(3.0)
            RingCXHook(ringcx_conn_id="ringcx_default").metadata.budget.penalize(3.0)

    with DAG(dag_id=DAG_ID, schedule=None, start_date=START, catchup=False) as dag:
        RingCXInteractionMetadataOperator(
            task_id="fetch_metadata_window",
            bucket=bucket,
            prefix="rec",
            window_start=START.isoformat(),
            window_end=END.isoformat(),
            defer_waits_over=1,
            execution_timeout=timedelta(minutes=2),
            pre_execute=vendor_backoff,
        )
    _register(dag)
    return dag


@pytest.mark.timeout(300)  # ~30 s here
def test_a_window_needing_more_calls_than_the_budget_defers_once_and_finishes(
    defer_dag: Any,
    paced_sim: SimulatorHandle,
    aws_conn: str,
    s3_client: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resumes: list[Any] = []
    real_resume = RingCXInteractionMetadataOperator.execute_after_wait

    def counting_resume(self: Any, context: Any, event: Any = None) -> Any:  # a spy: the real method runs
        resumes.append(event)
        return real_resume(self, context, event)

    monkeypatch.setattr(RingCXInteractionMetadataOperator, "execute_after_wait", counting_resume)
    RingCXHook(ringcx_conn_id="ringcx_default").metadata.budget.reset()
    run = defer_dag.test(logical_date=START + timedelta(hours=1))

    assert run.state == "success", metadata_counts(paced_sim)
    assert len(resumes) == 1, resumes  # deferred exactly once, at the first wait
    assert metadata_counts(paced_sim) == {"200": 5}  # ceil(300 s / 60 s): no call fetched twice
    (manifest,) = list_keys(s3_client, bucket, "rec/_manifests/")
    lines = s3_client.get_object(Bucket=bucket, Key=manifest)["Body"].read().splitlines()
    summary = json.loads(lines[-1])
    truth = paced_sim.control.ground_truth(START, END, sha256=False)
    assert summary["segments"] == len(truth) > 0


def test_a_window_that_cannot_fit_its_timeout_is_refused_before_any_call(
    paced_sim: SimulatorHandle, aws_conn: str, s3_client: Any, bucket: str
) -> None:
    op = RingCXInteractionMetadataOperator(
        task_id="fetch_metadata_window",
        bucket=bucket,
        window_start=START.isoformat(),
        window_end=(START + timedelta(hours=1)).isoformat(),
        execution_timeout=timedelta(seconds=30),
    )
    with pytest.raises(RingCXConfigError) as info:  # 60 calls at 2 per 2 s: at least 58 s
        op.execute(context())
    message = str(info.value)
    for name in ("60 interaction-metadata calls", "max_window_seconds=60", "metadata_budget='2/2'", "30 s"):
        assert name in message
    assert metadata_counts(paced_sim) == {}
    assert list_keys(s3_client, bucket) == []


def test_pacing_is_decided_by_the_slowest_budget_window() -> None:
    default = (BudgetLimit(2, 60), BudgetLimit(9, 900))
    assert pacing_seconds(default, 1) == 0
    assert pacing_seconds(default, 9) == 240  # the per-minute limit: 4 more minutes
    assert pacing_seconds(default, 24) == 1800  # two more quarter hours
    assert pacing_seconds((), 1000) == 0
