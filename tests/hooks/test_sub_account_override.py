"""``RingCXHook(sub_account_id=...)``: one connection's credentials, another sub-account's budgets and paths.

The metadata and download budgets, paths and keys follow the effective sub-account; the token (its cache
entry and its exchange budget) stays the connection's, because a RingCX token belongs to the credentials,
not to a sub-account: two sub-accounts' hooks share one exchange.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXForbiddenError
from airflow_provider_ringcx.hooks.ringcx import RingCXHook
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

EAST, WEST = "11111111", "22222222"
EXTRA: dict[str, Any] = {"jwt_token": "j", "rc_account_id": "980634004", "sub_account_id": EAST}


def _env_connection(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    extras = {key: value for key, value in {**EXTRA, **extra}.items() if value is not None}
    conn = {"conn_type": "ringcx", "login": "id", "password": "secret", "extra": extras}
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", json.dumps(conn))


def test_the_override_is_the_effective_sub_account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _env_connection(monkeypatch)
    hook = RingCXHook(sub_account_id=WEST, budget_dir=str(tmp_path))
    assert repr(hook) == f"RingCXHook(ringcx_conn_id='ringcx_default', sub_account_id='{WEST}')"
    assert hook.settings.sub_account_id == WEST
    assert hook.connection_settings.sub_account_id == EAST
    assert hook.budget("metadata").name.endswith(f"|{WEST}|metadata")
    assert hook.budget("download").name.endswith(f"|{WEST}|download")
    assert hook.budget("exchange").name.endswith(f"|{EAST}|exchange")  # the token's
    assert f"/sub-accounts/{WEST}/interaction-metadata" in hook.metadata.path
    assert f"/sub-accounts/{WEST}/" in hook.recording_path("d", "s")
    own = RingCXHook(budget_dir=str(tmp_path))
    assert own.settings.sub_account_id == EAST
    mine, theirs = hook.tokens.cache, own.tokens.cache
    assert mine is not None
    assert theirs is not None
    assert mine.path == theirs.path  # one token for both


def test_a_connection_for_many_need_not_name_a_sub_account(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _env_connection(monkeypatch, sub_account_id=None)
    assert RingCXHook(sub_account_id=WEST, budget_dir=str(tmp_path)).settings.sub_account_id == WEST
    with pytest.raises(RingCXConfigError, match="sub_account_id"):
        _ = RingCXHook(budget_dir=str(tmp_path)).settings  # without an override it is still required


@pytest.mark.parametrize("bad", ["a/b", "../x", "1 2"])
def test_a_bad_override_is_refused_at_construction(bad: str) -> None:
    with pytest.raises(RingCXConfigError, match="letters, digits"):
        RingCXHook(sub_account_id=bad)


def test_two_sub_accounts_share_one_exchange_and_list_their_own_metadata(
    make_simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sim: SimulatorHandle = make_simulator(calls_per_hour=40, seed=7, sub_account_ids=f"{EAST},{WEST}")
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(sim, sub_account_id=EAST))
    start, end = (
        datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc),
        datetime(2026, 3, 2, 14, 15, tzinfo=timezone.utc),
    )
    listed = {}
    for sub in (EAST, WEST):
        hook = RingCXHook(sub_account_id=sub, budget_dir=str(tmp_path))
        listed[sub] = {record.segment_id for record in hook.iter_interaction_metadata(start, end)}
        hook.close()
    for sub in (EAST, WEST):
        truth = {
            s["segmentId"] for s in sim.control.ground_truth(start, end, sub_account_id=sub, sha256=False)
        }
        assert listed[sub] == truth
        assert truth
    assert listed[EAST].isdisjoint(listed[WEST])
    requests = sim.control.stats()["requests"]
    assert requests["exchange"] == {"200": 1}  # the second hook reused the first one's token
    assert requests["metadata"] == {"200": 2}


def test_admin_listing_and_the_active_check(
    make_simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sim: SimulatorHandle = make_simulator(
        sub_account_ids=f"{EAST},{WEST}", inactive_sub_account_ids="33333333"
    )
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(sim, sub_account_id=EAST))
    hook = RingCXHook(budget_dir=str(tmp_path))
    statuses = hook.list_sub_accounts()
    assert [(s.sub_account_id, s.active) for s in statuses] == [
        (EAST, True),
        (WEST, True),
        ("33333333", False),
    ]
    hook.check_sub_account_active()  # EAST is active
    with pytest.raises(
        RingCXConfigError, match=r"sub-account 33333333 .* is inactive in main account 99990000"
    ):
        RingCXHook(sub_account_id="33333333", budget_dir=str(tmp_path)).check_sub_account_active()
    with pytest.raises(RingCXConfigError, match="is not a sub-account of main account 99990000"):
        RingCXHook(sub_account_id="44444444", budget_dir=str(tmp_path)).check_sub_account_active()
    with pytest.raises(RingCXForbiddenError):
        hook.list_sub_accounts("12345")  # another main account


def test_a_403_of_the_admin_api_names_the_role_and_the_setting_that_turns_the_check_off(
    make_simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The check cannot be made without the WFO_ACCESS role: a configuration error, not a bare 403."""
    sim: SimulatorHandle = make_simulator(sub_account_ids=f"{EAST},{WEST}")
    sim.control.set_faults([{"route": "admin_subaccounts", "kind": "status", "status": 403}])
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(sim, sub_account_id=EAST))
    with pytest.raises(RingCXConfigError) as caught:
        RingCXHook(budget_dir=str(tmp_path)).check_sub_account_active()
    message = str(caught.value)
    assert f"sub-account {EAST}" in message
    assert "WFO_ACCESS" in message
    assert "refuse_inactive_sub_account=false" in message
    assert isinstance(caught.value.__cause__, RingCXForbiddenError)
