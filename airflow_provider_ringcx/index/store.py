"""The index's S3 requests: read a day, merge a window's rows into it with a conditional write, sync it out.

**Concurrency.** Several windows of one day finish at about the same time (the live DAG's runs overlap,
the audit repairs many windows at once, the rescan of window ``W`` runs in the report of a later window).
Each report merges *its* rows into the day's one object by optimistic concurrency: read the object and its
ETag, put every row of this window in place of the row of the same segment, write it back with
``If-Match: <ETag>`` (``If-None-Match: *`` when the day has no object yet). A concurrent writer in between
makes S3 answer 412 (or 409): the merge is redone on the new object, up to :data:`MAX_ATTEMPTS` times. So
no window's rows are lost, and the day's content is the same whatever order its windows finish in (the
rows are a function of the manifests and the latest verdicts, sorted when encoded).

**Cost.** A window costs one GET and one PUT of each day it touches (one; two when it spans midnight) plus
a retry pair per collision: a 96-window day is about 96 GETs and 96 PUTs, not 96 x 96. The bytes read grow
with the day (the last window of a 40,000-segment day reads a few MB); a rebuild
(:mod:`~airflow_provider_ringcx.index.rebuild`) writes a day in one PUT.

**Write options.** The index holds vendor data (phone numbers, agent ids), so it gets the run's
encryption (SSE-S3/SSE-KMS) and tags. It does *not* get Object Lock retention or legal holds, and it is
always written in the default storage class: it is derived data, rewritten as a day's windows land and
rebuildable from the locked manifests, sidecars and reports, and a query engine must be able to read it
(Athena cannot read an archive-tier object). On a bucket with *default* retention, S3 still retains every
version of it; the index stays small, but see docs/operations.md for a lifecycle rule.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXError
from airflow_provider_ringcx.index.format import (
    INDEX_CONTENT_TYPE,
    decode_day,
    encode_day,
    merge,
    row_day,
)
from airflow_provider_ringcx.models import printable
from airflow_provider_ringcx.s3.options import S3WriteOptions
from airflow_provider_ringcx.s3.writeonce import http_status, is_conflict, is_precondition_failed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

#: Conditional writes tried per day before giving up (each collision means another window just landed).
MAX_ATTEMPTS = 8
#: The index object of a day is named ``segments.jsonl.gz``; anything else under ``_index/`` is ignored.
INDEX_NAME = "segments.jsonl.gz"
#: A day object's key below the prefix, as :func:`~airflow_provider_ringcx.keys.index_key` makes it (an id
#: from :func:`~airflow_provider_ringcx.keys.safe_id`: never ``.``, ``..`` or a ``/``).
_DAY_KEY = re.compile(
    r"_index/sub_account=(?!\.\.?/)[A-Za-z0-9._%~-]+/date=\d{4}-\d{2}-\d{2}/" + re.escape(INDEX_NAME)
)


class IndexWriteConflictError(RingCXError):
    """The day's index object kept changing under the merge (every conditional write lost the race).
    Retryable: the report task's retry merges again."""

    retryable = True


@dataclass(frozen=True)
class DayWrite:
    """What one merge wrote: the day's key, its rows in all, this window's rows, the attempts it took."""

    day: date
    key: str
    rows: int
    added: int
    attempts: int


def index_options(options: S3WriteOptions | None) -> S3WriteOptions:
    """The run's options as the index is written: encryption and tags kept; no Object Lock, default class."""
    base = options or S3WriteOptions()
    return dataclasses.replace(
        base,
        storage_class=None,
        object_lock_mode=None,
        object_lock_retention_days=None,
        object_lock_legal_hold=False,
    )


def read_day(client: S3Client, bucket: str, key: str) -> tuple[list[dict[str, Any]], str | None]:
    """The rows of one day object and its ETag; ``([], None)`` when it does not exist.

    :raises IndexCorruptError: the object is not a readable index (the message says how to rebuild it).
    """
    try:
        answer = client.get_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if http_status(err) == 404 or str(err.response.get("Error", {}).get("Code")) in ("NoSuchKey", "404"):
            return [], None
        raise
    body = answer["Body"].read()
    return decode_day(body, f"s3://{bucket}/{key}"), answer.get("ETag")


