"""What both RingCX operators share: the RingCX hook and the S3 hook, created on first use."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_ringcx.exceptions import connection_not_defined
from airflow_provider_ringcx.failfast import wrap_entry_points
from airflow_provider_ringcx.s3.options import OPTION_NAMES, S3WriteOptions

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook


class RingCXToS3BaseOperator(BaseOperator):
    """Base of the RingCX operators: ``hook`` and ``s3_hook`` from ``ringcx_conn_id`` and ``aws_conn_id``.

    Both are ``cached_property``: no connection is looked up at DAG parse time. Every ``execute*`` method
    of a subclass fails without retries on a configuration error (:mod:`airflow_provider_ringcx.failfast`).
    """

    ringcx_conn_id: str
    aws_conn_id: str | None
    #: the class of the hook's requests in the shared budgets (``"history"`` for a backfill); the metadata
    #: and download operators take it as an argument
    budget_priority: str = "live"
    #: the sub-account archived instead of the connection's (``None``: the connection's); the metadata,
    #: download and report operators take it as an argument (templated)
    sub_account_id: str | None = None

    def __init__(
        self,
        *,
        server_side_encryption: str | None = None,
        kms_key_id: str | None = None,
        storage_class: str | None = None,
        tags: Mapping[str, str] | None = None,
        object_lock_mode: str | None = None,
        object_lock_retention_days: int | str | None = None,
        object_lock_legal_hold: bool | str = False,
        **kwargs: Any,
    ) -> None:
        """The compliance options of what the task writes (:data:`OPTION_NAMES`, templated in every
        subclass): one signature for all the operators, read by :meth:`write_options`."""
        super().__init__(**kwargs)
        self.server_side_encryption = server_side_encryption
        self.kms_key_id = kms_key_id
        self.storage_class = storage_class
        self.tags = tags
        self.object_lock_mode = object_lock_mode
        self.object_lock_retention_days = object_lock_retention_days
        self.object_lock_legal_hold = object_lock_legal_hold

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        wrap_entry_points(cls)  # once, for every task entry point (execute, execute_complete, resumes...)

    @cached_property
    def hook(self) -> RingCXHook:
        """The RingCX hook (created on first use, never at DAG parse time)."""
        from airflow_provider_ringcx.hooks.ringcx import RingCXHook

        return RingCXHook(
            ringcx_conn_id=self.ringcx_conn_id,
            sub_account_id=str(self.sub_account_id) if self.sub_account_id else None,
            budget_priority=self.budget_priority,
        )

    @cached_property
    def s3_hook(self) -> S3Hook:
        """The Amazon provider's S3 hook for ``aws_conn_id`` (see :func:`s3_hook`)."""
        return s3_hook(self.aws_conn_id)

    def write_options(self) -> S3WriteOptions:
        """The compliance options of everything this task writes, from its (rendered) arguments named in
        :data:`~airflow_provider_ringcx.s3.options.OPTION_NAMES`; raises RingCXConfigError naming a bad one.
        """
        return S3WriteOptions.from_settings({name: getattr(self, name) for name in OPTION_NAMES})


def s3_hook(aws_conn_id: str | None) -> S3Hook:
    """The Amazon provider's S3 hook for ``aws_conn_id``, refusing a conn id that names no connection.

    The Amazon provider falls back to boto3's default credentials and endpoint for a conn id it cannot
    find, i.e. possibly another account's bucket of the same name, silently. Here a named connection must
    exist; only the provider's default, ``aws_default``, may be absent (IAM roles: instance profile, IRSA,
    ECS task role), and then the fallback is logged. ``aws_conn_id=None`` asks for it explicitly.

    :raises RingCXConfigError: ``aws_conn_id`` names no connection (and is not ``aws_default``).
    """
    if aws_conn_id:
        try:
            S3Hook.get_connection(aws_conn_id)
        except AirflowNotFoundException:
            if aws_conn_id != S3Hook.default_conn_name:
                raise connection_not_defined(
                    aws_conn_id,
                    label="AWS",
                    conn_type="Amazon Web Services",
                    param="aws_conn_id",
                    alternative="an existing one (None uses boto3's default credentials)",
                ) from None
            log.warning(
                "AWS connection %r is not defined: using boto3's default credentials and endpoint "
                "(an IAM role, or the AWS_* environment variables)",
                aws_conn_id,
            )
    return S3Hook(aws_conn_id=aws_conn_id)
