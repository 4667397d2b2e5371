"""The ``[ringcx] sub_accounts`` listing: ids or JSON objects, and a typed error naming each bad entry."""

from __future__ import annotations

import pytest

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.subaccounts.listing import SubAccount, check_sub_account_id, parse_listing


@pytest.mark.parametrize("text", [None, "", "   ", "[]"])
def test_unset_or_empty_is_no_listing(text: str | None) -> None:
    assert parse_listing(text) == ()


def test_comma_separated_ids() -> None:
    assert parse_listing(" 11111111, 22222222 ,") == (SubAccount("11111111"), SubAccount("22222222"))


def test_json_ids_and_objects_with_a_name_and_overrides() -> None:
    listing = parse_listing(
        '[11111111, {"id": "22222222", "name": " West ", "prefix": "west", "object_lock_retention_days": 90}]'
    )
    assert listing[0] == SubAccount("11111111")
    west = listing[1]
    assert (west.id, west.name, dict(west.overrides)) == (
        "22222222", "West", {"prefix": "west", "object_lock_retention_days": 90}
    )  # fmt: skip
    assert west.label == "West (22222222)"
    assert west.suffixed("ringcx_recordings_to_s3") == "ringcx_recordings_to_s3__22222222"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1,", "is not valid JSON"),
        ('"11111111"', "the sub-account id '\"11111111\"' must be letters"),  # read as ids: " is no id char
        ("111, 2 2", "entry 2: the sub-account id '2 2' must be letters, digits, - and _ only"),
        ("111,111", "entry 2: sub-account 111 is listed twice"),
        ('[{"name": "East"}]', 'entry 1 ({"name": "East"}) has no "id"'),
        ("[true]", "entry 1: the sub-account id True is not a string"),
        ('[{"id": "1", "name": ""}]', '"name" must be a non-empty string'),
        ("[../etc]", "is not valid JSON"),
        ("east/west", "entry 1: the sub-account id 'east/west'"),
    ],
)
def test_an_invalid_listing_names_the_entry_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(RingCXConfigError, match="sub_accounts") as info:
        parse_listing(text)
    assert message in str(info.value)


def test_ids_follow_the_connection_fields_rule() -> None:
    assert check_sub_account_id(12345, "x") == "12345"
    assert check_sub_account_id(" ab-c_1 ", "x") == "ab-c_1"
    with pytest.raises(RingCXConfigError, match="x: the sub-account id 'é1'"):
        check_sub_account_id("é1", "x")
