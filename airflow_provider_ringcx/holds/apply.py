"""Apply or release legal holds on the selected segments' object versions, within the archive only.

Order of work (module doc of :mod:`airflow_provider_ringcx.holds`): check the bucket has Object Lock,
check the scope of *every* target before the first change, then per version read its status and change it
only when it differs; the status after is read back from S3, so the audit record states what S3 holds,
not what was asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.exceptions import RingCXHoldScopeError, RingCXObjectLockError
from airflow_provider_ringcx.models import printable
from airflow_provider_ringcx.s3.writeonce import error_code, http_status

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACTIONS = {"apply": "ON", "release": "OFF"}
#: Top-level folders of the archive that hold its bookkeeping, never a call's objects.
RESERVED = ("_index", "_audit", "_manifests", "_reports", "_coverage")
_NO_HOLD = {"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"}
_MISSING = {"NoSuchKey", "NoSuchVersion", "404"}
#: What the time fields of a key template render to (:func:`~airflow_provider_ringcx.keys.partition_fields`).
_TIME_FIELDS = {"year": r"\d{4}", "month": r"\d{2}", "day": r"\d{2}", "hour": r"\d{2}", "minute": r"\d{2}",
                "date": r"\d{4}-\d{2}-\d{2}"}  # fmt: skip


@dataclass(frozen=True)
class Target:
    """One object version to hold: what it is, for which segment."""

    kind: str  # recording, sidecar, transcript or summary
    key: str
    version_id: str | None
    dialog_id: str
    segment_id: str


@dataclass
class Change:
    """What happened to one target (a line of the audit record)."""

    kind: str
    key: str
    version_id: str | None
    dialog_id: str
    segment_id: str
    before: str | None
    after: str | None
    result: str  # changed, unchanged, missing

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_object_lock(client: S3Client, bucket: str) -> None:
    """Fail clearly when ``bucket`` has no Object Lock (S3 would refuse every legal hold).

    :raises RingCXObjectLockError: saying how to enable it.
    """
    try:
        config = client.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration", {})
    except ClientError as err:
        if error_code(err) not in _NO_HOLD:
            raise
        config = {}
    if config.get("ObjectLockEnabled") != "Enabled":
        raise RingCXObjectLockError(
            f"bucket {bucket!r} has no Object Lock, so S3 refuses legal holds on its objects: archive into a "
            "bucket created with Object Lock enabled (create-bucket --object-lock-enabled-for-bucket), or "
            "enable it on this versioned bucket (put-object-lock-configuration with ObjectLockEnabled="
            "Enabled), then run the request again"
        )


def _scope_problem(key: Any, archive: str, segment_id: str, sub_account_id: str) -> str | None:
    """Why ``key`` is outside what a segment's row may name, or ``None``."""
    if not isinstance(key, str) or not key:
        return "is empty"
    if archive and not key.startswith(archive + "/"):
        return f"is not under the archive prefix {archive + '/'!r}"
    rest = key[len(archive) + 1 :] if archive else key
    parts = rest.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has an empty, '.' or '..' segment"
    if parts[0] in RESERVED:
        return f"is in the archive's {parts[0]}/ folder, not a call's object"
    if keys.safe_id(segment_id) not in parts[-1]:
        return "does not name the row's segment"
    if not any(keys.safe_id(sub_account_id) in part for part in parts[:-1]):  # every template has a folder
        return f"is not in a folder of the row's sub-account {printable(sub_account_id)!r}"
    return None


def _template_key(template: str, prefix: str | None, row_ids: tuple[str, str, str]) -> re.Pattern[str]:
    """The recording keys ``template`` gives one segment (ids fixed, any UTC time): the only keys its row may
    name. A substring test of the ids is not enough: sub-account ``4`` is in ``sub_account=42`` and in
    ``year=2024``, and segment ``s-1`` in ``s-10.wav``."""
    sub, dialog, segment = row_ids
    marks = {name: f"\x00{name}\x00" for name in _TIME_FIELDS}
    text = keys.validate_key_template(template).format(
        prefix=keys.normalize_prefix(prefix), sub_account_id=keys.safe_id(sub),
        dialog_id=keys.safe_id(dialog), segment_id=keys.safe_id(segment), **marks,
    ).lstrip("/")  # fmt: skip
    pattern = re.escape(text)
    for name, mark in marks.items():
        pattern = pattern.replace(re.escape(mark), _TIME_FIELDS[name])
    return re.compile(pattern)


