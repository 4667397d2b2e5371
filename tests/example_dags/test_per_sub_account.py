"""One DAG per sub-account: the ``dags/`` folder parsed by a ``DagBag`` with ``[ringcx] sub_accounts`` set.

Unit tier: parsing reads the environment only (no connection, no network), which is the point of a
parse-time listing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.example_dags.per_sub_account import for_sub_account, sub_account_pools
from airflow_provider_ringcx.example_dags.settings import POOLS
from airflow_provider_ringcx.subaccounts.listing import SubAccount

DAGS = Path(__file__).resolve().parents[2] / "dags"
KINDS = ("ringcx_recordings_to_s3", "ringcx_recordings_history", "ringcx_archive_audit")


def _bag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def _ours(bag: Any) -> list[str]:
    """The DAG ids of the three example DAG files (other DAG files of ``dags/`` are not judged here)."""
    return [dag_id for dag_id in bag.dags if dag_id.split("__")[0] in KINDS]


def test_without_a_listing_the_dags_are_todays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__RINGCX__SUB_ACCOUNTS", raising=False)
    bag = _bag()
    assert bag.import_errors == {}
    assert sorted(_ours(bag)) == sorted(KINDS)
    live = bag.dags["ringcx_recordings_to_s3"]
    assert live.dag_display_name == "ringcx_recordings_to_s3"
    assert live.get_task("fetch_metadata_window").sub_account_id is None  # the connection's
    assert live.get_task("fetch_metadata_window").pool == "ringcx_metadata"
    assert "refuse_inactive_sub_account" not in live.get_task("resolve_run").op_kwargs["defaults"]


def test_a_listing_of_three_gives_three_dags_of_each_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = [
        {"id": "1001", "name": "East", "kms_key_id": "alias/east"},
        "1002",
        {"id": "a-3", "prefix": "x"},
    ]
    monkeypatch.setenv("AIRFLOW__RINGCX__SUB_ACCOUNTS", json.dumps(listing))
    monkeypatch.setenv("RINGCX_BUCKET", "archive")
    bag = _bag()
    assert bag.import_errors == {}
    assert sorted(_ours(bag)) == sorted(f"{kind}__{sub}" for kind in KINDS for sub in ("1001", "1002", "a-3"))
    east = bag.dags["ringcx_recordings_to_s3__1001"]
    assert east.dag_display_name == "ringcx_recordings_to_s3 · East (1001)"
    assert "sub_account:1001" in east.tags
    assert east.params["kms_key_id"] == "alias/east"  # the override is the DAG's param value
    assert east.params["prefix"] is None  # not overridden: Variable, env, default as before
    for task_id in ("fetch_metadata_window", "fetch_rescan_window"):
        assert east.get_task(task_id).sub_account_id == "1001"
    for task_id in ("download_segments", "download_late_segments"):
        assert east.get_task(task_id).partial_kwargs["sub_account_id"] == "1001"
    assert east.get_task("resolve_run").op_kwargs["sub_account_id"] == "1001"
    # the active check: a DAG default of the listed DAGs (an env, a Variable or the entry can turn it off)
    assert east.get_task("resolve_run").op_kwargs["defaults"]["refuse_inactive_sub_account"] is True
    assert east.params["refuse_inactive_sub_account"] is None
    assert east.get_task("fetch_metadata_window").pool == "ringcx_metadata__1001"
    assert east.get_task("download_segments").pool == "ringcx_downloads__1001"
    (asset,) = east.get_task("report_window").outlets
    assert (asset.name, asset.uri) == (
        "ringcx_recordings_archive__1001",
        "s3://archive/ringcx/sub_account=1001",
    )
    third = bag.dags["ringcx_recordings_to_s3__a-3"]
    assert third.get_task("report_window").outlets[0].uri == "s3://archive/x/sub_account=a-3"
    audit = bag.dags["ringcx_archive_audit__1002"]
    assert audit.get_task("refresh_ledger").op_kwargs["sub_account_id"] == "1002"
    assert audit.get_task("fetch_repair_windows").partial_kwargs["sub_account_id"] == "1002"
    assert audit.get_task("download_repairs").pool == "ringcx_history_downloads__1002"


@pytest.mark.parametrize(
    ("listing", "message"),
    [
        ('[{"id": "1", "prefx": "east"}]', "prefx is not a run setting"),
        (
            '[{"id": "1", "object_lock_retention_days": "30"}]',
            "object_lock_retention_days='30' is not a JSON integer",
        ),
        ("1,1", "sub-account 1 is listed twice"),
        ("[1", "is not valid JSON"),
    ],
)
def test_an_invalid_listing_is_an_import_error_naming_the_entry(
    monkeypatch: pytest.MonkeyPatch, listing: str, message: str
) -> None:
    monkeypatch.setenv("AIRFLOW__RINGCX__SUB_ACCOUNTS", listing)
    bag = _bag()
    errors = {path: text for path, text in bag.import_errors.items() if Path(path).stem in KINDS}
    assert set(errors) == {str(DAGS / f"{kind}.py") for kind in KINDS}
    for error in errors.values():
        assert "RingCXConfigError" in error
        assert message in error
        assert "sub_accounts" in error


def test_pools_per_sub_account_are_sized_like_the_shared_ones() -> None:
    pools = sub_account_pools([SubAccount("1001", "East"), SubAccount("1002")])
    assert len(pools) == 2 * len(POOLS)
    for name, (slots, description) in POOLS.items():
        assert pools[f"{name}__1001"] == (slots, f"{description}; sub-account East (1001)")
        assert pools[f"{name}__1002"][0] == slots


def test_no_sub_account_leaves_the_options_alone() -> None:
    from datetime import datetime, timezone

    from airflow_provider_ringcx.example_dags.factory import ArchiveDagOptions

    opts = ArchiveDagOptions(dag_id="d", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert for_sub_account(opts, None) is opts
