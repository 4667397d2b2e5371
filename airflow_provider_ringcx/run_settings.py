"""Run-time settings of an archive run, and the one order they are resolved in.

A run-time setting (bucket, prefix, lag, batch size, compliance options...) is resolved when a run starts, in
this order: the run's params (trigger form, ``--conf``, backfill conf), then the Airflow Variable
``ringcx_<name>``, then the environment variable ``RINGCX_<NAME>``, then the DAG's own default (the factory's
``defaults``), then the built-in default. Variables are read only inside a running task (or the API
server), never at parse time.

**Why here, in the provider proper, and not beside the example DAGs.** Two consumers must agree on it: the
archive DAGs (:mod:`~airflow_provider_ringcx.example_dags`, which turn :data:`SETTINGS` into DAG params and
resolve them in ``resolve_run``) and the archive page (:mod:`~airflow_provider_ringcx.archive_view.data`),
which shows the archive the DAGs write by resolving bucket, prefix, key template, lag and the ``aws``
connection the same way, with no run params. One decision in one place; the provider never imports the
example DAGs (``tests/example_dags/test_layering.py``). The DAG-shaping side (``Param`` objects, pools, the
parse-time Asset) stays in :mod:`~airflow_provider_ringcx.example_dags.settings`.

Nothing here names a DAG: callers pass a DAG id where one is needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_ringcx import jsonutil
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.hooks.bounds import Bound
from airflow_provider_ringcx.s3.options import LOCK_MODES, SSE_MODES
from airflow_provider_ringcx.windows import parse_lag

#: Trigger-form sections of the params (Airflow's ``Param(section=...)``).
SECTION_TARGET = "Target"
SECTION_WINDOW = "Window and batches"
SECTION_COMPLIANCE = "Compliance"
SECTION_CHECKS = "Failure and checks"


@dataclass(frozen=True)
class Setting:
    """One run-time setting: its param name, Variable, environment variable, default and JSON type.

    :param choices: the only accepted values (the param's ``enum``; ``None`` is always allowed too, meaning
        "not given here"), with their labels for the trigger form.
    :param examples: suggested values (the trigger form offers them, any value is accepted).
    :param section: the trigger-form section the param is shown in.
    """

    name: str
    default: Any
    kind: str  # "string" | "integer" | "boolean" | "object" | "array"
    description: str
    section: str = SECTION_TARGET
    choices: tuple[tuple[str, str], ...] = ()
    examples: tuple[str, ...] = ()

    @property
    def variable(self) -> str:
        return f"ringcx_{self.name}"

    @property
    def env(self) -> str:
        return f"RINGCX_{self.name.upper()}"


#: Trigger-form labels of the enum settings' values (the values themselves come from ``s3/options.py``).
_SSE_LABELS = {"AES256": "SSE-S3 (AES256)", "aws:kms": "SSE-KMS (aws:kms)", "aws:kms:dsse": "DSSE-KMS"}
_LOCK_LABELS = {"GOVERNANCE": "Governance (can be lifted)", "COMPLIANCE": "Compliance (cannot be lifted)"}
#: S3 storage classes offered in the trigger form (any other class an S3-compatible store knows is
#: accepted: the store refuses an unknown one).
STORAGE_CLASS_EXAMPLES = (
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
)
_T, _W, _C, _F = SECTION_TARGET, SECTION_WINDOW, SECTION_COMPLIANCE, SECTION_CHECKS

SETTINGS: tuple[Setting, ...] = (
    Setting("ringcx_conn_id", "ringcx_default", "string", "RingCX connection id.", _T),
    Setting("aws_conn_id", "aws_default", "string", "Amazon (S3) connection id.", _T),
    Setting("bucket", None, "string", "Target S3 bucket (required).", _T),
    Setting("prefix", "ringcx", "string", "Key prefix inside the bucket.", _T),
    Setting("key_template", None, "string", "WAV key template (default: Hive-style by segment start).", _T),
    Setting(
        "lag_minutes", 15, "integer", "Settle lag: a run archives its data interval shifted back by it.", _W
    ),
    Setting("batch_size", 100, "integer", "Segments per mapped download task.", _W),
    Setting(
        "rescan_lookback_minutes", 1440, "integer", "Re-list the window this far back (late arrivals).", _W
    ),
    Setting(
        "rescan_final_windows",
        False,
        "boolean",
        "Rescan an earlier window even if it was first listed look-back + lag after its end or later (it is "
        "final then: default, no call).",
        _W,
    ),
    Setting(
        "server_side_encryption",
        None,
        "string",
        "AES256 or aws:kms.",
        _C,
        choices=tuple((mode, _SSE_LABELS.get(mode, mode)) for mode in SSE_MODES),
    ),
    Setting("kms_key_id", None, "string", "KMS key id or ARN (with aws:kms).", _C),
    Setting(
        "storage_class",
        None,
        "string",
        "S3 storage class, e.g. STANDARD_IA.",
        _C,
        examples=STORAGE_CLASS_EXAMPLES,
    ),
    Setting("tags", {}, "object", "Object tags as a JSON object.", _C),
    Setting(
        "object_lock_mode",
        None,
        "string",
        "Object Lock mode: GOVERNANCE or COMPLIANCE.",
        _C,
        choices=tuple((mode, _LOCK_LABELS.get(mode, mode)) for mode in LOCK_MODES),
    ),
    Setting("object_lock_retention_days", None, "integer", "Retain-until = segment end + these days.", _C),
    Setting("object_lock_legal_hold", False, "boolean", "Place a legal hold on every object.", _C),
    Setting("fail_on_forbidden", False, "boolean", "Fail the download task on 403 (else reported).", _F),
    Setting("fail_on_missing", False, "boolean", "Fail the download task on 404 (else reported).", _F),
    Setting("verify_content", False, "boolean", "Report re-reads every object and re-hashes it.", _F),
    Setting(
        "include_transcripts",
        False,
        "boolean",
        "Archive each segment's transcript ({segmentId}.transcript.json) beside its recording; a transcript "
        "not ready yet (404) is retried by the late-arrival rescan.",
        _F,
    ),
    Setting(
        "include_summaries",
        None,
        "string",
        "Archive each segment's AI summaries ({segmentId}.summary.{agent|auto}.json) beside its recording: "
        "agent, auto or both (default: none); paced with the transcripts by transcript_budget, and one not "
        "ready yet (404) is retried by the late-arrival rescan.",
        _F,
        choices=(("agent", "Agent summary"), ("auto", "Automatic summary"), ("both", "Both")),
    ),
    Setting(
        "allow_unverified_manifest",
        False,
        "boolean",
        "Report from a manifest whose identity XCom is absent, unverified (default: the report fails).",
        _F,
    ),
    Setting(
        "allow_unarchived",
        [],
        "array",
        'Statuses that do not fail the report, e.g. ["forbidden"] (default: none; all must be archived).',
        _F,
    ),
    Setting(
        "refuse_inactive_sub_account",
        False,
        "boolean",
        "Ask the admin API first (GET .../subaccounts, role WFO_ACCESS) and fail the run at once if the "
        "sub-account is inactive or not of the main account (the DAGs of a [ringcx] sub_accounts listing "
        "default to true).",
        _F,
    ),
)
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}

#: The range of every numeric run setting (params, Variables and environment variables; issue #12 item 17).
#: ``lag_minutes`` has its 5-minute floor from the vendor (``windows.parse_lag``).
DAG_RANGES: dict[str, Bound] = {
    "lag_minutes": Bound(5, 10080, True, "a lag over a week archives nothing for a week"),
    "batch_size": Bound(1, 5000, True, "a mapped task of more segments outlives its execution_timeout"),
    "rescan_lookback_minutes": Bound(0, 43200, True, "RingCX keeps metadata queryable for about 30 days"),
    "object_lock_retention_days": Bound(1, 36500, True, "a retention over 100 years can never be lifted"),
}


def _convert(setting: Setting, value: Any, source: str) -> Any:
    if value is None:
        return None
    try:
        if setting.kind == "integer":
            return int(value)
        if setting.kind == "boolean":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in {"true", "false", "1", "0", "yes", "no", "on", "off", ""}:
                raise ValueError(text)
            return text in {"true", "1", "yes", "on"}
        if setting.kind in ("object", "array"):
            parsed = jsonutil.strict_loads(value) if isinstance(value, str) else value
            expected = dict if setting.kind == "object" else list
            if not isinstance(parsed, expected):
                raise ValueError(f"not a JSON {setting.kind}")
            return parsed
        text = str(value)
        return text if text != "" else None
    except (TypeError, ValueError) as err:
        raise RingCXConfigError(
            f"setting {setting.name} from {source} = {value!r} is not a valid {setting.kind} ({err}); "
            f"fix the {source}"
        ) from None


def check_setting_names(values: Mapping[str, Any], what: str) -> None:
    """Refuse names that are not run settings (a typo would otherwise be ignored silently).

    :raises RingCXConfigError: naming the unknown names and the known ones.
    """
    unknown = sorted(set(values) - set(SETTINGS_BY_NAME))
    if unknown:
        raise RingCXConfigError(
            f"{what}: {', '.join(unknown)} {'is not a' if len(unknown) == 1 else 'are not'} run setting"
            f"{'' if len(unknown) == 1 else 's'}; use one of {', '.join(SETTINGS_BY_NAME)}"
        )


def resolve_settings(
    params: Mapping[str, Any],
    get_variable: Callable[[str], str | None],
    environ: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Resolve every run-time setting: params > Variable ``ringcx_<name>`` > env ``RINGCX_<NAME>`` > the
    DAG's ``defaults`` > the built-in default.

    :param params: the run's params (``None`` values fall through).
    :param get_variable: returns a Variable's value or ``None`` (e.g. ``Variable.get(name, None)``).
    :param defaults: the DAG's own defaults (the factory's ``defaults``), by setting name.
    :raises RingCXConfigError: a value of the wrong type, no bucket, a lag under 5 minutes, a bad batch size.
    """
    environ = os.environ if environ is None else environ
    defaults = defaults or {}
    resolved: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        candidates = (
            (params.get(setting.name), f"param {setting.name}"),
            (get_variable(setting.variable), f"Variable {setting.variable}"),
            (environ.get(setting.env), f"environment variable {setting.env}"),
            (defaults.get(setting.name), f"DAG default {setting.name}"),
        )
        value, sources[setting.name] = setting.default, "default"
        for candidate, source in candidates:
            converted = _convert(setting, candidate, source)
            if converted is not None:
                value, sources[setting.name] = converted, source
                break
        resolved[setting.name] = value
    if not resolved["bucket"]:
        raise RingCXConfigError(
            "no S3 bucket configured: set the DAG param 'bucket', the Variable ringcx_bucket or the "
            "environment variable RINGCX_BUCKET"
        )
    try:
        parse_lag(resolved["lag_minutes"])
    except RingCXConfigError as err:
        raise RingCXConfigError(f"{err} (set by the {sources['lag_minutes']})") from None
    if not 1 <= resolved["batch_size"] <= 5000:
        raise RingCXConfigError(
            f"batch_size={resolved['batch_size']} (set by the {sources['batch_size']}) must be within "
            "1..5000; the default is 100"
        )
    if resolved["rescan_lookback_minutes"] < 0:
        raise RingCXConfigError(
            f"rescan_lookback_minutes={resolved['rescan_lookback_minutes']} (set by the "
            f"{sources['rescan_lookback_minutes']}) must be >= 0 (0 disables the late-arrival rescan)"
        )
    for name, bound in DAG_RANGES.items():  # issue #12 item 17: every numeric setting has an upper bound too
        problem = bound.problem(name, resolved[name])
        if problem:
            raise RingCXConfigError(f"{problem}; set by the {sources[name]} - fix it there")
    return resolved
