"""Two sub-accounts, two live DAGs, one simulator and one connection: ``dag.test()`` runs over HTTP.

``[ringcx] sub_accounts`` (``AIRFLOW__RINGCX__SUB_ACCOUNTS``) lists two sub-accounts of the simulator's
main account; the ``dags/`` folder is parsed with it set (as the dag processor would) and each
sub-account's DAG is run for the same window. The second sub-account's metadata answers 403 (a fault
rule matching its path): its DAG fails, and the first's archives every recording under its own prefix
override, with its own Object Lock retention, verified against the simulator's ground truth. A third
listed sub-account is inactive in RingCX (``isActive=false`` in the admin listing): its run is refused at
``resolve_run`` with the fix named, by the listed DAGs' default, while an active one archives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_ringcx.keys import DEFAULT_KEY_TEMPLATE, recording_key, report_key
from tests.fixtures.airflow_dag import DAGS
from tests.fixtures.s3 import list_keys
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

UTC = timezone.utc
RUN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # archives 14:00-14:15 (15-minute lag)
W_START, W_END = datetime(2026, 3, 2, 14, 0, tzinfo=UTC), datetime(2026, 3, 2, 14, 15, tzinfo=UTC)
EAST, WEST, GONE = "11111111", "22222222", "33333333"  # GONE: listed, but inactive in RingCX
LISTING = json.dumps([
    {"id": EAST, "name": "East", "prefix": "east", "object_lock_mode": "GOVERNANCE",
     "object_lock_retention_days": 30},
    {"id": WEST, "prefix": "west"},
    GONE,
])  # fmt: skip
LIVE = "ringcx_recordings_to_s3"


@pytest.fixture
def listed_sub_accounts(
    example_dag: Any, make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The listing set, the simulator serving two of its sub-accounts (WEST's metadata 403s; GONE is
    inactive), ``dags/`` parsed into the DB with it; returns the parsed DAGs by id."""
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    handle = make_simulator(
        calls_per_hour=40, seed=7, sub_account_ids=f"{EAST},{WEST}", inactive_sub_account_ids=GONE
    )
    handle.control.set_faults(
        [{"route": "metadata", "kind": "status", "status": 403, "match": f"/sub-accounts/{WEST}/"}]
    )
    # one connection: its own sub_account_id is EAST; the DAGs override it
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle, sub_account_id=EAST))
    monkeypatch.setenv("AIRFLOW__RINGCX__SUB_ACCOUNTS", LISTING)
    monkeypatch.setenv("RINGCX_RETRIES", "0")
    # the report keeps its own retries (a missing manifest may appear): no 30 s + 60 s wait for WEST's
    monkeypatch.setenv("RINGCX_RETRY_DELAY_SECONDS", "0")
    bag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return {"dags": bag.dags, "sim": handle}


def test_each_sub_account_has_its_dags_and_one_403_fails_only_its_own(
    listed_sub_accounts: dict[str, Any], aws_conn: str, locked_bucket: str, s3_client: Any
) -> None:
    dags, sim = listed_sub_accounts["dags"], listed_sub_accounts["sim"]
    assert LIVE not in dags  # with a listing, only the per-sub-account DAGs
    assert {f"{LIVE}__{EAST}", f"{LIVE}__{WEST}"} <= set(dags)
    conf = {"bucket": locked_bucket}
    west = dags[f"{LIVE}__{WEST}"].test(logical_date=RUN, run_conf=conf)
    east = dags[f"{LIVE}__{EAST}"].test(logical_date=RUN, run_conf=conf)
    assert west.state == "failed"
    states = _states(west)
    assert states["fetch_metadata_window"] == "failed"  # the 403: RingCXForbiddenError, not retried
    assert states["report_window"] == "failed"  # the window's verdict: nothing listed, nothing archived
    assert east.state == "success"
    assert not list_keys(s3_client, locked_bucket, "west/")  # nothing of WEST: its listing was refused

    expected = [
        s for s in sim.control.ground_truth(W_START, W_END, sub_account_id=EAST)
        if s["hasRecording"] and not s["restricted"]
    ]  # fmt: skip
    assert expected
    for segment in expected:
        key = recording_key(
            template=DEFAULT_KEY_TEMPLATE, prefix="east", sub_account_id=EAST, dialog_id=segment["dialogId"],
            segment_id=segment["segmentId"], when=_start(segment),
        )  # fmt: skip
        head = s3_client.head_object(Bucket=locked_bucket, Key=key)
        assert head["ObjectLockMode"] == "GOVERNANCE"
        retain = head["ObjectLockRetainUntilDate"]
        assert retain > W_START + timedelta(days=29), retain  # the override's 30 days, not the default
    report = json.loads(
        s3_client.get_object(Bucket=locked_bucket, Key=report_key("east", EAST, W_START, W_END))[
            "Body"
        ].read()
    )
    assert report["complete"] is True
    assert report["sub_account_id"] == EAST
    assert report["counts"]["archived"] == len(expected)


