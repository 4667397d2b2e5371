"""S3 keys: injective ID sanitising and key template rendering.

Every identifier that reaches a key (dialog id, segment id, sub-account id) goes through :func:`safe_id`:

- every byte of its UTF-8 form outside ``[A-Za-z0-9._-]`` is percent-encoded (``%2F`` for ``/``, ``%25``
  for ``%`` itself, ``%7E`` for ``~``, control characters and unicode byte by byte), so the result never
  holds a ``/`` and cannot escape the prefix;
- an id that is exactly ``.`` or ``..`` is encoded whole (``%2E``, ``%2E%2E``), so no key segment is a
  dot-segment that a client or a sync tool might collapse; an id ending in ``.transcript``,
  ``.summary.agent`` or ``.summary.auto`` has that first dot encoded (``x%2Etranscript``), so no sidecar key
  ever equals a transcript or summary key (:func:`transcript_key`, :func:`summary_key`);
- an encoded id longer than :data:`MAX_ID_LENGTH` is cut and suffixed with ``~`` plus 32 hex digits of the
  SHA-256 of the raw id. ``~`` is always encoded elsewhere, so a shortened id never equals the encoding of
  another id.

Every other name the product gives an S3 object is built here too: the window manifest, the late-arrival
rescan's manifest and the window report (:func:`manifest_key`, :func:`rescan_manifest_key`,
:func:`report_key`, all from :func:`window_part`; :func:`parse_window_part` reads one back), the coverage
ledger's per-day rollup (:func:`coverage_key`), and the time partition a window's recordings share
(:func:`partition_prefix`, the "S3 recordings" link).

Percent-encoding is injective (it can be decoded), and the shortened form is distinguishable from every
plain encoding, so two distinct ids never share a key (short of a 128-bit hash collision).

Key templates use ``str.format`` field names only (no attribute access, indexing or format specs) from
:data:`KEY_FIELDS`, must contain ``{sub_account_id}``, ``{dialog_id}`` and ``{segment_id}``, each alone in
its path segment (:func:`validate_key_template` explains why that makes keys injective), and must end with
``.wav``; the sidecar key is the WAV key with ``.json`` instead.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from collections.abc import Iterable
from datetime import date, datetime, timezone

from airflow_provider_ringcx.exceptions import RingCXConfigError

#: The default WAV key template (Hive-style partitions by the segment's start, UTC).
DEFAULT_KEY_TEMPLATE = (
    "{prefix}/sub_account={sub_account_id}/year={year}/month={month}/day={day}/hour={hour}/"
    "{dialog_id}/{segment_id}.wav"
)
#: Fields a key template may use.
KEY_FIELDS = frozenset(
    {"prefix", "sub_account_id", "year", "month", "day", "hour", "minute", "date", "dialog_id", "segment_id"}
)
#: Longest sanitised id in a key segment (S3 keys are limited to 1024 bytes in all).
MAX_ID_LENGTH = 180
_HASH_HEX = 32
_SAFE = frozenset(string.ascii_letters + string.digits + "._-")
_S3_KEY_LIMIT = 1024
TRANSCRIPT_TAIL = ".transcript"
SUMMARY_KINDS = ("agent", "auto")  # the AI summary kinds RingCX serves; each has its own key
_DOCUMENT_TAILS = (TRANSCRIPT_TAIL, *(f".summary.{kind}" for kind in SUMMARY_KINDS))
ID_FIELDS = ("sub_account_id", "dialog_id", "segment_id")


def safe_id(value: str, *, max_length: int = MAX_ID_LENGTH) -> str:
    """Return an injective, path-safe form of an identifier for one S3 key segment.

    :param value: the raw identifier as the vendor sent it.
    :param max_length: longest result; longer encodings are cut and suffixed with ``~`` + a hash.
    :raises RingCXConfigError: the identifier is empty.
    """
    if not isinstance(value, str) or value == "":
        raise RingCXConfigError(f"an identifier used in an S3 key is empty or not a string: {value!r}")
    if value in {".", ".."}:
        return "%2E" * len(value)
    encoded = "".join(
        char if char in _SAFE else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for char in value
    )
    tail = next((tail for tail in _DOCUMENT_TAILS if encoded.endswith(tail)), None)
    if tail:  # else the sidecar of "x.transcript" is x's transcript key ("x.summary.agent": x's summary)
        encoded = encoded[: -len(tail)] + "%2E" + tail[1:]
    if len(encoded) <= max_length:
        return encoded
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_HEX]
    head = encoded[: max_length - _HASH_HEX - 1]
    cut = head.rfind("%")
    if cut >= len(head) - 2:  # do not leave half an escape at the end
        head = head[:cut]
    return f"{head}~{digest}"


def normalize_prefix(prefix: str | None) -> str:
    """Strip slashes around a prefix and refuse empty, ``.`` or ``..`` segments in it.

    :param prefix: the configured prefix (``""`` or ``None`` for the bucket root).
    :raises RingCXConfigError: the prefix has a dot-segment or an empty segment.
    """
    text = (prefix or "").strip("/")
    if not text:
        return ""
    for part in text.split("/"):
        if part in {"", ".", ".."}:
            raise RingCXConfigError(
                f"S3 prefix {prefix!r} has an empty, '.' or '..' segment; use a plain path such as 'ringcx'"
            )
    return text


@functools.lru_cache(maxsize=64)
def validate_key_template(template: str) -> str:
    """Check a WAV key template and return it.

    **Injectivity** (issue #12 item 1): two distinct (sub-account, dialog, segment) must never share a key.
    The rule: ``{sub_account_id}``, ``{dialog_id}`` and ``{segment_id}`` must all appear, and each
    occurrence must be the only field of its path segment (the text between two ``/``), with fixed text
    around it at most (``sub_account={sub_account_id}``, ``{segment_id}.wav``). Why this is sound: no field
    value holds a ``/`` (:func:`safe_id` percent-encodes it; time fields are digits; the prefix is fixed for
    a run), so every key of one template has the same number of segments, and each id sits alone in a
    segment at a fixed position, between fixed text: the id is recovered by cutting that text off, and
    :func:`safe_id` is injective. A segment such as ``{dialog_id}_{segment_id}.wav`` is refused: dialog
    ``s-v-1_p`` / segment ``x-1`` and dialog ``s-v-1`` / segment ``p_x-1`` would share its key. Escaping the
    separator inside the ids was the alternative; one rule with no per-template escaping is simpler to
    audit, and the error gives the fixed template.

    :raises RingCXConfigError: an unknown or complex field, a missing id field, an id sharing a path
        segment with another field, or no ``.wav`` ending; the message names the template and a fix.
    """
    fields: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise RingCXConfigError(f"key template {template!r} is not a valid format string: {err}")
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in KEY_FIELDS or spec or conversion:
            raise RingCXConfigError(
                f"key template {template!r} uses {{{name}}}; allowed fields are plain "
                f"{', '.join(sorted(KEY_FIELDS))}"
            )
        fields.add(name)
    missing = [name for name in ID_FIELDS if name not in fields]
    if missing:
        raise RingCXConfigError(
            f"key template {template!r} lacks {missing}: every segment of every sub-account needs its own "
            f"key; use for example {_suggest(template)!r}"
        )
    if not template.endswith(".wav"):
        raise RingCXConfigError(f"key template {template!r} must end with '.wav' (the sidecar uses '.json')")
    for segment in _segments(parsed):
        names = [token[1:-1] for token in segment if _is_field(token)]
        if len(names) > 1 and set(names) & set(ID_FIELDS):
            raise RingCXConfigError(
                f"key template {template!r} is not injective: its path segment {''.join(segment)!r} puts "
                f"{' and '.join('{' + n + '}' for n in names)} together, so two different segments can get "
                "one key (as dialog 's-v-1_p' + segment 'x-1' and dialog 's-v-1' + segment 'p_x-1' do in "
                "'{dialog_id}_{segment_id}'). Give each id its own path segment: use "
                f"{_suggest(template)!r}"
            )
    return template


def _is_field(token: str) -> bool:
    return token.startswith("{") and token.endswith("}")


def _segments(parsed: list[tuple[str, str | None, str | None, str | None]]) -> list[list[str]]:
    """The template's path segments, each a list of literal texts and ``{field}`` tokens."""
    segments: list[list[str]] = [[]]
    for literal, name, _spec, _conversion in parsed:
        pieces = literal.split("/")
        if pieces[0]:
            segments[-1].append(pieces[0])
        for piece in pieces[1:]:
            segments.append([piece] if piece else [])
        if name is not None:
            segments[-1].append("{" + name + "}")
    return segments


def _suggest(template: str) -> str:
    """A template close to ``template`` that passes: ids split into their own segments, missing ids added."""
    try:
        segments = _segments(list(string.Formatter().parse(template)))
    except ValueError:
        return DEFAULT_KEY_TEMPLATE
    fixed: list[str] = []
    for segment in segments:
        text, need_slash = "", False
        for index, token in enumerate(segment):
            if _is_field(token):
                text += ("/" if need_slash else "") + token
                need_slash = True
            elif need_slash and index < len(segment) - 1:  # text between two fields starts a new segment
                text += "/" + token.lstrip("_-.~+,; ")
                need_slash = False
            else:
                text += token
        fixed.append(text)
    suggestion = "/".join(fixed)
    if "{sub_account_id}" not in suggestion:
        head, sep, rest = suggestion.partition("{prefix}/")
        suggestion = (
            f"{head}{sep}sub_account={{sub_account_id}}/{rest}"
            if sep
            else (f"sub_account={{sub_account_id}}/{suggestion}")
        )
    if "{dialog_id}" not in suggestion or "{segment_id}" not in suggestion or not suggestion.endswith(".wav"):
        return DEFAULT_KEY_TEMPLATE
    try:
        validate_key_template(suggestion)
    except RingCXConfigError:
        return DEFAULT_KEY_TEMPLATE
    return suggestion


def partition_fields(prefix: str | None, sub_account_id: str, when: datetime) -> dict[str, str]:
    """The template fields other than the ids: prefix, sanitised sub-account and UTC time partitions."""
    moment = when.astimezone(timezone.utc)
    return {
        "prefix": normalize_prefix(prefix),
        "sub_account_id": safe_id(sub_account_id),
        "year": f"{moment.year:04d}",
        "month": f"{moment.month:02d}",
        "day": f"{moment.day:02d}",
        "hour": f"{moment.hour:02d}",
        "minute": f"{moment.minute:02d}",
        "date": moment.strftime("%Y-%m-%d"),
    }


def recording_key(
    *, template: str, prefix: str | None, sub_account_id: str, dialog_id: str, segment_id: str, when: datetime
) -> str:
    """Render the WAV key of one segment.

    :param template: a template accepted by :func:`validate_key_template`.
    :param prefix: the key prefix; its slashes are normalised.
    :param when: the segment's start (UTC partitions are derived from it).
    :raises RingCXConfigError: the template is invalid or the key exceeds S3's 1024-byte limit.
    """
    validate_key_template(template)
    key = template.format(
        **partition_fields(prefix, sub_account_id, when),
        dialog_id=safe_id(dialog_id),
        segment_id=safe_id(segment_id),
    ).lstrip("/")
    if len(key.encode("utf-8")) > _S3_KEY_LIMIT:
        raise RingCXConfigError(f"S3 key for segment {dialog_id!r}/{segment_id!r} exceeds 1024 bytes: {key}")
    return key


def sidecar_key(wav_key: str) -> str:
    """The sidecar JSON key of a WAV key (``.wav`` replaced by ``.json``)."""
    return wav_key[: -len(".wav")] + ".json" if wav_key.endswith(".wav") else wav_key + ".json"


def transcript_key(wav_key: str) -> str:
    """The transcript document's key beside the WAV: ``{segmentId}.transcript.json`` (issue 17)."""
    return sidecar_key(wav_key)[: -len(".json")] + TRANSCRIPT_TAIL + ".json"


def summary_key(wav_key: str, kind: str) -> str:
    """An AI summary's key beside the WAV: ``{segmentId}.summary.{agent|auto}.json`` (issue 17)."""
    if kind not in SUMMARY_KINDS:
        raise RingCXConfigError(f"summary kind {kind!r} is not one of {', '.join(SUMMARY_KINDS)}")
    return sidecar_key(wav_key)[: -len(".json")] + f".summary.{kind}.json"


def partition_prefix(
    *, template: str, prefix: str | None, sub_account_id: str, starts: Iterable[datetime]
) -> str:
    """The deepest S3 "folder" holding every listed segment's key: the common time partition.

    The key template is cut before its first id field (``{dialog_id}``/``{segment_id}``) and rendered for
    each segment start (UTC, as :func:`recording_key` does); the result is the longest prefix, ending with
    ``/``, that all renderings share. A 15-minute window inside one hour gives
    ``{prefix}/sub_account={id}/year=Y/month=M/day=D/hour=H/``; one spanning midnight, or no segment at all,
    gives ``{prefix}/sub_account={id}/``.

    :param template: a WAV key template (validated elsewhere).
    :param starts: the segments' start times (aware datetimes).
    """
    head = ""
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        head += literal.replace("{", "{{").replace("}", "}}")
        if name is None:
            continue
        if name in ("dialog_id", "segment_id"):
            break
        head += "{" + name + "}"
    rendered = [
        head.format(**partition_fields(prefix, sub_account_id, moment)).lstrip("/") for moment in starts
    ]
    if not rendered:
        return _under("", prefix, sub_account_id) + "/"
    common = rendered[0]
    for other in rendered[1:]:
        size = 0
        while size < min(len(common), len(other)) and common[size] == other[size]:
            size += 1
        common = common[:size]
    return common[: common.rfind("/") + 1]


def window_stamp(moment: datetime) -> str:
    """Format a window bound for keys: ``20260302T1400Z`` (seconds kept when non-zero).

    :raises RingCXConfigError: ``moment`` has no time zone (a naive time would be read as local time).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RingCXConfigError(f"timestamp {moment.isoformat()} has no time zone; pass an aware datetime")
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%SZ" if moment.second or moment.microsecond else "%Y%m%dT%H%MZ")


def window_part(start: datetime, end: datetime) -> str:
    """A window's part of every key that names it: ``20260302T1400Z_20260302T1415Z``."""
    return f"{window_stamp(start)}_{window_stamp(end)}"


def _under(kind: str, prefix: str | None, sub_account_id: str, *tail: str) -> str:
    """``{prefix}/{kind}/sub_account={id}/{tail}``, without the empty parts (no prefix, no kind)."""
    parts = [normalize_prefix(prefix), kind, f"sub_account={safe_id(sub_account_id)}", *tail]
    return "/".join(part for part in parts if part)


def _window_key(kind: str, prefix: str | None, sub_account_id: str, start: datetime, end: datetime) -> str:
    return _under(kind, prefix, sub_account_id, f"window={window_part(start, end)}")


def manifest_key(prefix: str | None, sub_account_id: str, start: datetime, end: datetime) -> str:
    """The window manifest key: ``{prefix}/_manifests/sub_account={id}/window={START}_{END}.jsonl``."""
    return _window_key("_manifests", prefix, sub_account_id, start, end) + ".jsonl"


def rescan_manifest_key(
    prefix: str | None,
    sub_account_id: str,
    start: datetime,
    end: datetime,
    *,
    by_start: datetime,
    by_end: datetime,
) -> str:
    """The manifest of the late-arrival rescan of window ``[start, end)`` made by the run of window
    ``[by_start, by_end)``: beside the window's own manifest, ``...window={START}_{END}.rescan-by-{BY}.jsonl``
    (one per rescanning run, so a rescan never meets the window's write-once manifest)."""
    own = _window_key("_manifests", prefix, sub_account_id, start, end)
    return f"{own}.rescan-by-{window_part(by_start, by_end)}.jsonl"


def report_key(prefix: str | None, sub_account_id: str, start: datetime, end: datetime) -> str:
    """The window report key (issue 5): ``{prefix}/_reports/sub_account={id}/window={START}_{END}.json``."""
    return _window_key("_reports", prefix, sub_account_id, start, end) + ".json"


_STAMP = re.compile(r"(\d{8}T\d{4}(?:\d{2})?Z)")


def _parse_stamp(text: str) -> datetime | None:
    layout = "%Y%m%dT%H%M%SZ" if len(text) == 16 else "%Y%m%dT%H%MZ"
    try:
        return datetime.strptime(text, layout).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def parse_window_part(text: str) -> tuple[datetime, datetime] | None:
    """The inverse of :func:`window_part`: ``20260302T1400Z_20260302T1415Z`` -> (start, end), or ``None``
    when ``text`` is not a window part."""
    start_text, sep, end_text = text.partition("_")
    if not sep or not _STAMP.fullmatch(start_text) or not _STAMP.fullmatch(end_text):
        return None
    start, end = _parse_stamp(start_text), _parse_stamp(end_text)
    return (start, end) if start is not None and end is not None and start < end else None


def report_day_prefix(prefix: str | None, sub_account_id: str, day: date) -> str:
    """What every report key of a window *starting* on ``day`` (UTC) begins with: ``...window=20260302T``."""
    return _under("_reports", prefix, sub_account_id, f"window={day:%Y%m%d}T")


def manifest_day_prefix(prefix: str | None, sub_account_id: str, day: date) -> str:
    """What every manifest key of a window starting on ``day`` (UTC) begins with."""
    return _under("_manifests", prefix, sub_account_id, f"window={day:%Y%m%d}T")


def coverage_key(prefix: str | None, sub_account_id: str, day: date) -> str:
    """The coverage ledger's per-day rollup (issue 15):
    ``{prefix}/_coverage/sub_account={id}/date=YYYY-MM-DD.json``."""
    return _under("_coverage", prefix, sub_account_id, f"date={day:%Y-%m-%d}.json")


def index_key(prefix: str | None, sub_account_id: str, day: date) -> str:
    """The archive index of one sub-account and UTC day (issue 17, :mod:`airflow_provider_ringcx.index`):
    ``{prefix}/_index/sub_account={id}/date=YYYY-MM-DD/segments.jsonl.gz`` (Hive-style partitions)."""
    return f"{index_prefix(prefix, sub_account_id)}date={day:%Y-%m-%d}/segments.jsonl.gz"


def index_prefix(prefix: str | None, sub_account_id: str | None = None) -> str:
    """Where the index lies: ``{prefix}/_index/``, or one sub-account's ``.../sub_account={id}/``."""
    base = "/".join(part for part in (normalize_prefix(prefix), "_index") if part) + "/"
    return base + (f"sub_account={safe_id(sub_account_id)}/" if sub_account_id is not None else "")


def hold_audit_key(prefix: str | None, sub_account_id: str, when: datetime, request_id: str) -> str:
    """A legal-hold change's audit record (:mod:`airflow_provider_ringcx.holds`), written once:
    ``{prefix}/_audit/legal_holds/sub_account={id}/{YYYYMMDDTHHMMSSZ}_{request id}.json``."""
    stamp = when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return _under("_audit/legal_holds", prefix, sub_account_id, f"{stamp}_{safe_id(request_id)}.json")
