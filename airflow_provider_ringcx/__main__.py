"""``python -m airflow_provider_ringcx <command>``: the provider's commands for a person at a terminal.

    python -m airflow_provider_ringcx coverage --bucket B --sub-account-id S \\
        --start 2026-03-01 --end 2026-03-08

    python -m airflow_provider_ringcx sub-accounts [--conn-id ringcx_default]

    python -m airflow_provider_ringcx index rebuild --bucket B --sub-account S --day 2026-03-02

Commands: ``coverage`` (:mod:`airflow_provider_ringcx.coverage.cli`) and ``sub-accounts``
(:mod:`airflow_provider_ringcx.subaccounts.cli`). A plain module entry rather than an Airflow CLI
command: Airflow 3 has no supported way for a provider to add ``airflow`` sub-commands (only executors
and auth managers contribute CLI commands), and these need nothing from Airflow but a connection.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_ringcx", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "command",
        choices=["coverage", "sub-accounts", "index"],
        help="coverage: the archive's coverage ledger; sub-accounts: the main account's sub-accounts; "
        "index: rebuild, describe (Athena DDL) or copy out the archive index",
    )
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    command = parser.parse_args(argv[:1]).command
    if command == "sub-accounts":
        from airflow_provider_ringcx.subaccounts import cli as subaccounts_cli

        return subaccounts_cli.main(argv[1:])
    if command == "index":
        from airflow_provider_ringcx.index import cli as index_cli

        return index_cli.main(argv[1:])
    from airflow_provider_ringcx.coverage import cli

    return cli.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
