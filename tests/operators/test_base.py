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
    assert "environment variable AIRFLOW_CONN_AWS_ARCHIVE-EU)" in str(info.value)  # as Airflow reads it


def test_defined_and_explicitly_absent_conn_ids_give_a_hook(aws_conn: str) -> None:
    assert s3_hook(aws_conn).aws_conn_id == aws_conn
    assert s3_hook(None).aws_conn_id is None  # None: boto3's defaults, asked for explicitly


def test_a_missing_aws_default_falls_back_to_boto3_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """IAM-role deployments (instance profile, IRSA, ECS task role) often define no aws_default."""
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    with caplog.at_level("WARNING"):
        assert s3_hook("aws_default").aws_conn_id == "aws_default"
    assert "using boto3's default credentials" in caplog.text
