"""The DAG side of the example archive DAGs' settings: params, pools and the parse-time Asset (the
parse-time settings, which shape the DAG, are :mod:`~airflow_provider_ringcx.example_dags.shape`).

Two kinds of setting:

- **Parse-time** (the schedule, start date, catchup, ``max_active_runs``, retries) shape the DAG itself, so
  they can only come from the environment (``RINGCX_SCHEDULE``...). Reading ``os.environ`` touches no DB.
- **Run-time** settings (bucket, prefix, lag, batch size, compliance options...) are DAG params whose
  default is ``None``, meaning "not given for this run". What they are and the order they are resolved in
  (params > Variable > environment > the DAG's default > built-in) live in the provider proper,
  :mod:`airflow_provider_ringcx.run_settings`, because the archive page resolves the same bucket and
  prefix; this module only turns them into ``Param`` objects.

Nothing here names a DAG: the factory (:mod:`~airflow_provider_ringcx.example_dags.factory`) passes its DAG
id where one is needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from airflow_provider_ringcx.run_settings import SETTINGS, SETTINGS_BY_NAME

#: Pools and their sizes. Metadata: one request at a time per sub-account fits the 2/60 s + 9/15 min budget
#: (a second slot would only wait on the shared budget while holding a worker). Downloads: each task runs a
#: few download threads paced by the shared 120/60 s budget; 4 tasks keep the budget busy without queueing
#: workers behind it.
POOLS: dict[str, tuple[int, str]] = {
    "ringcx_metadata": (1, "RingCX interaction-metadata calls (budget 2/60 s and 9/15 min per sub-account)"),
    "ringcx_downloads": (4, "RingCX recording downloads (budget 120/60 s per sub-account)"),
    "ringcx_history_metadata": (1, "RingCX metadata calls of history and repairs (never hold the live slot)"),
    "ringcx_history_downloads": (4, "RingCX downloads of history and repairs (paced as history)"),
}
#: The pools of the history and audit DAGs: their own, so that a history fetch pacing a day's calls never
#: holds the live DAG's one metadata slot (the budget's live-first reserve only helps a request that reached
#: the budget; a live task queued behind a pool slot never does).
HISTORY_METADATA_POOL = "ringcx_history_metadata"
HISTORY_DOWNLOAD_POOL = "ringcx_history_downloads"


def dag_params(values: Mapping[str, Any] | None = None, defaults: Mapping[str, Any] | None = None) -> dict:
    """The DAG params: one ``Param`` per run setting, ``None`` ("not given: fall back") unless ``values``
    fixes it, typed, in its trigger-form ``section``; enum settings list their values (and ``None``) with
    labels, ``storage_class`` suggests the usual classes.

    :param values: param values of this DAG (shown in the trigger form; they win over Variables and env).
    :param defaults: the DAG's own defaults, named in each param's description.
    """
    from airflow.sdk import Param

    values, defaults = values or {}, defaults or {}
    params = {}
    for s in SETTINGS:
        default = defaults.get(s.name, s.default)
        extra: dict[str, Any] = {}
        if s.choices:
            extra["enum"] = [None, *(value for value, _label in s.choices)]
            extra["values_display"] = {value: label for value, label in s.choices}
        if s.examples:
            extra["examples"] = list(s.examples)
        params[s.name] = Param(
            values.get(s.name),
            type=["null", s.kind],
            title=s.name,
            description=f"{s.description} Empty: Variable {s.variable}, env {s.env}, default {default!r}.",
            section=s.section,
            **extra,
        )
    return params


def archive_asset(environ: Mapping[str, str] | None = None) -> Any:
    """The archive's Asset from the parse-time ``RINGCX_BUCKET``/``RINGCX_PREFIX`` (``s3://{bucket}/{prefix}``;
    ``ringcx://recordings-archive`` without a bucket, see :mod:`airflow_provider_ringcx.assets`)."""
    from airflow_provider_ringcx.assets import archive_asset as build

    environ = os.environ if environ is None else environ
    bucket, prefix = SETTINGS_BY_NAME["bucket"], SETTINGS_BY_NAME["prefix"]
    return build(environ.get(bucket.env) or None, environ.get(prefix.env) or prefix.default)
