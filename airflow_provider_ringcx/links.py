"""Operator extra links: one click from a task in the Airflow UI to what it wrote in S3.

- :class:`RingCXS3PrefixLink` ("S3 recordings"): from a download task to the S3 prefix its window's
  recordings land under (the time partition of the key template, e.g. ``.../day=02/hour=14/``, named by
  :func:`airflow_provider_ringcx.keys.partition_prefix`).
- :class:`RingCXWindowManifestLink` ("Window manifest"): from a download task to its window's manifest,
  the one S3 object that lists exactly the window's recordings (each line names its segment's key).
- :class:`RingCXReportLink` ("Window report"): from the report task to the window's report object.

Why two links for a download task: S3 (its console, and the listings of S3-compatible stores) can filter
only by key prefix, and with the key layout the recordings of a 15-minute window share no prefix narrower
than their hour (``.../hour=14/{dialog_id}/...``; a key template with ``{minute}`` narrows it). So "S3
recordings" opens the narrowest prefix that holds the batch's recordings, and "Window manifest" opens
the window itself.

For AWS the link opens the S3 console; for a custom endpoint (MinIO, moto, any S3-compatible store) it is
the endpoint's own path-style URL (``{endpoint}/{bucket}?prefix=...`` for a prefix, which S3-compatible
servers answer with a listing, ``{endpoint}/{bucket}/{key}`` for an object).

Airflow 3 evaluates ``get_link`` on the worker when the task finishes (success or failure) and stores the
URL in XCom for the UI. The task pushes what the link needs (:class:`S3Location`: bucket, key or prefix,
endpoint, region, partition; no credentials) under :data:`S3_LINK_XCOM_KEY`,
:data:`MANIFEST_LINK_XCOM_KEY` or :data:`REPORT_LINK_XCOM_KEY` while it runs, as early as it can, so that a
failed task still has its link.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

#: XCom key of the download task's :class:`S3Location` (its window's prefix).
S3_LINK_XCOM_KEY = "ringcx_s3_link"
#: XCom key of the download task's :class:`S3Location` of its window manifest.
MANIFEST_LINK_XCOM_KEY = "ringcx_manifest_link"
#: XCom key of the report task's :class:`S3Location` (the report object).
REPORT_LINK_XCOM_KEY = "ringcx_report_link"
_AWS_DOMAINS = {"aws": "aws.amazon.com", "aws-cn": "amazonaws.cn", "aws-us-gov": "amazonaws-us-gov.com"}


@dataclass(frozen=True)
class S3Location:
    """An S3 object or prefix and the store it lives in.

    :param bucket: the bucket.
    :param key: an object key, or a prefix (``is_prefix``); ``""`` is the bucket root.
    :param is_prefix: whether ``key`` is a prefix (a "folder") rather than an object.
    :param endpoint_url: the custom S3 endpoint (MinIO, moto...); ``None`` for AWS.
    :param region: the bucket's region (AWS console links need it).
    :param partition: the AWS partition (``aws``, ``aws-cn``, ``aws-us-gov``).
    """

    bucket: str
    key: str
    is_prefix: bool = False
    endpoint_url: str | None = None
    region: str | None = None
    partition: str = "aws"

    def as_dict(self) -> dict[str, Any]:
        """The XCom form (small, no secrets)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> S3Location:
        """Read the XCom form back (unknown keys are ignored)."""
        return cls(
            bucket=str(data["bucket"]),
            key=str(data.get("key") or ""),
            is_prefix=bool(data.get("is_prefix")),
            endpoint_url=data.get("endpoint_url") or None,
            region=data.get("region") or None,
            partition=str(data.get("partition") or "aws"),
        )

    @classmethod
    def for_hook(cls, s3_hook: Any, bucket: str, key: str, *, is_prefix: bool = False) -> S3Location:
        """Describe ``bucket``/``key`` in the store of an Amazon provider ``S3Hook``.

        The endpoint is the connection's custom S3 endpoint (``endpoint_url`` or
        ``service_config.s3.endpoint_url``), the region and partition those of the hook's client; reading
        them makes no request.
        """
        endpoint = s3_hook.conn_config.get_service_endpoint_url("s3")
        meta = s3_hook.get_conn().meta
        return cls(
            bucket=bucket,
            key=key,
            is_prefix=is_prefix,
            endpoint_url=str(endpoint) if endpoint else None,
            region=getattr(meta, "region_name", None),
            partition=str(getattr(meta, "partition", None) or "aws"),
        )

    def url(self) -> str:
        """The URL to open: the AWS console for AWS, the endpoint itself for a custom endpoint."""
        if self.endpoint_url:
            return self._endpoint_url()
        return self._console_url()

    def _endpoint_url(self) -> str:
        base = f"{str(self.endpoint_url).rstrip('/')}/{quote(self.bucket, safe='')}"
        if self.is_prefix:
            return f"{base}?{urlencode({'prefix': self.key})}" if self.key else base
        return f"{base}/{quote(self.key, safe='/=')}"

    def _console_url(self) -> str:
        domain = _AWS_DOMAINS.get(self.partition, _AWS_DOMAINS["aws"])
        query: dict[str, str] = {}
        if self.region:
            query["region"] = self.region
        if self.is_prefix:
            path = f"s3/buckets/{quote(self.bucket, safe='')}"
            if self.key:
                query["prefix"] = self.key
            query["showversions"] = "false"
        else:
            path = f"s3/object/{quote(self.bucket, safe='')}"
            query["prefix"] = self.key
        return f"https://console.{domain}/{path}?{urlencode(query, quote_via=quote)}"


def push_location(context: Mapping[str, Any], key: str, location: S3Location) -> None:
    """Push ``location`` under ``key`` for the link (no-op outside a task, e.g. in unit tests)."""
    ti = context.get("ti")
    if ti is not None:
        ti.xcom_push(key=key, value=location.as_dict())


class _S3LocationLink(BaseOperatorLink):
    """A link built from an :class:`S3Location` the task pushed under :attr:`location_key`."""

    location_key = ""

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.location_key)
        if not isinstance(value, Mapping) or not value.get("bucket"):
            return ""  # the task stopped before it knew where it writes: no link
        return S3Location.from_dict(value).url()


class RingCXS3PrefixLink(_S3LocationLink):
    """From a download task to the S3 prefix of its window's recordings."""

    name = "S3 recordings"
    location_key = S3_LINK_XCOM_KEY


class RingCXWindowManifestLink(_S3LocationLink):
    """From a download task to its window's manifest (the list of exactly the window's recordings)."""

    name = "Window manifest"
    location_key = MANIFEST_LINK_XCOM_KEY


class RingCXReportLink(_S3LocationLink):
    """From the report task to the window's report object in S3."""

    name = "Window report"
    location_key = REPORT_LINK_XCOM_KEY