def group_by_day(rows: Iterable[Mapping[str, Any]], fallback: date) -> dict[date, list[Mapping[str, Any]]]:
    """Rows by the day they are stored under (:func:`~airflow_provider_ringcx.index.format.row_day`)."""
    days: dict[date, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        days[row_day(row, fallback)].append(row)
    return dict(days)


def merge_rows(
    client: S3Client,
    bucket: str,
    prefix: str | None,
    sub_account_id: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    fallback_day: date,
    options: S3WriteOptions | None = None,
    pause: Callable[[float], None] = time.sleep,
) -> list[DayWrite]:
    """Merge rows into their days' index objects (conditional read-modify-write, see the module docstring).

    :param fallback_day: the day of a row with neither an end nor a start time (the window's first day).
    :param pause: how to wait between attempts (a short random backoff).
    :raises IndexWriteConflictError: a day changed under every one of :data:`MAX_ATTEMPTS` attempts.
    :raises IndexCorruptError: a day's stored object is unreadable: it is not overwritten (that would drop
        the other windows' rows); the message says how to rebuild it.
    """
    written = []
    extra = index_options(options).extra_args()
    for day, day_rows in sorted(group_by_day(rows, fallback_day).items()):
        key = keys.index_key(prefix, sub_account_id, day)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            existing, etag = read_day(client, bucket, key)
            merged = merge(existing, day_rows)
            condition: dict[str, Any] = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                _put(client, bucket, key, encode_day(merged), extra, condition)
            except ClientError as err:
                if not (is_precondition_failed(err) or is_conflict(err)) or attempt == MAX_ATTEMPTS:
                    if is_precondition_failed(err) or is_conflict(err):
                        raise IndexWriteConflictError(
                            f"index object s3://{bucket}/{key} changed under each of {MAX_ATTEMPTS} merges "
                            "(other windows of the day kept landing); the task's retry merges again"
                        ) from None
                    raise
                pause(random.uniform(0.05, 0.25) * attempt)
                continue
            written.append(DayWrite(day, key, len(merged), len(day_rows), attempt))
            log.info(
                "index s3://%s/%s: %d rows merged, %d in the day", bucket, key, len(day_rows), len(merged)
            )
            break
    return written


def replace_day(
    client: S3Client,
    bucket: str,
    prefix: str | None,
    sub_account_id: str,
    day: date,
    rows: Iterable[Mapping[str, Any]],
    *,
    options: S3WriteOptions | None = None,
) -> DayWrite:
    """Write a day's index object whole (a rebuild): exactly ``rows``, whatever it held before."""
    rows = list(rows)
    key = keys.index_key(prefix, sub_account_id, day)
    _put(client, bucket, key, encode_day(rows), index_options(options).extra_args(), {})
    return DayWrite(day, key, len(rows), len(rows), 1)


def _put(
    client: S3Client,
    bucket: str,
    key: str,
    body: bytes,
    extra: dict,
    condition: dict,
) -> None:
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=INDEX_CONTENT_TYPE,
        ChecksumAlgorithm="SHA256",  # Object Lock buckets require a checksum on every PUT
        **extra,
        **condition,
    )


def list_days(
    client: S3Client, bucket: str, prefix: str | None, sub_account_id: str | None = None
) -> list[str]:
    """The keys of every day object under the index (of one sub-account, or all), sorted."""
    found = []
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=keys.index_prefix(prefix, sub_account_id)
    )
    for page in pages:
        found += [item["Key"] for item in page.get("Contents", []) if item["Key"].endswith("/" + INDEX_NAME)]
    return sorted(found)


def iter_rows(
    client: S3Client, bucket: str, prefix: str | None, sub_account_id: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every row of the index (of one sub-account, or all), day by day."""
    for key in list_days(client, bucket, prefix, sub_account_id):
        yield from read_day(client, bucket, key)[0]


def sync_index(client: S3Client, bucket: str, prefix: str | None, dest: Path) -> list[Path]:
    """Copy the index objects to ``dest``, keeping their key layout below the prefix
    (``dest/_index/sub_account=.../date=.../segments.jsonl.gz``), for a query engine that reads files:
    DuckDB without its ``httpfs`` extension, for one. Every object is downloaded again (a day is rewritten
    in place as its windows land), each written to a ``.part`` file first and renamed.

    ``_index/`` is not locked, so whoever can write it can name any key (``_index/../../x``): only keys of
    the index's own layout are copied, so no file is written outside ``dest``; any other key is skipped
    with a warning naming it.

    :returns: the local files, sorted.
    """
    base = keys.normalize_prefix(prefix)
    local = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=keys.index_prefix(prefix)
    ):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith("/" + INDEX_NAME):
                continue
            relative = key[len(base) + 1 :] if base else key
            if not _DAY_KEY.fullmatch(relative):
                log.warning("index sync: skipping s3://%s/%s, not an index day's key", bucket, printable(key))
                continue
            target = dest.joinpath(*relative.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            _write_new(partial, client.get_object(Bucket=bucket, Key=key)["Body"].read())
            partial.replace(target)  # a rename replaces a link at target, never writes through it
            local.append(target)
    return sorted(local)


def _write_new(path: Path, body: bytes) -> None:
    """Write ``path`` (mode 0600), refusing a symbolic link there: ``--dest`` may be in a shared folder
    where another local user planted one, to have this user overwrite the file it points to.

    :raises RingCXConfigError: ``path`` is a symbolic link (the message names it).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise RingCXConfigError(
                f"index sync: {path} is a symbolic link; refusing to write through it. Remove it, or sync "
                "into a folder only you can write"
            ) from None
        raise
    with os.fdopen(fd, "wb") as out:
        out.write(body)
