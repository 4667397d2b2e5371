"""One verdict: whether a segment is archived and verified in S3, decided in exactly one place.

The lander's idempotency check (:meth:`~airflow_provider_ringcx.transfers.landing.SegmentLander.land`) and the
window report (:func:`~airflow_provider_ringcx.report.check_segment`) both call :func:`verify_archived`, so
they read the same checksum sources, handle the ``sha256`` tag the same way and map S3 errors the same way:
on one S3 state they cannot disagree.

A segment is ``archived`` only when all of this holds:

1. an object exists at its WAV key;
2. its sidecar exists and is valid against the sidecar schema
   (:func:`~airflow_provider_ringcx.transfers.sidecar.parse_sidecar`);
3. the sidecar's ``sub_account_id``, ``dialog_id`` and ``segment_id`` are those of the segment being
   checked (otherwise the key holds another segment's recording: ``collision``);
4. the sidecar's ``size`` is the object's ContentLength;
5. every checksum S3 holds for the object equals the sidecar's ``sha256``.

**Checksum sources**, decided once. Every source present in the HEAD answer must agree (both are free):
S3's own full-object ``ChecksumSHA256`` (computed by S3 from the bytes it received; only a
``FULL_OBJECT`` checksum counts, a multipart ``COMPOSITE`` one ``...-N`` is a checksum of part checksums and
is ignored; without a ``ChecksumType``, a multipart ETag ``...-N`` marks it composite) and the
``x-amz-meta-sha256`` user metadata (written with the bytes by single-part PUTs). Only when the HEAD holds
neither (multipart uploads) is the ``sha256`` object tag read (exact key ``sha256``, the one the lander
writes; value compared in lower case). With none of the three, the object's bytes are read back and
hashed, and so they are with ``verify_content``. The reported ``sha256`` follows that precedence:
full-object checksum, metadata, tag, content.

**One version.** The reads after the HEAD (tag, bytes) are pinned to the HEAD's ``VersionId`` (a GET of
another version is refused; a version deleted meanwhile is ``unverifiable``): a version written in between
cannot lend its tag or bytes to the verdict on the version it reports.

**Error mapping**, decided once: 404 (``NoSuchKey``/``NotFound``) means absent; 403 means the verdict is
``unverifiable`` (the reason names the permission; S3 also answers 403 for a missing key when the role lacks
``s3:ListBucket``); a tagging call that the store refuses (403) or lacks (501) means "no tag", so the bytes
are hashed instead; every other error propagates (5xx and throttling are retryable: the lander retries the
segment, Airflow retries the report task).

The reads themselves (HEAD, sidecar GET, tag, read-back hashing; their version pinning and error mapping)
live in :mod:`~airflow_provider_ringcx.transfers.verdict_reads`; the verdict on what they return, and
which checksum sources count, is decided here and nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.exceptions import RingCXUnverifiableError
from airflow_provider_ringcx.jsonutil import strict_loads
from airflow_provider_ringcx.models import format_timestamp, printable
from airflow_provider_ringcx.transfers.sidecar import SidecarInvalid, parse_sidecar
from airflow_provider_ringcx.transfers.verdict_reads import get_body, hash_object, head_object, sha256_tag

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ARCHIVED = "archived"
OBJECT_MISSING = "object_missing"
SIDECAR_MISSING = "sidecar_missing"
SIDECAR_INVALID = "sidecar_invalid"
COLLISION = "collision"
SIZE_MISMATCH = "size_mismatch"
CHECKSUM_MISMATCH = "checksum_mismatch"
CONTENT_MISMATCH = "content_mismatch"
UNVERIFIABLE = "unverifiable"
BODY_INVALID = "body_invalid"  # a transcript's (summary's) bytes are intact but not its segment's
#: Every state :func:`verify_archived` returns; only ``archived`` counts as archived.
STATES = (
    ARCHIVED,
    OBJECT_MISSING,
    SIDECAR_MISSING,
    SIDECAR_INVALID,
    COLLISION,
    SIZE_MISMATCH,
    CHECKSUM_MISMATCH,
    CONTENT_MISMATCH,
    UNVERIFIABLE,
)


@dataclass(frozen=True)
class Identity:
    """Whose recording a key must hold: the sub-account, dialog and segment ids as the vendor sent them."""

    sub_account_id: str
    dialog_id: str
    segment_id: str

    def describe(self) -> str:
        return printable(
            f"sub-account {self.sub_account_id!r} dialog {self.dialog_id!r} segment {self.segment_id!r}"
        )


@dataclass(frozen=True)
class StoredObject:
    """What S3 holds at a key: size, version, every checksum found (``(source, lowercase value)`` in
    precedence order) and, when the bytes were read back, their SHA-256 and count."""

    key: str
    size: int
    version_id: str | None
    checksums: tuple[tuple[str, str], ...]
    content_sha256: str | None = None
    content_size: int | None = None

    @property
    def sha256(self) -> str | None:
        """The object's SHA-256 by the documented precedence (``None`` if nothing is known)."""
        return self.checksums[0][1] if self.checksums else self.content_sha256

    def disagreement(self, sha_hex: str, size: int) -> str | None:
        """Why the object does not hold ``size`` bytes hashing to ``sha_hex`` (``None`` when it does)."""
        found = self.mismatch(sha_hex, size)
        return found[1] if found else None

    def mismatch(self, sha_hex: str, size: int, *, claim: str = "") -> tuple[str, str] | None:
        """The one comparison of an object with a claimed size and SHA-256: ``(state, reason)`` for the
        first disagreement (size, then every checksum source, then the bytes read back), else ``None``.

        :param claim: who claims them, for the reason (``"sidecar"``; empty: the caller's expectation).
        """
        says, whose = (f"{claim} says", f"{claim} sha256") if claim else ("expected", "sha256")
        if self.size != size:
            return SIZE_MISMATCH, f"object is {self.size} bytes, {says} {size}"
        for source, value in self.checksums:
            if value != sha_hex:
                return CHECKSUM_MISMATCH, f"object {source} {value} differs from {whose} {sha_hex}"
        if self.content_sha256 is not None and (self.content_sha256, self.content_size) != (sha_hex, size):
            content = f"{self.content_sha256} ({self.content_size} bytes)"
            return CONTENT_MISMATCH, f"object bytes hash to {content}, {says} {sha_hex}"
        return None


