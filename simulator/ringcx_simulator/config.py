"""Every simulator knob, in one dataclass, and the command line generated from it.

Each field carries its help text in ``metadata["help"]``; :func:`build_parser` turns the fields into
``argparse`` options (``--calls-per-hour``, ``--no-mp3-for-browsers``...), so ``--help`` documents every knob
and nothing can be added here without showing up there. :meth:`SimConfig.replace` validates a changed copy;
the running app swaps the whole object atomically on ``PATCH /_sim/config``.

Times called *simulated seconds* are divided by ``time_scale`` to get real seconds: with ``time_scale=60`` a
60 s budget window or a 300 s token lifetime lasts 1 s or 5 s of real time.
"""

from __future__ import annotations

# ruff: noqa: RUF009  (``_knob`` is ``dataclasses.field`` plus help text; its defaults are immutable)
import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, get_args

TokenFormat = Literal["jwt", "opaque"]
RetryAfterMode = Literal["seconds", "date", "off"]
SegmentIdField = Literal["segmentId", "segmentID"]
ForbiddenShape = Literal["errors", "access_denied"]
DownloadLength = Literal["content-length", "chunked", "close"]
WavDataSize = Literal["exact", "zero", "unknown"]

#: Fields that are tuples of strings on the command line as comma-separated lists.
_LIST_FIELDS = {
    "sub_account_ids", "inactive_sub_account_ids", "restricted_ids", "transcript_variants", "summary_variants"
}  # fmt: skip
#: Fields never echoed back by ``GET /_sim/config``.
SECRET_FIELDS = frozenset({"client_secret", "jwt", "api_token"})


def _knob(default: Any, help_text: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help_text, **extra})


