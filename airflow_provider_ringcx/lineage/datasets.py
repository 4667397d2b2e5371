"""The OpenLineage datasets and facets of the RingCX operators (see :mod:`airflow_provider_ringcx.lineage`).

Every OpenLineage import is inside a function: importing this module needs no OpenLineage package.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_ringcx import keys

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

#: Where the ``ringcx_archive`` run facet's fields are described (its ``_schemaURL``).
FACET_SCHEMA_URL = (
    "https://github.com/airflow-provider-ringcx/airflow-provider-ringcx/blob/main/docs/compliance.md"
    "#openlineage"
)
#: The key of the provider's run facet in every event.
RUN_FACET = "ringcx_archive"


def http_dataset(url: str, path: str) -> Any:
    """The OpenLineage dataset of an HTTP API path: namespace ``scheme://host[:port]``, name the path.

    :param url: the API's base URL (only its scheme, host, port and path are used).
    :param path: the vendor path under it.
    """
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    name = "/" + "/".join(piece for piece in (parts.path.strip("/"), path.strip("/")) if piece)
    return Dataset(namespace=f"{parts.scheme.lower()}://{host}{port}", name=name)


def ringcx_input(settings: Any, resource: str, sub_account_id: str | None = None) -> Any:
    """The input dataset of one RingCX resource of a sub-account (default: the connection's).

    :param settings: the hook's :class:`~airflow_provider_ringcx.hooks.settings.RingCXSettings`.
    :param resource: ``"interaction-metadata"`` or ``"recordings"``.
    :param sub_account_id: the task's sub-account, when it is not the connection's.
    """
    from urllib.parse import quote

    path = (
        f"/voice/api/cx/integration/v1/accounts/{quote(str(settings.rc_account_id), safe='')}"
        f"/sub-accounts/{quote(str(sub_account_id or settings.sub_account_id), safe='')}/{resource}"
    )
    return http_dataset(settings.api_url, path)


def s3_output(bucket: str, name: str, *, files: int | None = None, size: int | None = None,
              rows: int | None = None) -> Any:  # fmt: skip
    """The output dataset ``s3://{bucket}`` / ``name``, with ``outputStatistics`` when counts are given."""
    from airflow.providers.common.compat.openlineage.facet import (
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )

    facets: dict[str, Any] = {}
    if files is not None or size is not None or rows is not None:
        statistics = OutputStatisticsOutputDatasetFacet(rowCount=rows, size=size, fileCount=files)
        facets["outputStatistics"] = statistics
    return OutputDataset(namespace=f"s3://{bucket}", name=name.strip("/") or "/", outputFacets=facets)


def s3_input(bucket: str, name: str) -> Any:
    """The input dataset ``s3://{bucket}`` / ``name`` (the report reads the window's archive)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    return Dataset(namespace=f"s3://{bucket}", name=name.strip("/") or "/")


@functools.cache
def _facet_class() -> type:
    """The ``ringcx_archive`` run facet class (built on first use: its base class is OpenLineage's)."""
    import attr
    from airflow.providers.common.compat.openlineage.facet import RunFacet

    @attr.define
    class RingCXArchiveRunFacet(RunFacet):
        """What one RingCX task did: its window, sub-account and outcome counts (``archived``, ...)."""

        sub_account_id: str = attr.field(default="")
        window_start: str | None = attr.field(default=None)
        window_end: str | None = attr.field(default=None)
        counts: dict[str, int] = attr.field(factory=dict)
        bytes_archived: int | None = attr.field(default=None)
        state: str = attr.field(default="running")

        @staticmethod
        def _get_schema() -> str:
            return FACET_SCHEMA_URL

    return RingCXArchiveRunFacet


def archive_run_facet(*, sub_account_id: str, window: tuple[datetime, datetime] | None,
                      counts: Mapping[str, int] | None = None, bytes_archived: int | None = None,
                      state: str = "running") -> Any:  # fmt: skip
    """The ``ringcx_archive`` run facet (ids and counts only: nothing secret, nothing per recording)."""
    start, end = window or (None, None)
    return _facet_class()(
        sub_account_id=str(sub_account_id),
        window_start=start.isoformat() if start else None,
        window_end=end.isoformat() if end else None,
        counts={
            str(name): int(value)
            for name, value in (counts or {}).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        },
        bytes_archived=bytes_archived,
        state=state,
    )


def lineage(inputs: list[Any], outputs: list[Any], run_facet: Any | None = None) -> OperatorLineage:
    """The operator's :class:`OperatorLineage` (the OpenLineage provider's type, imported here)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(
        inputs=inputs, outputs=outputs, run_facets={RUN_FACET: run_facet} if run_facet is not None else {}
    )


def window_of_manifest(manifest_key: str | None) -> tuple[datetime, datetime] | None:
    """The window a manifest key names (``.../window={START}_{END}.jsonl``), or ``None``."""
    if not manifest_key:
        return None
    name = manifest_key.rsplit("/", 1)[-1]
    if not name.startswith("window="):
        return None
    return keys.parse_window_part(name[len("window=") :].split(".", 1)[0])


def window_recordings_prefix(*, key_template: str, prefix: str | None, sub_account_id: str,
                             window: tuple[datetime, datetime] | None) -> str:  # fmt: skip
    """The narrowest S3 prefix holding every recording of ``window`` (the downloads' output dataset): the
    same for each batch of a window, so the lineage graph has one node per window, not per batch."""
    starts = [] if window is None else [window[0], max(window[0], window[1] - timedelta(microseconds=1))]
    return keys.partition_prefix(
        template=key_template, prefix=prefix, sub_account_id=sub_account_id, starts=starts
    )
