"""The parse-time listing of sub-accounts: ``[ringcx] sub_accounts`` (``AIRFLOW__RINGCX__SUB_ACCOUNTS``).

A RingCX main account has several sub-accounts, and every vendor budget is per sub-account (metadata 2/60 s
and 9/900 s, downloads 120/60 s). The example DAGs archive each listed sub-account with **its own DAGs**
(``ringcx_recordings_to_s3__<id>``, ``ringcx_recordings_history__<id>``, ``ringcx_archive_audit__<id>``),
rather than fanning out over them inside one DAG:

- each sub-account gets its own Grid, run states, run notes, deadline alerts, backfills and clears: a
  person re-runs the east sub-account's 14:00 window without touching the west's;
- one sub-account's 403 or outage fails only its own runs (isolation by construction: no trigger-rule
  tricks to let a report run after a partial upstream failure, no report that mixes two verdicts);
- budgets, pools, keys, manifests, reports and the coverage ledger are per sub-account anyway.

The cost: Airflow must know the DAGs when it parses the DAG files, without a connection or the network
(parsing never does I/O). Hence a listing in Airflow's config, read like any option, and a discovery
command that writes it: ``python -m airflow_provider_ringcx sub-accounts`` lists the main account's
sub-accounts through the admin API (with ``isActive``) and prints the line for the active ones.

The option holds either comma-separated ids::

    [ringcx]
    sub_accounts = 11111111, 22222222

or a JSON list of ids and objects, an object carrying a display ``name`` and per-sub-account overrides of
any run setting (``prefix``, ``kms_key_id``, ``object_lock_retention_days``, ``ringcx_conn_id``...), which
become that DAG's param values (they win over Variables and the environment; a run's own params still win)::

    sub_accounts = [{"id": "11111111", "name": "East", "prefix": "east"},
                    {"id": "22222222", "kms_key_id": "alias/west", "object_lock_retention_days": 3650}]

Unset or empty: today's DAGs, unchanged (one of each, ids without a suffix, the sub-account of the
connection). Nothing here imports Airflow at module level: the provider info imports the option's name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_ringcx.exceptions import RingCXConfigError

#: ``[ringcx] sub_accounts``: the option holding the listing.
SUB_ACCOUNTS_OPTION = "sub_accounts"
#: What joins a base DAG id (or pool name) and a sub-account id: ``ringcx_recordings_to_s3__11111111``.
SEPARATOR = "__"
#: Keys of a listing object that are not run settings.
_OWN_KEYS = ("id", "name")
_HOW = (
    "write comma-separated ids (sub_accounts = 11111111,22222222) or a JSON list such as "
    '[{"id": "11111111", "name": "East", "prefix": "east"}]; '
    "python -m airflow_provider_ringcx sub-accounts prints the line for the active ones"
)


@dataclass(frozen=True)
class SubAccount:
    """One listed sub-account: its id, an optional display name and its run-setting overrides.

    :param id: the RingCX sub-account id (``accountId`` of ``GET /voice/api/v1/admin/accounts``).
    :param name: shown in the DAG's display name (default: the id).
    :param overrides: run-setting values of this sub-account's DAGs, by setting name (checked against the
        run settings where the DAGs are built, in ``example_dags.per_sub_account``: the provider below the
        example DAGs does not know them).
    """

    id: str
    name: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``East (11111111)``, or the id alone."""
        return f"{self.name} ({self.id})" if self.name else self.id

    def suffixed(self, base: str) -> str:
        """``base__<id>``: the id of this sub-account's DAG (or pool) made from ``base``. The id is one of
        letters, digits, ``-`` and ``_`` (:func:`check_sub_account_id`), all valid in DAG ids and pool
        names, so it is used as it is: the DAG id names the sub-account exactly."""
        return f"{base}{SEPARATOR}{self.id}"


def check_sub_account_id(value: Any, where: str) -> str:
    """A sub-account id as text: letters, digits, ``-`` and ``_`` (the connection field's own rule).

    :param where: what holds the value, for the message (``[ringcx] sub_accounts entry 2``).
    :raises RingCXConfigError: empty, not a string or a number, or another character.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RingCXConfigError(f"{where}: the sub-account id {value!r} is not a string; {_HOW}")
    text = str(value).strip()
    if not text or any(not ch.isalnum() and ch not in "-_" for ch in text) or not text.isascii():
        raise RingCXConfigError(
            f"{where}: the sub-account id {text!r} must be letters, digits, - and _ only (the accountId of "
            "GET /voice/api/v1/admin/accounts)"
        )
    return text


def parse_listing(
    text: str | None, *, source: str = f"[ringcx] {SUB_ACCOUNTS_OPTION}"
) -> tuple[SubAccount, ...]:
    """The sub-accounts of a listing (see the module docstring); ``()`` for ``None`` or blank text.

    :param source: where the text comes from, for the messages.
    :raises RingCXConfigError: naming the bad entry and how to fix it: invalid JSON, an entry that is
        neither an id nor an object, a bad id, a duplicate, a bad name.
    """
    text = (text or "").strip()
    if not text:
        return ()
    if text[0] in "[{":
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as err:
            raise RingCXConfigError(
                f"{source} is not valid JSON ({err.msg} at char {err.pos}); {_HOW}"
            ) from None
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list):
            raise RingCXConfigError(f"{source} must be a JSON list; {_HOW}")
    else:
        entries = [part for part in (piece.strip() for piece in text.split(",")) if part]
    found: list[SubAccount] = []
    for number, entry in enumerate(entries, 1):
        where = f"{source} entry {number}"
        sub = _entry(entry, where)
        if any(other.id == sub.id for other in found):
            raise RingCXConfigError(f"{where}: sub-account {sub.id} is listed twice; list each once")
        found.append(sub)
    return tuple(found)


def _entry(entry: Any, where: str) -> SubAccount:
    if not isinstance(entry, dict):
        return SubAccount(check_sub_account_id(entry, where))
    if "id" not in entry:
        raise RingCXConfigError(f'{where} ({_excerpt(entry)}) has no "id"; give the sub-account\'s id')
    sub_id = check_sub_account_id(entry["id"], where)
    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise RingCXConfigError(f'{where} (sub-account {sub_id}): "name" must be a non-empty string')
    overrides = {key: value for key, value in entry.items() if key not in _OWN_KEYS}
    return SubAccount(sub_id, name.strip() if name else None, overrides)


def configured_sub_accounts() -> tuple[SubAccount, ...]:
    """The listing of ``[ringcx] sub_accounts`` (``airflow.cfg`` or ``AIRFLOW__RINGCX__SUB_ACCOUNTS``),
    read at every call (a DAG file's parse sees the configuration of the moment); no connection, no I/O
    beyond Airflow's own config.

    :raises RingCXConfigError: the listing is invalid (see :func:`parse_listing`).
    """
    from airflow_provider_ringcx.hooks.budget import CONFIG_SECTION, _airflow_option

    return parse_listing(_airflow_option(CONFIG_SECTION, SUB_ACCOUNTS_OPTION))


def listing_line(ids: Iterable[str]) -> str:
    """The ``airflow.cfg`` line of a listing of plain ids."""
    return f"{SUB_ACCOUNTS_OPTION} = {','.join(ids)}"


def _excerpt(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."
