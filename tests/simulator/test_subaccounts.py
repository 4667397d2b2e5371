"""The admin listing of a main account's sub-accounts (``GET .../admin/accounts/{main}/subaccounts``)."""

from __future__ import annotations

import pytest
import requests

from tests.simulator.helpers import WINDOW, bearer, login, post_metadata

SUBACCOUNTS = "/voice/api/integration/v1/admin/accounts/{main}/subaccounts"


def test_lists_served_sub_accounts_active_and_the_inactive_ones(make_simulator):
    sim = make_simulator(sub_account_ids="11111111,22222222", inactive_sub_account_ids="33333333")
    token = login(sim.url)["accessToken"]
    response = requests.get(sim.url + SUBACCOUNTS.format(main="99990000"), headers=bearer(token), timeout=5)
    assert response.status_code == 200
    assert [(a["subAccountId"], a["isActive"]) for a in response.json()] == [
        ("11111111", True),
        ("22222222", True),
        ("33333333", False),
    ]
    assert all(a["subAccountName"] for a in response.json())
    # an inactive sub-account's data routes answer 403
    denied = post_metadata(sim, token, WINDOW, sub="33333333")
    assert denied.status_code == 403


def test_default_lists_one_inactive_and_refuses_other_main_accounts(simulator):
    token = login(simulator.url)["accessToken"]
    listed = requests.get(
        simulator.url + SUBACCOUNTS.format(main="99990000"), headers=bearer(token), timeout=5
    )
    assert [a["isActive"] for a in listed.json()] == [True, False]
    other = requests.get(simulator.url + SUBACCOUNTS.format(main="12345"), headers=bearer(token), timeout=5)
    assert other.status_code == 403
    anonymous = requests.get(simulator.url + SUBACCOUNTS.format(main="99990000"), timeout=5)
    assert anonymous.status_code == 401


def test_overlapping_lists_are_refused():
    from ringcx_simulator.config import SimConfig

    with pytest.raises(ValueError, match="in both"):
        SimConfig(sub_account_ids=("1",), inactive_sub_account_ids=("1",))
