"""What the archive page reads, and only that: the ledger's rollups, one report, links (no writes).

**Where.** The bucket, prefix, key template, lag and ``aws`` connection are resolved exactly as the archive
DAGs resolve them when no run param is given (:func:`~airflow_provider_ringcx.run_settings.resolve_settings`:
the Variable ``ringcx_<name>``, then the environment variable ``RINGCX_<NAME>``, then the default), so the
page shows the archive the DAGs write. The S3 client is the ``aws`` connection's
(:func:`~airflow_provider_ringcx.operators.base.s3_hook`), in the API server.

**Bounded cost.** A page reads per-day rollups through :meth:`CoverageLedger.read
<airflow_provider_ringcx.coverage.ledger.CoverageLedger.read>`: one GET per day shown plus one for the day
before (a report reaching across midnight), per sub-account; sub-accounts are found with one delimited LIST
of ``{prefix}/_coverage/``. It never lists or reads the reports of a range; a window's page reads that one
report. The page never refreshes the ledger (the audit DAG and ``python -m airflow_provider_ringcx
coverage`` do): it writes nothing, so it needs only ``s3:ListBucket`` and ``s3:GetObject``.

**Errors** are :class:`ArchiveUnavailable` with a message for a person (no bucket configured, the bucket
does not exist, S3 refused): the page shows it instead of failing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from airflow_provider_ringcx import jsonutil, keys
from airflow_provider_ringcx.coverage import CoverageError, CoverageGrid, CoverageLedger, CoverageResult
from airflow_provider_ringcx.exceptions import RingCXError
from airflow_provider_ringcx.links import S3Location
from airflow_provider_ringcx.run_settings import resolve_settings

#: A report larger than this is not rendered (the page links the object instead).
MAX_REPORT_BYTES = 8 * 1024 * 1024
#: Sub-accounts shown (one delimited LIST page).
MAX_SUB_ACCOUNTS = 50


class ArchiveUnavailable(RingCXError):
    """The archive cannot be read (no bucket configured, no such bucket, S3 refused); says how to fix it."""


@dataclass(frozen=True)
class ArchiveConfig:
    """The archive the DAGs write: bucket, prefix, key template, lag and the ``aws`` connection."""

    bucket: str
    prefix: str
    aws_conn_id: str
    key_template: str
    lag_minutes: int

    def grid(self, interval_minutes: int) -> CoverageGrid:
        return CoverageGrid(timedelta(minutes=interval_minutes), timedelta(minutes=self.lag_minutes))


def _variable(name: str) -> str | None:
    """An Airflow Variable, read from the metadata DB / secrets backends (the API server has them)."""
    from airflow.models.variable import Variable

    try:
        value = Variable.get(name, default_var=None)
    except KeyError:
        return None
    return None if value is None else str(value)


def archive_config(
    environ: Mapping[str, str] | None = None, get_variable: Callable[[str], str | None] | None = None
) -> ArchiveConfig:
    """The archive settings, as the DAGs resolve them without run params.

    :raises ArchiveUnavailable: no bucket configured, or a setting of the wrong type.
    """
    try:
        run = resolve_settings({}, get_variable or _variable, os.environ if environ is None else environ)
    except RingCXError as err:
        raise ArchiveUnavailable(str(err)) from None
    return ArchiveConfig(
        bucket=str(run["bucket"]),
        prefix=keys.normalize_prefix(run["prefix"]),
        aws_conn_id=str(run["aws_conn_id"]),
        key_template=str(run["key_template"] or keys.DEFAULT_KEY_TEMPLATE),
        lag_minutes=int(run["lag_minutes"]),
    )


def _s3_problem(err: Exception, bucket: str, what: str) -> ArchiveUnavailable:
    code = (
        str(err.response.get("Error", {}).get("Code")) if isinstance(err, ClientError) else type(err).__name__
    )
    if code == "NoSuchBucket":
        return ArchiveUnavailable(
            f"bucket {bucket!r} does not exist: set the Variable ringcx_bucket or RINGCX_BUCKET to the "
            "archive bucket the DAGs write, or check the aws connection's endpoint and account"
        )
    return ArchiveUnavailable(
        f"S3 refused {what} in bucket {bucket!r} ({code}): the aws connection needs s3:ListBucket and "
        "s3:GetObject on the archive prefix"
    )


class ArchiveReader:
    """Reads the archive for the page: sub-accounts, rollups, one report, and links to S3.

    :param client: a boto3 S3 client (the ``aws`` connection's).
    :param config: the archive settings.
    :param location: builds the :class:`~airflow_provider_ringcx.links.S3Location` of a key (for the links:
        the connection's endpoint, region and partition); by default a plain AWS one.
    :param clock: the ledger's clock (tests).
    """

    def __init__(
        self,
        client: Any,
        config: ArchiveConfig,
        *,
        location: Callable[[str, bool], S3Location] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.ledger = CoverageLedger(client, config.bucket, config.prefix, clock=clock, workers=4)
        self._location = location or (lambda key, is_prefix: S3Location(config.bucket, key, is_prefix))
        self.gets = 0
        self.lists = 0

    @classmethod
    def from_connection(cls, config: ArchiveConfig) -> ArchiveReader:
        """A reader through the ``aws`` connection's S3Hook (its endpoint and region make the links)."""
        from airflow_provider_ringcx.operators.base import s3_hook

        try:
            hook = s3_hook(config.aws_conn_id)
            client = hook.get_conn()
        except RingCXError as err:
            raise ArchiveUnavailable(str(err)) from None

        def location(key: str, is_prefix: bool) -> S3Location:
            return S3Location.for_hook(hook, config.bucket, key, is_prefix=is_prefix)

        return cls(client, config, location=location)

    def link(self, key: str, *, is_prefix: bool = False) -> str:
        """The URL of an object or prefix, in the form of the task extra links (:mod:`~..links`)."""
        return self._location(key, is_prefix).url()

    def sub_accounts(self) -> list[str]:
        """The sub-accounts that have a ledger (``{prefix}/_coverage/sub_account=ID/``): one LIST."""
        root = "/".join(part for part in (self.config.prefix, "_coverage/") if part)
        self.lists += 1
        try:
            page = self.client.list_objects_v2(
                Bucket=self.config.bucket, Prefix=root, Delimiter="/", MaxKeys=MAX_SUB_ACCOUNTS
            )
        except (ClientError, BotoCoreError) as err:
            raise _s3_problem(err, self.config.bucket, f"LIST {root}") from None
        found = []
        for entry in page.get("CommonPrefixes", []):
            name = str(entry.get("Prefix", ""))[len(root) :].rstrip("/")
            if name.startswith("sub_account="):
                sub = name[len("sub_account=") :]
                if sub and keys.safe_id(sub) == sub:  # an id the key encoding changed is not recoverable
                    found.append(sub)
        return sorted(found)

    def coverage(self, sub: str, start: date, end: date, grid: CoverageGrid) -> CoverageResult:
        """The coverage of ``[start, end)`` from the rollups (GETs only: days + 1)."""
        try:
            result = self.ledger.read(sub, start, end, grid)
        except CoverageError as err:
            if "NoSuchBucket" in str(err):
                raise _s3_problem(_no_bucket(), self.config.bucket, "GET") from None
            raise ArchiveUnavailable(str(err)) from None
        except BotoCoreError as err:
            raise _s3_problem(err, self.config.bucket, "GET") from None
        self.gets += result.requests.get
        return result

    def report(self, key: str) -> tuple[dict[str, Any] | None, str]:
        """A report's JSON (1 GET) and, when it cannot be shown, why (absent, too large, not JSON)."""
        self.gets += 1
        try:
            body = self.ledger.store.get(key, MAX_REPORT_BYTES)
        except CoverageError as err:
            raise ArchiveUnavailable(str(err)) from None
        if body is None:
            return None, "no report object (it was never written, or was deleted)"
        if isinstance(body, str):
            return None, f"the report is {body}: open it in S3"
        try:
            data = jsonutil.strict_loads(body)
        except (ValueError, UnicodeDecodeError):
            return None, "the report is not valid JSON"
        return (data, "") if isinstance(data, dict) else (None, "the report is not a JSON object")


def _no_bucket() -> ClientError:
    return ClientError({"Error": {"Code": "NoSuchBucket", "Message": "no such bucket"}}, "GetObject")