@dataclass(frozen=True)
class Verdict:
    """The verdict on one segment (see the module docstring for the states).

    :param size: the object's ContentLength, when there is an object.
    :param sha256: the sidecar's ``sha256`` when it was read, else the object's.
    :param content_verified: the bytes were read back and hashed.
    :param lock: the object's Object Lock state as its HEAD showed it (:func:`object_lock_facts`).
    """

    state: str
    key: str
    reason: str = ""
    size: int | None = None
    sha256: str | None = None
    version_id: str | None = None
    content_verified: bool = False
    stored: StoredObject | None = None
    lock: Mapping[str, Any] | None = None
    #: the documents the sidecar says belong to the recording (``transcript``, ``summary.agent``...), by
    #: name, at the keys :mod:`~airflow_provider_ringcx.keys` gives this recording (never the sidecar's own
    #: strings): where they are or will be archived, not a proof that they are (the index HEADs them)
    documents: Mapping[str, str] | None = None

    @property
    def archived(self) -> bool:
        return self.state == ARCHIVED


def object_lock_facts(head: Mapping[str, Any]) -> dict[str, Any]:
    """The Object Lock state a HEAD answer shows: ``object_lock_mode``, ``retain_until`` (ISO-8601 UTC) and
    ``legal_hold`` (``ON``; a role without s3:GetObjectLegalHold sees none)."""
    until = head.get("ObjectLockRetainUntilDate")
    return {
        "object_lock_mode": head.get("ObjectLockMode"),
        "retain_until": format_timestamp(until)
        if isinstance(until, datetime)
        else (str(until) if until else None),
        "legal_hold": head.get("ObjectLockLegalHoldStatus") == "ON",
    }


def _full_object_checksum(head: Mapping[str, Any]) -> str | None:
    value = head.get("ChecksumSHA256")
    kind = head.get("ChecksumType")
    multipart = "-" in str(head.get("ETag", ""))  # some servers (moto) omit ChecksumType and the -N suffix
    if (
        not value
        or "-" in str(value)
        or (kind or ("COMPOSITE" if multipart else "FULL_OBJECT")) != "FULL_OBJECT"
    ):
        return None
    try:
        return base64.b64decode(str(value), validate=True).hex()
    except (binascii.Error, ValueError):
        return f"(not base64: {value})"


