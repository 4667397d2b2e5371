"""The legal-hold DAG run for real: ``dag.test()`` of ``ringcx_legal_hold`` against the moto S3 server, with
its ``ApprovalOperator`` answered while the run waits.

``dag.test()`` keeps a human-in-the-loop task parked in ``awaiting_input`` until a response is recorded
from outside. Here a thread plays the approver: once the approval task waits, it records the answer with
the Core API's own handler (``update_hitl_detail``, what ``PATCH /api/v2/hitlDetails/...`` and the
Required Actions view run after authenticating the user), on the same metadata DB, so the run resumes as
it would in production. No api-server process is started: the handler is called with the authenticated
user the endpoint would pass (a ``SimpleAuthManagerUser``); that is the only stand-in.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.example_dags.legal_hold import APPLY, APPROVE, RESOLVE
from airflow_provider_ringcx.example_dags.ringcx_legal_hold import DAG_ID
from tests.fixtures.s3 import S3_SECRET, list_keys
from tests.holds.archive import PREFIX, SUB, check_hold_audits, hold_status, seed

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture
def hold_dag(example_dag: Any) -> Any:
    """The legal-hold DAG, parsed from ``dags/`` and written to the DB prepared by ``example_dag``."""
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    bag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return bag.dags[DAG_ID]


class Approver(threading.Thread):
    """Answers the approval task of the run once it waits (polls the DB; gives up after ``timeout`` s)."""

    def __init__(self, option: str, timeout: float = 120) -> None:
        super().__init__(daemon=True)
        self.option, self.timeout = option, timeout
        self.answered: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.answered = self._answer()
        except BaseException as err:  # reported by the test; the waiting task fails so dag.test() returns
            self.error = err
            self._give_up()

    def _give_up(self) -> None:
        from airflow.models import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import update

        with create_session() as session:
            session.execute(
                update(TaskInstance)
                .where(TaskInstance.dag_id == DAG_ID, TaskInstance.state == TaskInstanceState.AWAITING_INPUT)
                .values(state=TaskInstanceState.FAILED)
            )

    def _answer(self) -> dict[str, Any]:
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
        from airflow.models import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            with create_session() as session:
                waiting = session.scalars(
                    select(TaskInstance).where(
                        TaskInstance.dag_id == DAG_ID, TaskInstance.task_id == APPROVE,
                        TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                    )
                ).first()  # fmt: skip
                if waiting is not None:
                    update_hitl_detail(
                        dag_id=DAG_ID, dag_run_id=waiting.run_id, task_id=APPROVE,
                        update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[self.option]),
                        user=SimpleAuthManagerUser(username="counsel@example.com", role="ADMIN"),
                        session=session,
                    )  # fmt: skip
                    return {"run_id": waiting.run_id}
            time.sleep(0.3)
        raise TimeoutError("the approval task never waited for input")


def _conf(bucket: str, **more: Any) -> dict[str, Any]:
    return {
        "bucket": bucket, "prefix": PREFIX, "hold_sub_account_id": SUB, "hold_date_from": "2026-03-01",
        "hold_date_to": "2026-03-04", "hold_phone_numbers": "+1 555 010 0100",
        "requested_by": "legal@example.com", "hold_reason": "Matter 17", **more,
    }  # fmt: skip


def _states(run: Any) -> dict[str, str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id)).all()
        return {ti.task_id: str(ti.state) for ti in rows}


def _run(dag: Any, conf: dict[str, Any], option: str) -> tuple[Any, Approver]:
    approver = Approver(option)
    approver.start()
    run = dag.test(run_conf=conf)
    approver.join(timeout=5)
    assert approver.error is None, approver.error
    return run, approver


def test_an_approved_request_holds_the_calls_and_audits_the_approver(
    hold_dag: Any, aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    rows = seed(s3_client, locked_bucket)
    run, approver = _run(hold_dag, _conf(locked_bucket), "Approve")
    assert run.state == "success", _states(run)
    assert _states(run) == {RESOLVE: "success", APPROVE: "success", APPLY: "success"}
    for segment in ("s-1", "s-2", "s-3"):
        assert hold_status(s3_client, locked_bucket, rows[segment]["s3_key"]) == "ON"
    assert hold_status(s3_client, locked_bucket, rows["s-4"]["s3_key"]) == "OFF"
    (audit_key,) = list_keys(s3_client, locked_bucket, f"{PREFIX}/_audit/legal_holds/sub_account={SUB}/")
    record = json.loads(s3_client.get_object(Bucket=locked_bucket, Key=audit_key)["Body"].read())
    assert record["approval"]["chosen_options"] == ["Approve"]
    assert record["approval"]["responded_by"]["name"] == "counsel@example.com"
    assert record["requested_by"] == "legal@example.com"
    assert record["run"]["run_id"] == run.run_id == approver.answered["run_id"]
    assert record["counts"]["changed"] == 7
    assert S3_SECRET not in json.dumps(record)
    assert check_hold_audits(s3_client, locked_bucket) == []

    from airflow.models import TaskInstance
    from airflow.models.hitl import HITLDetail
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        approval = session.scalars(
            select(TaskInstance).where(TaskInstance.run_id == run.run_id, TaskInstance.task_id == APPROVE)
        ).one()
        detail = session.scalars(select(HITLDetail).where(HITLDetail.ti_id == approval.id)).one()
        assert "3 call segment(s) of sub-account 42" in detail.subject
        assert "7 object version(s)" in detail.body  # the approver saw what would change


def test_a_rejected_request_changes_nothing(
    hold_dag: Any, aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    rows = seed(s3_client, locked_bucket)
    run, _ = _run(hold_dag, _conf(locked_bucket), "Reject")
    assert _states(run)[APPLY] == "skipped"
    assert all(hold_status(s3_client, locked_bucket, row["s3_key"]) == "OFF" for row in rows.values())
    assert not list_keys(s3_client, locked_bucket, f"{PREFIX}/_audit/")


def test_a_bucket_without_object_lock_fails_before_anyone_is_asked(
    hold_dag: Any, aws_conn: str, bucket: str, s3_client: Any
) -> None:
    seed(s3_client, bucket)
    run = hold_dag.test(run_conf=_conf(bucket))
    assert run.state == "failed"
    states = _states(run)
    assert states[RESOLVE] == "failed"
    assert states.get(APPROVE) in ("upstream_failed", None)


def test_the_runs_key_template_decides_which_keys_a_row_may_name(
    hold_dag: Any, aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    """The DAG passes the run's key_template (param, Variable or env, as the archive DAGs resolve it) to the
    preview and the operator: under a template whose keys say hour=15, the seeded hour=14 keys are refused
    before anyone is asked; under one that renders them, the request holds them."""
    rows = seed(s3_client, locked_bucket)
    layout = (
        "{prefix}/sub_account={sub_account_id}/year={year}/month={month}/day={day}/hour=%s/{dialog_id}/"
        "{segment_id}.wav"
    )
    approver = Approver("Reject", timeout=15)  # rejects, should the preview wrongly pass
    approver.start()
    run = hold_dag.test(run_conf=_conf(locked_bucket, key_template=layout % "15"))
    approver.join()  # gone before the next run's approval task exists
    assert _states(run)[RESOLVE] == "failed"
    assert all(hold_status(s3_client, locked_bucket, row["s3_key"]) == "OFF" for row in rows.values())
    run, _ = _run(hold_dag, _conf(locked_bucket, key_template=layout % "14"), "Approve")
    assert _states(run)[APPLY] == "success"
    assert hold_status(s3_client, locked_bucket, rows["s-1"]["s3_key"]) == "ON"
