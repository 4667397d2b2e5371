"""One DAG per sub-account: the example DAGs built once for each sub-account of ``[ringcx] sub_accounts``.

Why one DAG per sub-account rather than one DAG fanning out over them: see
:mod:`airflow_provider_ringcx.subaccounts.listing` (each sub-account gets its own Grid, run states, notes,
alerts, backfills and clears, and one sub-account's 403 or outage fails only its own runs).

:func:`for_sub_account` turns the options of a DAG into those of one sub-account's copy:

- DAG id ``<dag_id>__<sub-account id>``, display name ``<dag_id> · East (11111111)``, a tag
  ``sub_account:<id>``;
- its operators archive that sub-account with the connection's credentials (``sub_account_id``): its
  budgets, paths, keys, manifests, reports and coverage ledger;
- the listing's overrides (prefix, KMS key, retention... any run setting) as the DAG's param values;
- **its own pools** (``ringcx_metadata__<id>``...), sized like the shared ones: the budgets are per
  sub-account, so one pool slot shared by every sub-account would serialise them (N sub-accounts, 1/N of
  the throughput), and a shared pool of N slots would let one sub-account's backlog hold every slot.
  :func:`sub_account_pools` lists them (``scripts/stack.py`` creates them; the discovery command prints
  ``airflow pools set`` lines);
- its own Asset when the bucket is known at parse time (``s3://bucket/prefix/sub_account=<id>``);
- **the active check on by default** (the DAG default ``refuse_inactive_sub_account=True``): each run asks
  the admin API first and fails at once, naming the sub-account and the fix, when RingCX lists it
  inactive (or not at all). A listing is written once (by hand or by the discovery command) and outlives
  the state it was written from: a sub-account deactivated later would otherwise fail every window with a
  bare 403 on the metadata call that blames permissions. It is a DAG default, not a param value, so
  ``RINGCX_REFUSE_INACTIVE_SUB_ACCOUNT=false`` (or the Variable, or the listing entry) turns it off where
  the user lacks the admin API's WFO_ACCESS role. The DAGs built without a listing keep it off.

Without a listing :func:`build_dags` builds exactly today's DAG, unchanged.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx import run_settings
from airflow_provider_ringcx.example_dags import settings as dagconfig
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.subaccounts.listing import (
    SUB_ACCOUNTS_OPTION,
    SubAccount,
    configured_sub_accounts,
)

_JSON_KINDS = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list}
#: The DAG defaults of every listed sub-account's DAGs (under the base DAG's own defaults).
SUB_ACCOUNT_DEFAULTS: dict[str, Any] = {"refuse_inactive_sub_account": True}

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from airflow_provider_ringcx.example_dags.factory import ArchiveDagOptions


def build_dags(
    build: Callable[[SubAccount | None], DAG], sub_accounts: Iterable[SubAccount] | None = None
) -> dict[str, DAG]:
    """``{dag_id: DAG}``: ``build(None)`` without a listing, else ``build(sub)`` for each sub-account.

    :param sub_accounts: the listing (default: ``[ringcx] sub_accounts``, read now).
    :raises RingCXConfigError: the listing is invalid (the DAG file's import error names the entry).
    """
    listing = tuple(configured_sub_accounts() if sub_accounts is None else sub_accounts)
    for sub in listing:
        check_overrides(sub.overrides, f"[ringcx] {SUB_ACCOUNTS_OPTION}: sub-account {sub.id}")
    dags = [build(sub) for sub in listing] if listing else [build(None)]
    return {dag.dag_id: dag for dag in dags}


def for_sub_account(
    opts: ArchiveDagOptions, sub: SubAccount | None, environ: Mapping[str, str] | None = None
) -> ArchiveDagOptions:
    """The options of ``sub``'s copy of a DAG (see the module docstring); ``opts`` itself for ``None``.

    :param environ: the parse-time environment (the Asset's bucket and prefix); default ``os.environ``.
    """
    if sub is None:
        return opts
    return dataclasses.replace(
        opts,
        dag_id=sub.suffixed(opts.dag_id),
        dag_display_name=f"{opts.dag_id} · {sub.label}",
        sub_account_id=sub.id,
        params={**opts.params, **{k: v for k, v in sub.overrides.items() if v is not None}},
        defaults={**SUB_ACCOUNT_DEFAULTS, **opts.defaults},
        metadata_pool=sub.suffixed(opts.metadata_pool),
        download_pool=sub.suffixed(opts.download_pool),
        tags=(*opts.tags, f"sub_account:{sub.id}"),
        description=f"{opts.description} (sub-account {sub.label})",
        asset=_asset(opts.asset, sub, os.environ if environ is None else environ),
    )


def sub_account_pools(
    sub_accounts: Iterable[SubAccount], pools: Mapping[str, tuple[int, str]] | None = None
) -> dict[str, tuple[int, str]]:
    """Every sub-account's pools: each shared pool's name suffixed, the same slots, the description
    naming the sub-account (``{}`` without sub-accounts)."""
    pools = dagconfig.POOLS if pools is None else pools
    return {
        sub.suffixed(name): (slots, f"{description}; sub-account {sub.label}")
        for sub in sub_accounts
        for name, (slots, description) in pools.items()
    }


def check_overrides(overrides: Mapping[str, Any], where: str) -> None:
    """Every key a run setting, every value of its JSON type (``null``: not overridden).

    :raises RingCXConfigError: an unknown key (with the known ones) or a value of the wrong type.
    """
    unknown = sorted(set(overrides) - set(run_settings.SETTINGS_BY_NAME))
    if unknown:
        raise RingCXConfigError(
            f"{where}: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a run setting; "
            f'besides "id" and "name", use run settings: {", ".join(run_settings.SETTINGS_BY_NAME)}'
        )
    for key, value in overrides.items():
        kind = run_settings.SETTINGS_BY_NAME[key].kind
        expected = _JSON_KINDS[kind]
        wrong = value is not None and (
            not isinstance(value, expected) or (expected is int and isinstance(value, bool))
        )
        if wrong:
            raise RingCXConfigError(f"{where}: {key}={value!r} is not a JSON {kind}; write it as one")


def _asset(asset: Any, sub: SubAccount, environ: Mapping[str, str]) -> Any:
    """The sub-account's part of the archive (``.../sub_account=<id>``), under its own name (an Asset name
    names one URI); ``None`` stays ``None``."""
    if asset is None:
        return None
    from airflow_provider_ringcx.assets import ASSET_NAME, FALLBACK_URI, archive_asset

    bucket_setting, prefix_setting = (
        run_settings.SETTINGS_BY_NAME["bucket"],
        run_settings.SETTINGS_BY_NAME["prefix"],
    )
    bucket = sub.overrides.get("bucket") or environ.get(bucket_setting.env) or None
    prefix = sub.overrides.get("prefix") or environ.get(prefix_setting.env) or prefix_setting.default
    name = sub.suffixed(ASSET_NAME)
    if bucket:
        return archive_asset(bucket, prefix, sub_account_id=sub.id, name=name)
    from airflow.sdk import Asset

    return Asset(name=name, uri=f"{FALLBACK_URI}/sub_account={sub.id}")
