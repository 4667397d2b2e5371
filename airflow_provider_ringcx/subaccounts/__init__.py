"""Many sub-accounts from one deployment: the parse-time listing (:mod:`.listing`) and the discovery
command (:mod:`.cli`). The admin API calls are the hook's (:mod:`airflow_provider_ringcx.hooks.admin`)."""

from __future__ import annotations

from airflow_provider_ringcx.subaccounts.listing import (
    SUB_ACCOUNTS_OPTION,
    SubAccount,
    check_sub_account_id,
    configured_sub_accounts,
    parse_listing,
)

__all__ = [
    "SUB_ACCOUNTS_OPTION",
    "SubAccount",
    "check_sub_account_id",
    "configured_sub_accounts",
    "parse_listing",
]
