"""What both RingCX operators share: the RingCX hook and the S3 hook, created on first use."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import BaseOperator

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
        """The Amazon provider's S3 hook for ``aws_conn_id``."""
        return S3Hook(aws_conn_id=self.aws_conn_id)