def targets_of(
    row: Mapping[str, Any], prefix: str | None, key_template: str = keys.DEFAULT_KEY_TEMPLATE
) -> list[Target]:
    """The recording, sidecar and (when archived) transcript and AI summaries of an index row, checked.

    :param key_template: the DAGs' WAV key template: the recording key must be the one it gives the row's
        sub-account, dialog and segment (at some UTC time), the sidecar, transcript and summaries exactly
        the recording's.
    :raises RingCXHoldScopeError: a key is outside the archive, is not the row's segment's key under
        ``key_template``, or the sidecar/transcript is not the recording's; the message names the row and
        the key.
    """
    archive = keys.normalize_prefix(prefix)
    dialog, segment = str(row.get("dialog_id") or ""), str(row.get("segment_id") or "")
    recording = row.get("s3_key")
    named = [("recording", recording, row.get("version_id"))]
    sidecar = (
        keys.sidecar_key(recording) if isinstance(recording, str) and recording.endswith(".wav") else None
    )
    named.append(("sidecar", row.get("sidecar_key") or sidecar, None))
    if row.get("transcript_key"):
        named.append(("transcript", row.get("transcript_key"), None))
    summaries = row.get("summary_keys") or []
    named += [("summary", key, None) for key in (summaries if isinstance(summaries, list) else [summaries])]
    documents = {keys.summary_key(str(recording), name) for name in keys.SUMMARY_KINDS}
    folder = recording.rpartition("/")[0] if isinstance(recording, str) else ""
    found: list[Target] = []
    for kind, key, version in named:
        sub = str(row.get("sub_account_id") or "")
        problem = (
            _scope_problem(key, archive, segment, sub)
            if segment and sub and dialog
            else "belongs to a row without segment_id, dialog_id or sub_account_id"
        )
        if problem is None and kind == "recording" and not str(key).endswith(".wav"):
            problem = "is not a .wav recording"
        own = kind == "recording" and problem is None
        if own and not _template_key(key_template, prefix, (sub, dialog, segment)).fullmatch(str(key)):
            problem = (
                f"is not the key the key template {key_template!r} gives the row's sub-account, dialog "
                "and segment (if the DAGs use another template, pass it as key_template)"
            )
        if problem is None and kind == "sidecar" and key != sidecar:
            problem = f"is not the recording's sidecar ({printable(sidecar)!r})"
        if problem is None and kind != "recording" and str(key).rpartition("/")[0] != folder:
            problem = "is not beside the recording"
        if problem is None and kind == "transcript" and key != keys.transcript_key(str(recording)):
            problem = (
                f"is not the recording's transcript ({printable(keys.transcript_key(str(recording)))!r})"
            )
        if problem is None and kind == "summary" and key not in documents:
            problem = (
                f"is not one of the recording's summaries ({', '.join(map(printable, sorted(documents)))})"
            )
        if problem:
            raise RingCXHoldScopeError(
                f"refusing the legal hold request: index row dialog {printable(dialog)!r} segment "
                f"{printable(segment)!r} names {kind} key {printable(key)!r}, which {problem}; nothing was "
                "changed. Rebuild the index day from the manifests (python -m airflow_provider_ringcx index "
                "rebuild) and check who can write the index"
            )
        found.append(Target(kind, str(key), str(version) if version else None, dialog, segment))
    return found


def _status(client: S3Client, bucket: str, target: Target, version: str | None) -> str | None:
    """The version's legal hold status, ``OFF`` when none was ever set."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": target.key}
    if version:
        args["VersionId"] = version
    try:
        answer = client.get_object_legal_hold(**args)
    except ClientError as err:
        if error_code(err) in _NO_HOLD:
            return "OFF"
        raise
    return str(answer.get("LegalHold", {}).get("Status") or "OFF")  # none ever set: some servers say nothing


def _version(client: S3Client, bucket: str, target: Target) -> str | None:
    """The version to hold: the row's (checked to exist), else the key's current one; ``None`` if absent."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": target.key}
    if target.version_id:
        args["VersionId"] = target.version_id
    try:
        return str(client.head_object(**args).get("VersionId") or target.version_id or "") or None
    except ClientError as err:
        if http_status(err) in (404, 400) or error_code(err) in _MISSING:
            raise LookupError(target.key) from None
        raise


def set_holds(client: S3Client, bucket: str, targets: Sequence[Target], status: str,
              progress: Callable[[Change], None] | None = None) -> list[Change]:  # fmt: skip
    """Give every target the legal hold ``status`` (``ON``/``OFF``), changing only those that differ."""
    changes = []
    for target in targets:
        try:
            version = _version(client, bucket, target)
        except LookupError:
            change = Change(**_ids(target), version_id=target.version_id, before=None, after=None,
                            result="missing")  # fmt: skip
        else:
            before = _status(client, bucket, target, version)
            if before != status:
                args: dict[str, Any] = {"Bucket": bucket, "Key": target.key, "LegalHold": {"Status": status}}
                if version:
                    args["VersionId"] = version
                client.put_object_legal_hold(**args)
                after = _status(client, bucket, target, version)
            else:
                after = before
            result = "unchanged" if before == status else ("changed" if after == status else "failed")
            change = Change(**_ids(target), version_id=version, before=before, after=after, result=result)
        changes.append(change)
        if progress is not None:
            progress(change)
    return changes


def _ids(target: Target) -> dict[str, str]:
    return {"kind": target.kind, "key": target.key, "dialog_id": target.dialog_id,
            "segment_id": target.segment_id}  # fmt: skip