def parse_budget(spec: str) -> list[tuple[int, float]]:
    """Parse ``"COUNT/SECONDS[,COUNT/SECONDS...]"`` (or ``"off"``/``""``) into ``[(count, seconds)]``.

    :raises ValueError: a part is not ``COUNT/SECONDS`` with positive numbers.
    """
    text = spec.strip().lower()
    if text in ("", "off", "none"):
        return []
    limits: list[tuple[int, float]] = []
    for part in text.split(","):
        count, _, seconds = part.strip().partition("/")
        try:
            limit = (int(count), float(seconds))
        except ValueError:
            raise ValueError(f"budget {spec!r}: {part!r} is not COUNT/SECONDS (e.g. 2/60,9/900 or off)")
        if limit[0] < 1 or limit[1] <= 0:
            raise ValueError(f"budget {spec!r}: count and seconds must be positive")
        limits.append(limit)
    return limits


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant (``Z`` or offset; naive means UTC) or epoch milliseconds."""
    value = text.strip()
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


@dataclass(frozen=True)
class SimConfig:
    """All simulator knobs. Defaults are the vendor's (see ``ringcx-api.md``) unless noted."""

    # --- identity and credentials -------------------------------------------------------------------
    client_id: str = _knob(
        "sim-client-id", "RingCentral app client id (HTTP Basic user on /restapi/oauth/token)."
    )
    client_secret: str = _knob("sim-client-secret", "RingCentral app client secret (HTTP Basic password).")
    jwt: str = _knob("sim-jwt-assertion", "The only JWT assertion the RingCentral JWT-bearer grant accepts.")
    api_token: str = _knob(
        "aws80:sim-permanent-api-token",
        "Pre-issued permanent RingCX API token accepted as Bearer ('' = none).",
    )
    rc_account_id: str = _knob(
        "980634004", "RingCentral account UID (rcAccountId; id of /restapi/v1.0/account/~)."
    )
    main_account_id: str = _knob("99990000", "RingCX main account id (mainAccountId).")
    sub_account_ids: tuple[str, ...] = _knob(
        ("99999999",),
        "RingCX sub-account ids served, comma-separated; each gets its own traffic and budgets.",
    )
    inactive_sub_account_ids: tuple[str, ...] = _knob(
        ("99990001",),
        "Sub-accounts of the main account listed with isActive=false by GET /voice/api/integration/v1/"
        "admin/accounts/{mainAccountId}/subaccounts, comma-separated; their data routes answer 403.",
    )
    # --- tokens -------------------------------------------------------------------------------------
    token_lifetime: float = _knob(300.0, "RingCX access token lifetime, simulated seconds.")
    refresh_token_lifetime: float = _knob(86400.0, "RingCX refresh token lifetime, simulated seconds.")
    rc_token_lifetime: float = _knob(
        3600.0, "RingCentral access token lifetime (expires_in), simulated seconds."
    )
    token_format: TokenFormat = _knob(
        "jwt", "Token shape: jwt (header.payload.signature with exp) or opaque."
    )
    expired_message: str = _knob(
        "Jwt is expired", "text/plain body of a 401 (SPEC variant: 'JWT is expired.')."
    )
    token_budget: str = _knob("5/60", "Token exchange budget COUNT/SECONDS[,...] (simulated), or off.")
    refresh_uses_token_budget: bool = _knob(
        False, "Count /api/auth/token/refresh against the exchange budget."
    )
    # --- clock ----------------------------------------------------------------------------------------
    time_scale: float = _knob(1.0, "Simulated seconds per real second for budgets and token lifetimes.")
    now: str | None = _knob(None, "Pin the data clock to this ISO-8601 instant (default: the real clock).")
    # --- traffic --------------------------------------------------------------------------------------
    seed: int = _knob(42, "Seed of the deterministic traffic and audio.")
    calls_per_hour: int = _knob(300, "Dialogs started per UTC hour per sub-account (exact count).")
    traffic_start: str = _knob("2020-01-01T00:00:00Z", "No dialog starts before this instant.")
    traffic_end: str | None = _knob(None, "No dialog starts at or after this instant (default: unbounded).")
    min_duration: float = _knob(15.0, "Shortest agent segment, seconds (before --duration-scale).")
    max_duration: float = _knob(900.0, "Longest agent segment, seconds (before --duration-scale).")
    duration_scale: float = _knob(1.0, "Multiply every generated duration (e.g. 0.01 for tiny, fast WAVs).")
    transfer_share: float = _knob(0.3, "Probability that a segment is transferred to another agent.")
    mono_share: float = _knob(0.1, "Share of recordings with 1 channel instead of 2.")
    no_recording_share: float = _knob(0.02, "Share of voice segments with hasRecording=false.")
    restricted_share: float = _knob(0.0, "Share of recorded segments whose download answers 403.")
    restricted_ids: tuple[str, ...] = _knob((), "Segment ids whose download answers 403, comma-separated.")
    digital_share: float = _knob(0.0, "Share of dialogs that are digital (EMAIL/SMS...; no recording).")
    malformed_events_share: float = _knob(
        0.0,
        "Share of recorded segments whose segmentEvents list is malformed (unpaired, out of order, "
        "duplicate, begins with REC_STOP, unknown eventType: traffic.MALFORMED_EVENTS), besides the "
        "tenth with a pause.",
    )
    agents: int = _knob(40, "Size of the agent pool.")
    agent_channel: int = _knob(0, "Which channel (0 or 1) of a stereo recording carries the agent.")
    # --- interaction-metadata -------------------------------------------------------------------------
    max_interval: int = _knob(10800, "Largest accepted timeInterval, seconds (3600 on older deployments).")
    min_window_age: float = _knob(300.0, "Reject windows ending later than now minus this many seconds.")
    processing_delay: float = _knob(
        900.0, "Hide segments (and 404 their audio) until this long after their end."
    )
    metadata_budget: str = _knob("2/60,9/900", "interaction-metadata budget per sub-account, or off.")
    retry_after: RetryAfterMode = _knob("seconds", "Retry-After on 429: seconds, date (HTTP-date) or off.")
    segment_id_field: SegmentIdField = _knob("segmentId", "Metadata field name of the segment id.")
    numeric_ids: bool = _knob(False, "Send numeric ids (subAccountId, participant ids...) as JSON numbers.")
    null_fields: bool = _knob(False, "Send segmentEvents and systemDisposition as null on every row.")
    extra_fields: bool = _knob(False, "Add undocumented fields (segmentRecordingURL, campaignId...) to rows.")
    forbidden_shape: ForbiddenShape = _knob("errors", "403 body: errors (vendor Errors) or access_denied.")
    # --- recording download -----------------------------------------------------------------------------
    download_budget: str = _knob("120/60", "Recording download budget per sub-account, or off.")
    download_length: DownloadLength = _knob(
        "content-length",
        "Recording framing: Content-Length, chunked, or close (neither: the body ends when the connection "
        "closes).",
    )
    wav_data_size: WavDataSize = _knob(
        "exact",
        "WAV header sizes: exact, zero (RIFF and data size 0) or unknown (0xFFFFFFFF), as streaming "
        "encoders write them.",
    )
    audio_duration_share: float = _knob(
        1.0,
        "Recordings last this share of their metadata duration (0.5: half the audio, with a WAV header and "
        "Content-Length that agree with it; 1.5: longer than the metadata says).",
    )
    mp3_for_browsers: bool = _knob(True, "Answer a browser-like User-Agent with a small audio/mpeg body.")
    chunk_size: int = _knob(262144, "Bytes per streamed body chunk.")
    stream_rate: float = _knob(
        0.0, "WAN model: bytes per real second per recording body, each response paced alone (0 = unlimited)."
    )
    download_latency: float = _knob(
        0.0, "WAN model: real seconds before a recording body's first byte (0 = none)."
    )
    # --- transcripts (see transcripts.py) ------------------------------------------------------------
    transcript_budget: str = _knob("120/60", "Transcript budget per sub-account, or off.")
    transcript_missing_share: float = _knob(
        0.1, "Share of hasTranscript segments whose transcript 404s forever."
    )
    transcript_late_share: float = _knob(
        0.2, "Share of hasTranscript segments whose transcript 404s until --transcript-delay after their end."
    )
    transcript_hostile_share: float = _knob(
        0.0,
        "Share of hasTranscript segments served a hostile transcript (malformed, huge, wrong_ids, array).",
    )
    transcript_delay: float = _knob(
        3600.0, "Simulated seconds after a segment's end when a late transcript is ready."
    )
    transcript_huge_bytes: int = _knob(9 * 1024 * 1024, "Size of the message of a huge transcript, bytes.")
    transcript_variants: tuple[str, ...] = _knob(
        (),
        "Force transcript kinds, comma-separated segmentId=kind "
        "(ok, missing, late, malformed, huge, wrong_ids, array).",
    )
    # --- AI summaries (see summaries.py; paced by transcript_budget: one 120/min class) -------------
    summary_missing_share: float = _knob(0.1, "Share of hasTranscript segments' summaries that 404 forever.")
    summary_late_share: float = _knob(0.2, "Share of summaries that 404 until --summary-delay after the end.")
    summary_hostile_share: float = _knob(0.0, "Share of summaries served hostile (malformed, html, array).")
    summary_delay: float = _knob(5400.0, "Simulated seconds after a segment's end until a late summary.")
    summary_variants: tuple[str, ...] = _knob(
        (), "Force summary kinds (agent, auto), segmentId=kind: ok, missing, late, malformed, html, array."
    )
    # --- bulk segments (volume tests; see bulk.py) -------------------------------------------------------
    bulk_segments: int = _knob(
        0,
        "Volume tests: add this many synthetic recorded segments (first sub-account) ending in the window "
        "--bulk-start .. + --bulk-span; rows are made from their index on request and the metadata "
        "response is streamed; recordings share one tone, SHA-256 only on ground-truth request (0 = none).",
    )
    bulk_start: str = _knob("2026-03-02T14:00:00Z", "Start of the window holding the bulk segments.")
    bulk_span: float = _knob(900.0, "Seconds over which the bulk segments' ends are spread evenly.")
    bulk_duration_ms: int = _knob(
        100, "Length of each bulk recording, ms (mono 8 kHz: 100 ms = 1,644 bytes with the header)."
    )
    # --- faults ----------------------------------------------------------------------------------------
    fault_seed: int = _knob(0, "Seed of the probabilistic fault draws.")
    faults: tuple[dict[str, Any], ...] = _knob(
        (), "Initial fault rules, JSON list (or @file); same shape as POST /_sim/faults."
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check ranges and enums.

        :raises ValueError: naming the knob and what is accepted.
        """
        for f in dataclasses.fields(self):
            choices = _choices(f)
            if choices and getattr(self, f.name) not in choices:
                raise ValueError(f"{f.name}={getattr(self, f.name)!r}: choose one of {', '.join(choices)}")
        if self.stream_rate < 0 or self.download_latency < 0:
            raise ValueError("stream_rate and download_latency must be >= 0 (0 = off)")
        if not 0 < self.audio_duration_share <= 10:
            raise ValueError("audio_duration_share must be within 0 (exclusive) .. 10")
        for name in ("time_scale", "duration_scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        for name in (
            "transfer_share",
            "mono_share",
            "no_recording_share",
            "restricted_share",
            "digital_share",
            "malformed_events_share",
            "transcript_missing_share",
            "transcript_late_share",
            "transcript_hostile_share",
            "summary_missing_share",
            "summary_late_share",
            "summary_hostile_share",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if not 0 < self.min_duration <= self.max_duration:
            raise ValueError("need 0 < min_duration <= max_duration")
        if self.agent_channel not in (0, 1):
            raise ValueError("agent_channel must be 0 or 1")
        if self.calls_per_hour < 0 or self.agents < 2 or self.chunk_size < 1024:
            raise ValueError("calls_per_hour >= 0, agents >= 2 and chunk_size >= 1024 required")
        if self.bulk_segments < 0 or self.bulk_span <= 0 or self.bulk_duration_ms < 1:
            raise ValueError("bulk_segments >= 0, bulk_span > 0 and bulk_duration_ms >= 1 required")
        if not 1 <= self.max_interval <= 86400:
            raise ValueError("max_interval must be within 1..86400")
        if not self.sub_account_ids:
            raise ValueError("sub_account_ids must name at least one sub-account")
        both = sorted(set(self.sub_account_ids) & set(self.inactive_sub_account_ids))
        if both:
            raise ValueError(f"{', '.join(both)}: in both sub_account_ids and inactive_sub_account_ids")
        if self.transcript_delay < 0 or self.transcript_huge_bytes < 0 or self.summary_delay < 0:
            raise ValueError("transcript_delay, transcript_huge_bytes and summary_delay must be >= 0")
        for name in ("token_budget", "metadata_budget", "download_budget", "transcript_budget"):
            try:
                parse_budget(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}")
        for name in ("now", "traffic_start", "traffic_end", "bulk_start"):
            try:
                if getattr(self, name):
                    parse_instant(getattr(self, name))
            except ValueError:
                raise ValueError(f"{name}={getattr(self, name)!r} is not an ISO-8601 instant (or epoch ms)")

    def replace(self, **changes: Any) -> SimConfig:
        """A validated copy with ``changes`` applied (unknown names raise ``ValueError``)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown simulator knob(s): {', '.join(unknown)}")
        coerced = {name: _coerce(self, name, value) for name, value in changes.items()}
        return dataclasses.replace(self, **coerced)

    def public_dict(self) -> dict[str, Any]:
        """The knobs as JSON-able values, secrets masked."""
        data = dataclasses.asdict(self)
        for name in SECRET_FIELDS:
            data[name] = "***" if data[name] else ""
        data["sub_account_ids"] = list(self.sub_account_ids)
        data["inactive_sub_account_ids"] = list(self.inactive_sub_account_ids)
        data["restricted_ids"] = list(self.restricted_ids)
        data["transcript_variants"] = list(self.transcript_variants)
        data["summary_variants"] = list(self.summary_variants)
        data["faults"] = list(self.faults)
        return data

    def to_argv(self) -> list[str]:
        """Command-line options reproducing this config (non-default knobs only)."""
        argv: list[str] = []
        default = SimConfig()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value == getattr(default, f.name):
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + f.name.replace("_", "-"))
            elif f.name in _LIST_FIELDS:
                argv += [flag, ",".join(value)]
            elif f.name == "faults":
                argv += [flag, json.dumps(list(value))]
            elif value is not None:
                argv += [flag, str(value)]
        return argv