def stored_object(
    client: S3Client,
    bucket: str,
    key: str,
    head: Mapping[str, Any] | None = None,
    *,
    read_content: bool = False,
) -> StoredObject | None:
    """What S3 holds at ``key`` (the checksum sources of the module docstring); ``None`` if absent.

    :param head: the object's HEAD answer, when the caller already has it.
    :param read_content: hash the bytes even when a checksum source exists.
    :raises RingCXUnverifiableError: S3 answered 403 to a read the verdict needs.
    """
    found = head if head is not None else head_object(client, bucket, key)
    if found is None:
        return None
    checksums: list[tuple[str, str]] = []
    full = _full_object_checksum(found)
    if full is not None:
        checksums.append(("full-object ChecksumSHA256", full))
    metadata = {str(name).lower(): value for name, value in (found.get("Metadata") or {}).items()}
    if metadata.get("sha256"):
        checksums.append(("metadata sha256", str(metadata["sha256"]).lower()))
    version_id = found.get("VersionId")  # every later read is of the version the HEAD showed
    if not checksums:
        tag = sha256_tag(client, bucket, key, version_id)
        if tag is not None:
            checksums.append(("sha256 tag", tag))
    content: tuple[str | None, int | None] = (None, None)
    if read_content or not checksums:
        content = hash_object(client, bucket, key, version_id)
    return StoredObject(
        key=key,
        size=int(found.get("ContentLength", -1)),
        version_id=version_id,
        checksums=tuple(checksums),
        content_sha256=content[0],
        content_size=content[1],
    )


def _claimed(body: bytes) -> Identity | None:
    """The identity an (invalid) sidecar claims, when its three ids are readable strings."""
    try:
        document = strict_loads(body)  # depth-checked: a hostile sidecar cannot raise RecursionError
    except ValueError:  # not JSON, not UTF-8, too deep or non-finite
        return None
    if not isinstance(document, dict):
        return None
    sub, dialog, segment = (document.get(name) for name in ("sub_account_id", "dialog_id", "segment_id"))
    if not (isinstance(sub, str) and isinstance(dialog, str) and isinstance(segment, str)):
        return None
    return Identity(sub, dialog, segment)


def _collision(bucket: str, key: str, sidecar_key: str, claimed: Identity, expected: Identity) -> str:
    return (
        f"key collision, NOT archived: the key of {expected.describe()} already holds the recording of "
        f"{claimed.describe()} (its sidecar says so). Use a key_template whose ids are whole path segments "
        f"(the default is), then re-run the window. Key s3://{bucket}/{key}, sidecar {sidecar_key}"
    )


