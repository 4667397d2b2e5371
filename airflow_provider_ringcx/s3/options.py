"""Compliance options of every object this provider writes: encryption, storage class, tags, Object Lock.

One run, one set of options. The example DAG resolves them once, in ``resolve_run``
(:meth:`S3WriteOptions.from_settings` validates them there, so a bad option fails the run before anything
is written), and every task of the run builds the same :class:`S3WriteOptions` from those resolved values
(:data:`OPTION_NAMES`): the metadata task for the window manifest, each download task for the recordings
and their sidecars, and the report task for the report. Manifests and reports hold vendor rows (phone
numbers, agent ids), so they get the same encryption (SSE-S3 or SSE-KMS with the run's key), storage class
and tags as the recordings.

Which objects get Object Lock (when ``object_lock_mode`` is set), and why:

- **recording and sidecar**: retained until the segment's end + ``object_lock_retention_days``, in the run's
  mode; the sidecar is the recording's chain of custody and lives exactly as long.
- **window manifest**: retained until the window's end + the same days, same mode. It is the evidence of
  what RingCX listed, i.e. of completeness; it is write-once anyway (``If-None-Match: *``).
- **report**: retained until the window's end + the same days, same mode. A re-run of a window rewrites
  its report; Object Lock buckets are always versioned, so the rewrite adds a new (locked) version and
  every earlier report stays, retained, as its own version: the history of reconciliations is evidence
  too. Nothing is ever overwritten in place, and a re-run never fails on a locked report.
- a legal hold (``object_lock_legal_hold``) is placed on all four.

Retention counts from the segment or window end rather than from the write, so that a re-run or a backfill
gives an object the same retain-until date as the first run would have: compliance regimes count a record's
retention from its creation (the call), not from when it was copied. But S3 (and MinIO) refuse a
retain-until date that is not in the future (moto accepts one), so a backfill of history older than the
retention would fail every write. The rule, in :meth:`S3WriteOptions.retention` only:

    retain-until = max(end + object_lock_retention_days, the first midnight UTC at least 1 day after now)

The floor (:data:`MIN_RETENTION_AHEAD`, rounded up to midnight so that every object of one run gets the
same date) only applies when the record's own retention has already run out or is about to. The sidecar
records both dates (``s3.object_lock_retention``: the end counted from, the days, the date by the rule
alone and whether the floor applied), so an auditor sees that the object is kept longer than required and
why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from botocore.exceptions import BotoCoreError, ClientError

from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXObjectLockError
from airflow_provider_ringcx.models import format_timestamp
from airflow_provider_ringcx.s3.writeonce import http_status

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SSE_MODES = ("AES256", "aws:kms", "aws:kms:dsse")
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
#: The run settings (DAG params / operator arguments) that make up the options, by field name.
OPTION_NAMES = (
    "server_side_encryption",
    "kms_key_id",
    "storage_class",
    "tags",
    "object_lock_mode",
    "object_lock_retention_days",
    "object_lock_legal_hold",
)


def _legal_hold(value: Any) -> bool:
    """``object_lock_legal_hold`` as a bool; a rendered template or a Variable gives text, where
    ``bool("false")`` would put a hold ON every object.

    :raises RingCXConfigError: not a bool, nor true/false, 1/0, yes/no or on/off.
    """
    if value is None or value == "" or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise RingCXConfigError(
        f"object_lock_legal_hold={value!r} is not a boolean; use true or false (a hold cannot be guessed)"
    )


#: How far in the future a retain-until date lies at least (then rounded up to midnight UTC).
MIN_RETENTION_AHEAD = timedelta(days=1)


@dataclass(frozen=True)
class Retention:
    """The retention of one record (see the module docstring for the rule).

    :param mode: ``GOVERNANCE`` or ``COMPLIANCE``.
    :param counted_from: the record's end (segment or window), or the write time when unknown.
    :param days: ``object_lock_retention_days``.
    :param by_rule: ``counted_from + days``: what the record's retention requires.
    :param retain_until: what S3 is asked for: ``by_rule``, or the floor when that is past or too close.
    """

    mode: str
    counted_from: datetime
    days: int
    by_rule: datetime
    retain_until: datetime

    @property
    def floored(self) -> bool:
        """Whether the floor (not the record's own retention) decided the date."""
        return self.retain_until > self.by_rule

    def as_dict(self) -> dict[str, Any]:
        """The sidecar's ``s3.object_lock_retention``: ISO-8601 UTC dates, the days and ``floored``."""
        return {
            "counted_from": format_timestamp(self.counted_from),
            "days": self.days,
            "retain_until_by_rule": format_timestamp(self.by_rule),
            "retain_until": format_timestamp(self.retain_until),
            "floored": self.floored,
        }


@dataclass(frozen=True)
class S3WriteOptions:
    """How objects are written.

    :param server_side_encryption: ``AES256`` or ``aws:kms`` (``aws:kms:dsse`` also accepted); ``None``
        leaves the bucket default.
    :param kms_key_id: KMS key id or ARN (only with ``aws:kms``).
    :param storage_class: e.g. ``STANDARD_IA``, ``GLACIER_IR``; ``None`` for the bucket default.
    :param tags: object tags (key -> value), also applied to sidecars.
    :param object_lock_mode: ``GOVERNANCE`` or ``COMPLIANCE``; ``None`` for no per-object retention.
    :param object_lock_retention_days: retain-until = segment end + this many days.
    :param object_lock_legal_hold: place a legal hold on every object.
    """

    server_side_encryption: str | None = None
    kms_key_id: str | None = None
    storage_class: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    object_lock_mode: str | None = None
    object_lock_retention_days: int | None = None
    object_lock_legal_hold: bool = False

    def __post_init__(self) -> None:
        sse = self.server_side_encryption or None
        if sse is not None and sse not in SSE_MODES:
            raise RingCXConfigError(f"server_side_encryption={sse!r}: use one of {', '.join(SSE_MODES)}")
        if self.kms_key_id and not (sse or "").startswith("aws:kms"):
            raise RingCXConfigError("kms_key_id is set but server_side_encryption is not 'aws:kms'")
        mode = (self.object_lock_mode or "").upper() or None
        if mode is not None and mode not in LOCK_MODES:
            raise RingCXConfigError(
                f"object_lock_mode={self.object_lock_mode!r}: use GOVERNANCE or COMPLIANCE"
            )
        days = self.object_lock_retention_days
        if mode is not None and (days is None or int(days) <= 0):
            raise RingCXConfigError(
                f"object_lock_mode={mode} needs object_lock_retention_days > 0 (e.g. 2555 for 7 years)"
            )
        if mode is None and days:
            raise RingCXConfigError("object_lock_retention_days is set but object_lock_mode is not")
        for name, value in dict(self.tags).items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise RingCXConfigError(f"tag {name!r}: tag keys and values must be strings")
            if name.lower() == "sha256":
                raise RingCXConfigError("tag 'sha256' is reserved: it holds each recording's checksum")
        object.__setattr__(self, "server_side_encryption", sse)
        object.__setattr__(self, "object_lock_mode", mode)
        object.__setattr__(self, "object_lock_retention_days", int(days) if days else None)
        object.__setattr__(self, "tags", dict(self.tags))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> S3WriteOptions:
        """The options of resolved run settings or operator arguments (names in :data:`OPTION_NAMES`;
        missing, ``None`` and ``""`` mean unset).

        :raises RingCXConfigError: an option is invalid (the message names it).
        """
        value = {name: settings.get(name) for name in OPTION_NAMES}
        days = value["object_lock_retention_days"]
        try:
            retention = int(days) if days not in (None, "") else None
        except (TypeError, ValueError):
            raise RingCXConfigError(
                f"object_lock_retention_days={days!r} is not a whole number of days"
            ) from None
        tags = value["tags"] or {}
        if not isinstance(tags, Mapping):
            raise RingCXConfigError(f"tags must be a mapping of strings, got {type(tags).__name__}")
        return cls(
            server_side_encryption=value["server_side_encryption"] or None,
            kms_key_id=value["kms_key_id"] or None,
            storage_class=value["storage_class"] or None,
            tags=dict(tags),
            object_lock_mode=value["object_lock_mode"] or None,
            object_lock_retention_days=retention,
            object_lock_legal_hold=_legal_hold(value["object_lock_legal_hold"]),
        )

    @property
    def locking(self) -> bool:
        """Whether any Object Lock setting (retention or legal hold) is requested."""
        return self.object_lock_mode is not None or self.object_lock_legal_hold

    def retention(self, segment_end: datetime | None, *, now: datetime | None = None) -> Retention | None:
        """The retention of a record that ended at ``segment_end`` (now when unknown), by the one rule of
        the module docstring; ``None`` without a lock mode and retention days.

        :param now: the time of the write (default: the current time).
        """
        if self.object_lock_mode is None or self.object_lock_retention_days is None:
            return None
        now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        base = (segment_end or now).astimezone(timezone.utc)
        by_rule = base + timedelta(days=self.object_lock_retention_days)
        ahead = now + MIN_RETENTION_AHEAD
        floor = datetime.combine(ahead.date(), time(0), tzinfo=timezone.utc)
        floor += timedelta(days=1) if floor < ahead else timedelta(0)
        return Retention(
            self.object_lock_mode, base, self.object_lock_retention_days, by_rule, max(by_rule, floor)
        )

    def retain_until(self, segment_end: datetime | None, *, now: datetime | None = None) -> datetime | None:
        """The retain-until date for a record that ended at ``segment_end`` (see :meth:`retention`)."""
        found = self.retention(segment_end, now=now)
        return found.retain_until if found else None

    def extra_args(
        self,
        *,
        segment_end: datetime | None = None,
        tags: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> dict:
        """PutObject / CreateMultipartUpload arguments (SSE, class, tagging, lock).

        :param segment_end: what retention counts from: the segment's end for a recording and its sidecar,
            the window's end for the manifest and the report (now when ``None``).
        :param now: the write's time, for the retain-until floor (default: the current time).
        """
        args: dict[str, Any] = {}
        if self.server_side_encryption:
            args["ServerSideEncryption"] = self.server_side_encryption
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        if self.storage_class:
            args["StorageClass"] = self.storage_class
        all_tags = {**self.tags, **(tags or {})}
        if all_tags:
            args["Tagging"] = urlencode(all_tags)
        until = self.retain_until(segment_end, now=now)
        if until is not None:
            args["ObjectLockMode"] = self.object_lock_mode
            args["ObjectLockRetainUntilDate"] = until
        if self.object_lock_legal_hold:
            args["ObjectLockLegalHoldStatus"] = "ON"
        return args

    def check_bucket(self, client: S3Client, bucket: str) -> None:
        """Fail clearly, before any download, when the bucket does not exist or when locking is asked for
        and the bucket has no Object Lock (one or two calls per task).

        :raises RingCXConfigError: no bucket name, or S3 says the bucket does not exist.
        :raises RingCXObjectLockError: the bucket is not Object-Lock enabled.
        """
        if not bucket:
            raise RingCXConfigError("no S3 bucket given: set the operator's bucket (the DAG param 'bucket')")
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as err:
            status = http_status(err)
            if status == 404 or err.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                raise RingCXConfigError(
                    f"S3 bucket {bucket!r} does not exist (or not at this endpoint/region): create it, or "
                    "fix the bucket setting or the aws connection's endpoint_url/region"
                ) from None
            # 403 (no s3:ListBucket) and other answers: the writes themselves will tell
        except BotoCoreError:
            pass  # network trouble: the segments' own retries report it
        if not self.locking:
            return
        try:
            config = client.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration", {})
        except client.exceptions.ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code not in {"ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"}:
                raise
            config = {}
        if config.get("ObjectLockEnabled") != "Enabled":
            raise RingCXObjectLockError(
                f"Object Lock was requested (mode={self.object_lock_mode}, legal hold="
                f"{self.object_lock_legal_hold}) but bucket {bucket!r} is not Object-Lock enabled; "
                "create the bucket with Object Lock enabled or remove the object_lock_* options"
            )
