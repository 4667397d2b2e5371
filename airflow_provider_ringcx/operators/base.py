"""What both RingCX operators share: the RingCX hook and the S3 hook, created on first use."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_ringcx.exceptions import RingCXConfigError

if TYPE_CHECKING:
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook


class RingCXToS3BaseOperator(BaseOperator):
    """Base of the RingCX operators: ``hook`` and ``s3_hook`` from ``ringcx_conn_id`` and ``aws_conn_id``.

    Both are ``cached_property``: no connection is looked up at DAG parse time.
    """

    ringcx_conn_id: str
    aws_conn_id: str | None

    @cached_property
    def hook(self) -> RingCXHook:
        """The RingCX hook (created on first use, never at DAG parse time)."""
        from airflow_provider_ringcx.hooks.ringcx import RingCXHook

        return RingCXHook(ringcx_conn_id=self.ringcx_conn_id)

    @cached_property
    def s3_hook(self) -> S3Hook:
        """The Amazon provider's S3 hook for ``aws_conn_id`` (see :func:`s3_hook`)."""
        return s3_hook(self.aws_conn_id)


def s3_hook(aws_conn_id: str | None) -> S3Hook:
    """The Amazon provider's S3 hook for ``aws_conn_id``, refusing a conn id that names no connection.

    (The Amazon provider would fall back to boto3's default credentials and endpoint, i.e. possibly
    another account's bucket of the same name; ``aws_conn_id=None`` asks for that explicitly.)

    :raises RingCXConfigError: ``aws_conn_id`` names no connection.
    """
    if aws_conn_id:
        try:
            S3Hook.get_connection(aws_conn_id)
        except AirflowNotFoundException:
            raise RingCXConfigError(
                f"AWS connection {aws_conn_id!r} is not defined: create it (type 'Amazon Web Services', or "
                f"the environment variable AIRFLOW_CONN_{aws_conn_id.upper().replace('-', '_')}) or set "
                "aws_conn_id to an existing one (None uses boto3's default credentials)"
            ) from None
    return S3Hook(aws_conn_id=aws_conn_id)