def _choices(f: dataclasses.Field[Any]) -> tuple[str, ...]:
    hint = {
        "token_format": TokenFormat,
        "retry_after": RetryAfterMode,
        "segment_id_field": SegmentIdField,
        "forbidden_shape": ForbiddenShape,
        "download_length": DownloadLength,
        "wav_data_size": WavDataSize,
    }.get(f.name)
    return tuple(get_args(hint)) if hint is not None else ()


def _field_kind(name: str) -> type:
    default = SimConfig.__dataclass_fields__[name].default
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    return str


def _coerce(config: SimConfig, name: str, value: Any) -> Any:
    """Accept JSON/CLI spellings: "1.5" for floats, "a,b" or lists for tuples, JSON text for faults."""
    if name in _LIST_FIELDS:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(item).strip() for item in items if str(item).strip())
    if name == "faults":
        if isinstance(value, str):
            text = value
            if text.startswith("@"):
                with open(text[1:], encoding="utf-8") as handle:
                    text = handle.read()
            value = json.loads(text) if text.strip() else []
        if not isinstance(value, (list, tuple)):
            raise ValueError("faults must be a JSON list of rules")
        return tuple(dict(rule) for rule in value)
    if name in ("now", "traffic_end") and value in (None, ""):
        return None
    kind = _field_kind(name)
    if kind is bool and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if kind in (int, float) and not isinstance(value, bool):
        return kind(value)
    return value


def build_parser() -> argparse.ArgumentParser:
    """The CLI: ``--host``/``--port`` plus one option per :class:`SimConfig` field."""
    parser = argparse.ArgumentParser(
        prog="python -m ringcx_simulator",
        description="Local RingCentral RingCX simulator (auth, interaction-metadata, recordings, faults). "
        "Control API under /_sim/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind.")
    parser.add_argument("--port", type=int, default=8099, help="TCP port (0 = any free port).")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level.")
    for f in dataclasses.fields(SimConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"]
        default = f.default
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif f.name in _LIST_FIELDS:
            parser.add_argument(flag, default=",".join(default), help=help_text)  # type: ignore[arg-type]
        elif f.name == "faults":
            parser.add_argument(flag, default="", help=help_text)
        else:
            kind = _field_kind(f.name)
            choices = _choices(f) or None
            parser.add_argument(flag, type=kind, default=default, choices=choices, help=help_text)
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """Build a :class:`SimConfig` from parsed CLI arguments."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(SimConfig)}
    return SimConfig().replace(**values)
