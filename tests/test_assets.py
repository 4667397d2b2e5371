"""The archive's Asset: URIs from the bucket and prefix, the ``ringcx://`` fallback and its normaliser, the
event's extra, and the provider info's ``asset-uris`` entry that Airflow resolves."""

from __future__ import annotations

import pytest
from airflow.sdk import Asset

from airflow_provider_ringcx import get_provider_info
from airflow_provider_ringcx.assets import (
    ASSET_NAME,
    ASSET_SCHEME,
    FALLBACK_URI,
    archive_asset,
    archive_uri,
    event_extra,
    names_this_archive,
    sanitize_uri,
)
from airflow_provider_ringcx.example_dags import settings


def test_uri_is_the_archive_prefix_or_the_sub_accounts_part() -> None:
    assert archive_uri("call-archive", "/ringcx/") == "s3://call-archive/ringcx"
    assert archive_uri("call-archive", "") == "s3://call-archive"
    assert archive_uri("b", "a/b", sub_account_id="12/3") == "s3://b/a/b/sub_account=12%2F3"
    asset = archive_asset("call-archive")
    assert (asset.name, asset.uri) == (ASSET_NAME, "s3://call-archive/ringcx")


def test_without_a_parse_time_bucket_the_custom_scheme_is_used() -> None:
    assert settings.archive_asset({}).uri == Asset(name="x", uri=FALLBACK_URI).uri
    from_env = settings.archive_asset({"RINGCX_BUCKET": "b1", "RINGCX_PREFIX": "calls"})
    assert (from_env.name, from_env.uri) == (ASSET_NAME, "s3://b1/calls")


def test_the_provider_declares_its_scheme_with_a_normaliser_airflow_uses() -> None:
    [entry] = get_provider_info()["asset-uris"]
    assert entry == {"schemes": [ASSET_SCHEME], "handler": "airflow_provider_ringcx.assets.sanitize_uri"}
    from airflow.providers_manager import ProvidersManager

    assert ProvidersManager().asset_uri_handlers[ASSET_SCHEME] is sanitize_uri
    assert Asset(name="a", uri="ringcx://Recordings-Archive/").uri == "ringcx://recordings-archive/"
    with pytest.raises(ValueError, match="name the archive"):
        Asset(name="a", uri="ringcx:///nothing")
    with pytest.raises(ValueError, match="take no query"):
        Asset(name="a", uri="ringcx://recordings-archive?sub=1")


def test_event_extra_has_window_sub_account_counts_and_location() -> None:
    report = {
        "window": {"start": "2026-03-02T14:00:00Z", "end": "2026-03-02T14:15:00Z", "key": "W"},
        "counts": {"expected": 3, "archived": 2, "not_archived": 1, "bytes": 9, "by_status": {"x": 1}},
        "complete": False, "sub_account_id": "42", "bucket": "b", "report_key": "r.json",
    }  # fmt: skip
    extra = event_extra(report, "rec")
    assert extra == {
        "expected": 3, "archived": 2, "not_archived": 1, "bytes": 9, "complete": False, "window": "W",
        "sub_account_id": "42", "bucket": "b", "report_key": "r.json",
        "window_start": "2026-03-02T14:00:00Z", "window_end": "2026-03-02T14:15:00Z", "archive": "s3://b/rec",
    }  # fmt: skip


def test_an_s3_asset_of_another_bucket_is_noticed() -> None:
    assert names_this_archive("s3://b/rec", "b", "rec", "42")
    assert names_this_archive("s3://b/rec/sub_account=42", "b", "rec", "42")
    assert not names_this_archive("s3://other/rec", "b", "rec", "42")
    assert names_this_archive(FALLBACK_URI, "b", "rec", "42")  # names no S3 place
