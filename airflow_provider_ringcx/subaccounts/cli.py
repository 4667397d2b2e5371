"""``python -m airflow_provider_ringcx sub-accounts``: discover the sub-accounts to archive.

    python -m airflow_provider_ringcx sub-accounts [--conn-id ringcx_default] [--main-account-id ID] [--json]

Lists the main account's sub-accounts through the RingCX admin API (``GET
/voice/api/integration/v1/admin/accounts/{mainAccountId}/subaccounts``, role WFO_ACCESS; the main account is
found from ``GET /voice/api/v1/admin/accounts`` when not given) with ``isActive``, then prints the
``[ringcx] sub_accounts`` line of the active ones and the names of their pools.
The DAG files cannot ask RingCX themselves (parsing never touches a connection or the network), so this is
how the listing is written, and re-checked when sub-accounts come and go.

It uses the ``ringcx`` connection's credentials (``AIRFLOW_CONN_RINGCX_DEFAULT`` works); nothing secret is
printed. Exit status: 0 listed, 1 no active sub-account, 2 a usage or configuration error, 3 RingCX refused
or failed (403: the user lacks the WFO_ACCESS role).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import TextIO

from airflow_provider_ringcx import jsonutil
from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXError
from airflow_provider_ringcx.runinfo import format_table
from airflow_provider_ringcx.subaccounts.listing import listing_line

EXIT_OK, EXIT_NONE_ACTIVE, EXIT_USAGE, EXIT_RINGCX = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_ringcx sub-accounts")
    parser.description = "List the main account's sub-accounts (isActive) and print the [ringcx] listing."
    parser.add_argument(
        "--conn-id", default="ringcx_default", help="Airflow ringcx connection (ringcx_default)"
    )
    parser.add_argument("--main-account-id", help="the RingCX main account (default: found from the token)")
    parser.add_argument("--json", action="store_true", help="print the sub-accounts as JSON")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command; return its exit status."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Airflow may log to stdout on import
            from airflow_provider_ringcx.hooks.ringcx import RingCXHook

            hook = RingCXHook(ringcx_conn_id=args.conn_id)
            try:
                main_id = args.main_account_id or hook.admin.main_account_id()
                statuses = hook.list_sub_accounts(main_id)
            finally:
                hook.close()
    except RingCXConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except RingCXError as err:
        hint = " (403: the RingCX user needs the WFO_ACCESS role)" if err.status_code == 403 else ""
        print(f"error: {type(err).__name__}: {err}{hint}", file=sys.stderr)
        return EXIT_RINGCX
    active = [status.sub_account_id for status in statuses if status.active]
    if args.json:
        rows = [
            {"subAccountId": s.sub_account_id, "subAccountName": s.name, "isActive": s.active}
            for s in statuses
        ]
        out.write(jsonutil.dumps({"mainAccountId": main_id, "subAccounts": rows}, indent=2) + "\n")
        return EXIT_OK if active else EXIT_NONE_ACTIVE
    lines = [
        f"Sub-accounts of RingCX main account {main_id} (connection {args.conn_id}): {len(statuses)}, "
        f"{len(active)} active",
        "",
        format_table(
            ("sub_account_id", "name", "active"),
            [
                (s.sub_account_id, s.name, "yes" if s.active else "NO (inactive: not listed)")
                for s in statuses
            ],
        ),
        "",
    ]
    if active:
        lines += [
            "Archive the active ones, one DAG each, with this line in airflow.cfg:",
            "",
            "[ringcx]",
            listing_line(active),
            "",
            f"(or AIRFLOW__RINGCX__SUB_ACCOUNTS={','.join(active)} in every Airflow process's environment).",
            "Each sub-account's DAGs run in pools of their own, named like the shared ones plus __<id> "
            f"(ringcx_metadata__{active[0]}, ringcx_downloads__{active[0]}, ...): create them as the shared "
            "ones are created.",
        ]
    else:
        lines.append("No active sub-account: nothing to archive.")
    out.write("\n".join(lines) + "\n")
    return EXIT_OK if active else EXIT_NONE_ACTIVE
