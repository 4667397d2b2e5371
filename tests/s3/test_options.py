"""Compliance options: validation, the arguments they produce, and the Object Lock bucket check (moto)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXObjectLockError
from airflow_provider_ringcx.s3.options import S3WriteOptions


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"server_side_encryption": "aes"}, "server_side_encryption"),
        ({"kms_key_id": "k"}, "kms_key_id"),
        ({"server_side_encryption": "AES256", "kms_key_id": "k"}, "kms_key_id"),
        ({"object_lock_mode": "FOREVER", "object_lock_retention_days": 1}, "GOVERNANCE or COMPLIANCE"),
        ({"object_lock_mode": "COMPLIANCE"}, "retention_days"),
        ({"object_lock_retention_days": 30}, "object_lock_mode"),
        ({"tags": {"sha256": "x"}}, "reserved"),
        ({"tags": {"a": 1}}, "strings"),
    ],
)
def test_invalid_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RingCXConfigError, match=message):
        S3WriteOptions(**kwargs)


def test_extra_args_carry_every_option() -> None:
    options = S3WriteOptions(
        server_side_encryption="aws:kms",
        kms_key_id="alias/archive",
        storage_class="STANDARD_IA",
        tags={"team": "compliance", "data class": "pci"},
        object_lock_mode="compliance",
        object_lock_retention_days=10,
        object_lock_legal_hold=True,
    )
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)  # retained 8 more days
    args = options.extra_args(segment_end=end)
    assert args == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/archive",
        "StorageClass": "STANDARD_IA",
        "Tagging": "team=compliance&data+class=pci",
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetainUntilDate": end + timedelta(days=10),
        "ObjectLockLegalHoldStatus": "ON",
    }


def test_no_options_give_no_arguments() -> None:
    assert S3WriteOptions().extra_args() == {}
    assert not S3WriteOptions().locking


def test_lock_check_refuses_a_bucket_without_object_lock(s3_client: Any, bucket: str) -> None:
    options = S3WriteOptions(object_lock_mode="GOVERNANCE", object_lock_retention_days=1)
    with pytest.raises(RingCXObjectLockError, match=f"bucket {bucket!r} is not Object-Lock enabled"):
        options.check_bucket(s3_client, bucket)
    with pytest.raises(RingCXObjectLockError):
        S3WriteOptions(object_lock_legal_hold=True).check_bucket(s3_client, bucket)


def test_lock_check_accepts_a_locked_bucket_and_skips_when_not_locking(
    s3_client: Any, locked_bucket: str, bucket: str
) -> None:
    S3WriteOptions(object_lock_mode="COMPLIANCE", object_lock_retention_days=1).check_bucket(
        s3_client, locked_bucket
    )
    S3WriteOptions().check_bucket(s3_client, bucket)  # no call needed, no error


@pytest.mark.parametrize(("value", "hold"), [("false", False), ("False", False), ("0", False), ("true", True),
                                             (True, True), (None, False), ("", False)])  # fmt: skip
def test_legal_hold_text_from_a_template_is_parsed_not_truth_tested(value: object, hold: bool) -> None:
    """``bool("false")`` is True: a rendered ``"false"`` used to put a legal hold on manifest and report."""
    assert S3WriteOptions.from_settings({"object_lock_legal_hold": value}).object_lock_legal_hold is hold


def test_legal_hold_that_is_not_a_boolean_is_refused_naming_it() -> None:
    with pytest.raises(RingCXConfigError, match="object_lock_legal_hold='maybe' is not a boolean"):
        S3WriteOptions.from_settings({"object_lock_legal_hold": "maybe"})


def test_every_operator_takes_and_templates_the_write_options_through_one_seam() -> None:
    """The compliance options are one signature (the base operator's), templated in every operator: the
    download task's legal hold renders from a template as the manifest's and the report's do."""
    import inspect

    from airflow_provider_ringcx.operators.base import RingCXToS3BaseOperator
    from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
    from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
    from airflow_provider_ringcx.operators.report import RingCXWindowReportOperator
    from airflow_provider_ringcx.s3.options import OPTION_NAMES

    assert set(OPTION_NAMES) <= set(inspect.signature(RingCXToS3BaseOperator.__init__).parameters)
    for operator in (
        RingCXInteractionMetadataOperator,
        RingCXRecordingsToS3Operator,
        RingCXWindowReportOperator,
    ):
        assert set(OPTION_NAMES) <= set(operator.template_fields), operator.__name__
        assert not set(OPTION_NAMES) & set(inspect.signature(operator.__init__).parameters), operator.__name__
    op = RingCXRecordingsToS3Operator(
        task_id="t", batch=[], bucket="b", object_lock_legal_hold="true", storage_class="STANDARD_IA"
    )
    assert op.write_options().object_lock_legal_hold is True
    assert op.write_options().storage_class == "STANDARD_IA"


def test_retain_until_is_the_records_retention_or_a_future_midnight_for_old_history() -> None:
    """S3 refuses a retain-until date in the past (moto does not): a backfill older than the retention gets
    the first midnight UTC at least a day ahead; recent records keep end + days exactly."""
    options = S3WriteOptions(object_lock_mode="COMPLIANCE", object_lock_retention_days=30)
    now = datetime(2026, 12, 2, 9, 30, tzinfo=timezone.utc)
    recent = datetime(2026, 12, 1, 14, 15, tzinfo=timezone.utc)
    assert options.retain_until(recent, now=now) == recent + timedelta(days=30)
    old = datetime(2025, 1, 6, 10, 0, tzinfo=timezone.utc)  # 30 days ran out long ago
    retention = options.retention(old, now=now)
    assert retention is not None
    assert retention.by_rule == datetime(2025, 2, 5, 10, 0, tzinfo=timezone.utc)
    assert retention.retain_until == datetime(2026, 12, 4, tzinfo=timezone.utc)  # >= now + 1 day, midnight
    assert retention.floored
    assert options.extra_args(segment_end=old)["ObjectLockRetainUntilDate"] > datetime.now(timezone.utc)
    # about to run out: floored too (the date must be a day ahead); one run gives one date
    almost = now - timedelta(days=30) + timedelta(hours=2)
    assert options.retain_until(almost, now=now) == datetime(2026, 12, 4, tzinfo=timezone.utc)
    assert options.retain_until(old, now=now + timedelta(hours=10)) == datetime(
        2026, 12, 4, tzinfo=timezone.utc
    )
    assert retention.as_dict() == {
        "counted_from": "2025-01-06T10:00:00Z",
        "days": 30,
        "retain_until_by_rule": "2025-02-05T10:00:00Z",
        "retain_until": "2026-12-04T00:00:00Z",
        "floored": True,
    }
    assert S3WriteOptions().retention(old) is None