def verify_archived(
    client: S3Client,
    bucket: str,
    expected: Identity,
    wav_key: str,
    sidecar_key: str,
    *,
    verify_content: bool = False,
    head: Mapping[str, Any] | None = None,
) -> Verdict:
    """Decide whether ``expected`` is archived and verified at ``wav_key`` (rules in the module docstring).

    :param expected: the segment being checked.
    :param verify_content: read the bytes back and hash them even when S3 holds a checksum.
    :param head: the WAV key's HEAD answer, when the caller already has it.
    :raises ClientError: an S3 error other than 403/404 (retryable ones included).
    """
    try:
        found = head if head is not None else head_object(client, bucket, wav_key)
        if found is None:
            return Verdict(OBJECT_MISSING, wav_key, f"no object at s3://{bucket}/{wav_key}")
        size, version_id = int(found.get("ContentLength", -1)), found.get("VersionId")
        body = get_body(client, bucket, sidecar_key)
        if body is None:
            return Verdict(
                SIDECAR_MISSING, wav_key, f"no sidecar at {sidecar_key}", size=size, version_id=version_id
            )
        try:
            sidecar = parse_sidecar(body)
        except SidecarInvalid as err:
            claimed = _claimed(body)
            if claimed is not None and claimed != expected:
                reason = _collision(bucket, wav_key, sidecar_key, claimed, expected)
                return Verdict(COLLISION, wav_key, reason, size=size, version_id=version_id)
            return Verdict(
                SIDECAR_INVALID, wav_key, f"sidecar {sidecar_key} {err}", size=size, version_id=version_id
            )
        claimed = Identity(sidecar["sub_account_id"], sidecar["dialog_id"], sidecar["segment_id"])
        sha = str(sidecar["sha256"])
        if claimed != expected:
            reason = _collision(bucket, wav_key, sidecar_key, claimed, expected)
            return Verdict(COLLISION, wav_key, reason, size=size, sha256=sha, version_id=version_id)
        if sidecar["size"] != size:  # before any further read: the HEAD already disagrees
            _, reason = StoredObject(wav_key, size, version_id, ()).mismatch(
                sha, sidecar["size"], claim="sidecar"
            ) or (SIZE_MISMATCH, "")
            return Verdict(SIZE_MISMATCH, wav_key, reason, size=size, sha256=sha, version_id=version_id)
        stored = stored_object(client, bucket, wav_key, found, read_content=verify_content)
        if stored is None:  # pragma: no cover - found is never None here
            return Verdict(OBJECT_MISSING, wav_key, f"no object at s3://{bucket}/{wav_key}")
        common: dict[str, Any] = {
            "size": size,
            "sha256": sha,
            "version_id": version_id,
            "content_verified": stored.content_sha256 is not None,
            "stored": stored,
            "lock": object_lock_facts(found),
        }
        mismatch = stored.mismatch(sha, size, claim="sidecar")
        if mismatch is not None:
            state, reason = mismatch
            verified = common["content_verified"] and state != CONTENT_MISMATCH
            return Verdict(state, wav_key, reason, **{**common, "content_verified": verified})
        return Verdict(ARCHIVED, wav_key, documents=sidecar_documents(sidecar, wav_key), **common)
    except RingCXUnverifiableError as err:
        return Verdict(UNVERIFIABLE, wav_key, str(err))


def sidecar_documents(sidecar: Mapping[str, Any], wav_key: str) -> dict[str, str]:
    """The documents a valid sidecar references, at this recording's own keys (a reference to any other key
    is ignored: the keys are derived from ``wav_key``, the sidecar only says which were asked for)."""
    documents: dict[str, str] = {}
    transcript = keys.transcript_key(wav_key)
    if isinstance(sidecar.get("transcript"), Mapping) and sidecar["transcript"].get("key") == transcript:
        documents["transcript"] = transcript
    summaries = sidecar.get("summaries")
    for kind in keys.SUMMARY_KINDS:
        ref = summaries.get(kind) if isinstance(summaries, Mapping) else None
        if isinstance(ref, Mapping) and ref.get("key") == keys.summary_key(wav_key, kind):
            documents[f"summary.{kind}"] = ref["key"]
    return documents


def verify_transcript(
    client: S3Client,
    bucket: str,
    key: str,
    check_body: Callable[[bytes], str | None],
    *,
    noun: str = "transcript",
) -> Verdict:
    """The verdict on a transcript or AI summary object (issue 17; ``noun`` names it): ``archived`` only when
    its bytes, read back (they are small), hash to the ``sha256`` metadata written with them (the SHA-256 of
    the bytes RingCX sent), every checksum S3 holds agrees, and ``check_body`` finds no problem in them (JSON,
    the segment's own ids). Otherwise ``object_missing``, a mismatch state, ``body_invalid`` or
    ``unverifiable``, with the reason."""
    try:
        stored = stored_object(client, bucket, key)
        if stored is None:
            return Verdict(OBJECT_MISSING, key, f"no {noun} at s3://{bucket}/{key}")
        body = get_body(client, bucket, key) or b""
        read = replace(stored, content_sha256=hashlib.sha256(body).hexdigest(), content_size=len(body))
        claim = dict(read.checksums).get("metadata sha256")
        common: dict[str, Any] = {"size": stored.size, "sha256": claim, "version_id": stored.version_id}
        problem = (
            read.mismatch(claim, stored.size, claim="its sha256 metadata")
            if claim
            else (CHECKSUM_MISMATCH, f"{key} has no sha256 metadata: not written by this provider")
        ) or ((BODY_INVALID, reason) if (reason := check_body(body)) else None)
        state, why = problem or (ARCHIVED, "")
        return Verdict(state, key, why, content_verified=True, stored=read, **common)
    except RingCXUnverifiableError as err:
        return Verdict(UNVERIFIABLE, key, str(err))
