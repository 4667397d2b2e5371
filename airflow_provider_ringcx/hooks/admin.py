"""The RingCX admin API calls of the hook: which sub-accounts a main account has, and which are active.

Two documented reads (``../shared/ringcx-api.md`` section 1.2):

- ``GET /voice/api/v1/admin/accounts``: the sub-accounts the token sees, each with its ``mainAccountId``
  (how the main account is found when it is not given);
- ``GET /voice/api/integration/v1/admin/accounts/{mainAccountId}/subaccounts`` (the WFO_ACCESS role):
  ``[{subAccountId, subAccountName, isActive}]``.

Used by the discovery command (``python -m airflow_provider_ringcx sub-accounts``) and, when a run asks
for it (run setting ``refuse_inactive_sub_account``: on by default in the DAGs of a ``[ringcx]
sub_accounts`` listing, off otherwise), by ``resolve_run`` to refuse an inactive sub-account before any
metadata is spent. The vendor documents no budget for these reads; they are rare (a person, or
one per run when asked), so they take none, and a 429 is retried like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow_provider_ringcx import jsonutil
from airflow_provider_ringcx.exceptions import RingCXBadPayloadError, RingCXConfigError, RingCXForbiddenError
from airflow_provider_ringcx.hooks.client import HttpClient, TokenSource
from airflow_provider_ringcx.hooks.settings import RingCXSettings

ACCOUNTS_PATH = "/voice/api/v1/admin/accounts"
SUBACCOUNTS_PATH = "/voice/api/integration/v1/admin/accounts/{main}/subaccounts"
#: The largest admin answer read (a main account with thousands of sub-accounts fits easily).
_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class SubAccountStatus:
    """One sub-account of a main account, as the admin API lists it."""

    sub_account_id: str
    name: str
    active: bool


class AdminClient:
    """The admin reads (see the module docstring), with the hook's transport and tokens."""

    def __init__(self, settings: RingCXSettings, http: HttpClient, tokens: TokenSource) -> None:
        self.settings = settings
        self.http = http
        self.tokens = tokens

    def main_account_id(self) -> str:
        """The ``mainAccountId`` of the sub-accounts the token sees (``GET /voice/api/v1/admin/accounts``).

        :raises RingCXBadPayloadError: the answer names no main account.
        """
        rows = self._get_list(ACCOUNTS_PATH)
        mains = sorted(
            {str(row["mainAccountId"]) for row in rows if row.get("mainAccountId") not in (None, "")}
        )
        if len(mains) != 1:
            raise RingCXBadPayloadError(
                f"GET {ACCOUNTS_PATH} names {len(mains)} main accounts ({', '.join(mains) or 'none'}); give "
                "the main account id (--main-account-id)"
            )
        return mains[0]

    def sub_accounts(self, main_account_id: str | None = None) -> list[SubAccountStatus]:
        """The main account's sub-accounts with ``isActive`` (``main_account_id``: found when ``None``).

        :raises RingCXForbiddenError: the user lacks the WFO_ACCESS role or access to that main account.
        :raises RingCXBadPayloadError: the answer is not a list of ``{subAccountId, isActive}`` objects.
        """
        main = main_account_id or self.main_account_id()
        path = SUBACCOUNTS_PATH.format(main=quote(str(main), safe=""))
        found = []
        for row in self._get_list(path):
            sub, active = row.get("subAccountId"), row.get("isActive")
            if sub in (None, "") or not isinstance(active, bool):
                raise RingCXBadPayloadError(
                    f"GET {path}: a row without subAccountId or a boolean isActive; RingCX changed the answer"
                )
            found.append(SubAccountStatus(str(sub), str(row.get("subAccountName") or ""), active))
        return found

    def check_active(self, sub_account_id: str) -> None:
        """Refuse ``sub_account_id`` unless its main account lists it active (:func:`require_active`).

        A 403 of the admin reads means the check cannot be made (the user lacks the WFO_ACCESS role), not
        that the sub-account is inactive: it is a configuration error too, naming both ways out, rather
        than a bare 403 whose generic advice (READ on Account, WEM access) is about the data routes.

        :raises RingCXConfigError: inactive, not of the main account, or the admin API refused the check.
        """
        try:
            main = self.main_account_id()
            statuses = self.sub_accounts(main)
        except RingCXForbiddenError as err:
            raise RingCXConfigError(
                f"sub-account {sub_account_id}: RingCX refused the admin API's sub-account listing (HTTP "
                "403), so whether it is active cannot be checked. Give the RingCX user the WFO_ACCESS role, "
                "or turn the check off with the run setting refuse_inactive_sub_account=false (Variable "
                "ringcx_refuse_inactive_sub_account or RINGCX_REFUSE_INACTIVE_SUB_ACCOUNT)"
            ) from err
        require_active(statuses, sub_account_id, main)

    def _get_list(self, path: str) -> list[dict[str, Any]]:
        response = self.http.send_authenticated(
            "GET",
            self.settings.api_url + path,
            self.tokens,
            headers={"Accept": "application/json"},
            stream=True,
        )
        with response:  # streamed: a hostile answer is read up to the cap, never whole
            body = response.raw.read(_MAX_BYTES + 1, decode_content=True)
        if len(body) > _MAX_BYTES:
            raise RingCXBadPayloadError(f"GET {path}: the answer is over {_MAX_BYTES} bytes")
        try:
            rows = jsonutil.loads(body)
        except ValueError:
            raise RingCXBadPayloadError(f"GET {path}: the answer is not JSON") from None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise RingCXBadPayloadError(f"GET {path}: the answer is not a JSON list of objects")
        return rows


def require_active(statuses: Sequence[SubAccountStatus], sub_account_id: str, main_account_id: str) -> None:
    """Refuse a sub-account the admin API lists inactive, or does not list (not of this main account).

    :raises RingCXConfigError: naming the sub-account, what the API said and what to do.
    """
    mine = [status for status in statuses if status.sub_account_id == sub_account_id]
    if not mine:
        listed = ", ".join(status.sub_account_id for status in statuses) or "none"
        raise RingCXConfigError(
            f"sub-account {sub_account_id} is not a sub-account of main account {main_account_id} (it has: "
            f"{listed}); fix the sub-account id ([ringcx] sub_accounts or the connection's sub_account_id)"
        )
    if not mine[0].active:
        raise RingCXConfigError(
            f"sub-account {sub_account_id} ({mine[0].name or 'no name'}) is inactive in main account "
            f"{main_account_id} (isActive=false): nothing is archived for it. Reactivate it in RingCX, or "
            "remove it from [ringcx] sub_accounts (python -m airflow_provider_ringcx sub-accounts prints the "
            "active ones)"
        )
