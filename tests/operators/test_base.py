"""The shared S3 hook factory refuses an aws conn id that names no connection (instead of the Amazon
provider's silent fallback to boto3's default credentials and endpoint)."""

from __future__ import annotations

import pytest

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.operators.base import s3_hook


def test_unknown_aws_conn_id_is_named_with_the_fix() -> None:
    with pytest.raises(
        RingCXConfigError, match=r"AWS connection 'aws_archive-eu' is not defined: create it"
    ) as info:
        s3_hook("aws_archive-eu")
    assert "AIRFLOW_CONN_AWS_ARCHIVE_EU" in str(info.value)


def test_defined_and_explicitly_absent_conn_ids_give_a_hook(aws_conn: str) -> None:
    assert s3_hook(aws_conn).aws_conn_id == aws_conn
    assert s3_hook(None).aws_conn_id is None  # None: boto3's defaults, asked for explicitly