def test_the_sub_account_dags_have_their_own_pools_names_and_tags(
    listed_sub_accounts: dict[str, Any],
) -> None:
    dags = listed_sub_accounts["dags"]
    for kind in ("ringcx_recordings_to_s3", "ringcx_recordings_history", "ringcx_archive_audit"):
        assert kind not in dags
        for sub in (EAST, WEST, GONE):
            dag = dags[f"{kind}__{sub}"]
            assert f"sub_account:{sub}" in dag.tags
            assert sub in dag.dag_display_name
            pools = {task.pool for task in dag.tasks} - {"default_pool"}
            assert pools
            assert all(pool.endswith(f"__{sub}") for pool in pools), pools
    assert dags[f"{LIVE}__{EAST}"].dag_display_name == f"{LIVE} · East ({EAST})"
    assert dags[f"{LIVE}__{EAST}"].params["prefix"] == "east"


def _start(segment: dict) -> datetime:
    value = segment["segmentStartTimeMs"]
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _states(run: Any) -> dict[str, str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(TaskInstance).where(TaskInstance.run_id == run.run_id, TaskInstance.dag_id == run.dag_id)
        ).all()
        return {ti.task_id: str(ti.state) for ti in rows if ti.map_index < 0}


def test_an_inactive_sub_account_is_refused_by_default_and_an_active_one_archives(
    listed_sub_accounts: dict[str, Any],
    aws_conn: str,
    locked_bucket: str,
    s3_client: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """GONE stays in the listing after RingCX deactivated it: its run fails at resolve_run, before any
    metadata call, with a message naming it and the fix (the listed DAGs' default
    ``refuse_inactive_sub_account=True``, no run conf); EAST, in the same deployment, archives."""
    dags, sim = listed_sub_accounts["dags"], listed_sub_accounts["sim"]
    sim.control.reset_stats()
    conf = {"bucket": locked_bucket}  # no refuse_inactive_sub_account: the listed DAGs' default
    gone = dags[f"{LIVE}__{GONE}"].test(logical_date=RUN, run_conf=conf)
    assert gone.state == "failed"
    states = _states(gone)
    assert states["resolve_run"] == "failed"  # RingCXConfigError: failed at once, no retry
    assert states["fetch_metadata_window"] == "upstream_failed"
    logged = capsys.readouterr().out  # the task log (dag.test logs to stdout)
    assert f"sub-account {GONE} (Simulated sub-account {GONE}) is inactive in main account" in logged
    assert "Reactivate it in RingCX, or remove it from [ringcx] sub_accounts" in logged
    requests = sim.control.stats()["requests"]
    assert "metadata" not in requests  # refused before any metadata budget was spent
    assert requests["admin_subaccounts"] == {"200": 1}
    assert not list_keys(s3_client, locked_bucket, "ringcx/")  # GONE's prefix (the default): nothing written

    east = dags[f"{LIVE}__{EAST}"].test(logical_date=RUN, run_conf=conf)
    assert east.state == "success"
    assert sim.control.stats()["requests"]["admin_subaccounts"] == {"200": 2}  # EAST checked too, active
    expected = [
        s for s in sim.control.ground_truth(W_START, W_END, sub_account_id=EAST)
        if s["hasRecording"] and not s["restricted"]
    ]  # fmt: skip
    assert expected
    report = json.loads(
        s3_client.get_object(Bucket=locked_bucket, Key=report_key("east", EAST, W_START, W_END))[
            "Body"
        ].read()
    )
    assert report["complete"] is True
    assert report["counts"]["archived"] == len(expected)
    assert list_keys(s3_client, locked_bucket, "east/")
    assert not [key for key in list_keys(s3_client, locked_bucket) if f"sub_account={GONE}" in key]
