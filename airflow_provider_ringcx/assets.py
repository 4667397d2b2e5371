"""The archive as an Airflow Asset: its URI is where it lies in S3, its events say which window landed.

**The URI.** An Asset's URI is fixed when the DAG file is parsed, while the bucket is a run setting (a
param, a Variable or ``RINGCX_BUCKET``, read when the run starts). So the shipped DAG builds its Asset
from the parse-time environment (:func:`airflow_provider_ringcx.example_dags.settings.archive_asset`):

- with ``RINGCX_BUCKET`` set where the DAG is parsed (the usual deployment: one archive bucket), the URI
  is the archive's S3 location, ``s3://{bucket}/{prefix}`` (``RINGCX_PREFIX``, default ``ringcx``), the
  Amazon provider's ``s3`` scheme, so lineage and Asset-aware tools see the real place; with a
  sub-account (:func:`archive_uri`'s ``sub_account_id``, for one DAG per sub-account) it is that
  sub-account's part of the default layout, ``s3://{bucket}/{prefix}/sub_account={id}``;
- without it, the URI falls back to :data:`FALLBACK_URI` (``ringcx://recordings-archive``), a scheme this
  provider declares (``asset-uris`` in the provider info, normalised by :func:`sanitize_uri`).

The Asset's *name* is always :data:`ASSET_NAME`, so downstream DAGs can schedule on
``Asset(name="ringcx_recordings_archive")`` whatever the URI is. A run whose bucket differs from the
parse-time one (a param given in the trigger form) still archives correctly; the report task logs that the
Asset names another place, and the event's ``extra["archive"]`` is always the run's real location.

**The event.** :func:`event_extra`: the window (``window_start``, ``window_end`` ISO-8601, ``window``
key), the ``sub_account_id``, the counts of the report (``expected``, ``archived``, ``not_archived``,
``bytes``...), ``complete``, and where the report and the archive are (``bucket``, ``report_key``,
``archive``). A few hundred bytes: the event is stored in the metadata DB.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from airflow_provider_ringcx.keys import normalize_prefix, safe_id

if TYPE_CHECKING:
    from airflow.sdk import Asset

#: The name of the archive's Asset (stable: downstream DAGs schedule on it).
ASSET_NAME = "ringcx_recordings_archive"
#: This provider's Asset URI scheme, for an archive whose bucket is not known at parse time.
ASSET_SCHEME = "ringcx"
#: The URI of the archive's Asset when no bucket is known at parse time.
FALLBACK_URI = f"{ASSET_SCHEME}://recordings-archive"


def archive_uri(bucket: str, prefix: str | None = "ringcx", sub_account_id: str | None = None) -> str:
    """``s3://{bucket}/{prefix}`` (``/sub_account={id}`` with a sub-account), as Airflow normalises it."""
    parts = [normalize_prefix(prefix)]
    if sub_account_id:
        parts.append(f"sub_account={safe_id(str(sub_account_id))}")
    path = "/".join(part for part in parts if part)
    return f"s3://{bucket}/{path}" if path else f"s3://{bucket}"


def archive_asset(
    bucket: str | None = None,
    prefix: str | None = "ringcx",
    *,
    sub_account_id: str | None = None,
    name: str = ASSET_NAME,
) -> Asset:
    """The archive's Asset: its S3 location when the bucket is known, else :data:`FALLBACK_URI`."""
    from airflow.sdk import Asset

    uri = archive_uri(bucket, prefix, sub_account_id) if bucket else FALLBACK_URI
    return Asset(name=name, uri=uri)


def event_extra(report: Mapping[str, Any], prefix: str | None) -> dict[str, Any]:
    """The ``extra`` of the Asset event of a reported window (see the module docstring)."""
    from airflow_provider_ringcx.report import xcom_counts  # not at import: the provider info imports us

    window = report.get("window") or {}
    return {
        **xcom_counts(report),
        "window_start": window.get("start"),
        "window_end": window.get("end"),
        "archive": archive_uri(str(report["bucket"]), prefix),
    }


def names_this_archive(uri: str, bucket: str, prefix: str | None, sub_account_id: str) -> bool:
    """Whether an ``s3://`` Asset URI is this run's archive (its prefix, or its sub-account's part);
    URIs of other schemes name no S3 place and are not judged (``True``)."""
    if not uri.startswith("s3://"):
        return True
    return uri in (archive_uri(bucket, prefix), archive_uri(bucket, prefix, sub_account_id))


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Normaliser of ``ringcx://`` Asset URIs (declared under ``asset-uris`` in the provider info).

    Airflow has already lower-cased the scheme, dropped the fragment and trailing slashes. The host names
    the archive (``recordings-archive``): it is required and lower-cased (host names are not case
    sensitive, so ``ringcx://Recordings-Archive`` is the same Asset). A query is refused: an Asset's
    identity must not depend on parameters.

    :raises ValueError: no archive name after ``ringcx://``, or a query.
    """
    if not uri.netloc:
        raise ValueError(f"{ASSET_SCHEME}:// Asset URIs name the archive, e.g. {FALLBACK_URI}")
    if uri.query:
        raise ValueError(
            f"{ASSET_SCHEME}:// Asset URIs take no query ({uri.geturl()!r}); drop '?{uri.query}'"
        )
    return uri._replace(netloc=uri.netloc.lower())
