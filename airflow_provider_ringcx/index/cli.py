"""``python -m airflow_provider_ringcx index``: rebuild, print the DDL of, or copy out the archive index.

    python -m airflow_provider_ringcx index rebuild --bucket B --prefix ringcx --sub-account 12345 \\
        --day 2026-03-02 [--day 2026-03-03 ...] [--key-template T] [--verify-content]
    python -m airflow_provider_ringcx index ddl --bucket B --prefix ringcx --sub-accounts 12345,67890
    python -m airflow_provider_ringcx index sync --bucket B --prefix ringcx --dest ./index-copy

``rebuild`` writes each day's object again from its manifests, reports and S3
(:mod:`~airflow_provider_ringcx.index.rebuild`); ``ddl`` prints the Athena table and the example queries
(:mod:`~airflow_provider_ringcx.index.sql`); ``sync`` copies the index objects to a folder for DuckDB
(``read_json('./index-copy/_index/*/*/*.jsonl.gz', hive_partitioning = true)``).

Exit status: 0 done, 2 a usage or configuration error, 3 S3 refused a request. The S3 client is the
Airflow ``aws`` connection's (``AIRFLOW_CONN_AWS_DEFAULT`` works); no credential is given on the command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from airflow_provider_ringcx.exceptions import RingCXError

EXIT_OK, EXIT_USAGE, EXIT_S3 = 0, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_ringcx index")
    parser.description = "The archive index: rebuild days, print the Athena DDL, copy it out."
    sub = parser.add_subparsers(dest="action", required=True)
    rebuild = sub.add_parser("rebuild", help="write days of the index again from the manifests and S3")
    rebuild.add_argument("--sub-account", required=True, help="the RingCX sub-account id")
    rebuild.add_argument("--day", required=True, action="append", type=date.fromisoformat, help="UTC day")
    rebuild.add_argument("--key-template", help="the DAGs' WAV key template (default: the provider's)")
    rebuild.add_argument("--verify-content", action="store_true", help="re-hash every recording's bytes")
    rebuild.add_argument("--server-side-encryption", help="index encryption: AES256 or aws:kms")
    rebuild.add_argument("--kms-key-id", help="KMS key of the index (with aws:kms)")
    ddl = sub.add_parser("ddl", help="print the Athena CREATE TABLE and the example queries")
    ddl.add_argument("--sub-accounts", required=True, help="comma-separated sub-account ids (projection)")
    sync = sub.add_parser("sync", help="copy the index objects into a folder (for DuckDB)")
    sync.add_argument("--dest", required=True, type=Path, help="the folder")
    for each in (rebuild, ddl, sync):
        each.add_argument("--bucket", required=True, help="the archive bucket")
        each.add_argument("--prefix", default="ringcx", help="the archive prefix (the DAGs' prefix)")
    for each in (rebuild, sync):
        each.add_argument("--aws-conn-id", default="aws_default", help="Airflow aws connection (aws_default)")
    return parser


def s3_client(aws_conn_id: str) -> Any:
    """The boto3 S3 client of an Airflow ``aws`` connection (imported here: Airflow is slow to import)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=aws_conn_id).get_conn()


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, client: Any = None) -> int:
    """Run the command; ``client`` replaces the connection's S3 client (tests)."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    from airflow_provider_ringcx.index import rebuild, sql, store
    from airflow_provider_ringcx.s3.options import S3WriteOptions

    if args.action == "ddl":
        subs = [item.strip() for item in args.sub_accounts.split(",") if item.strip()]
        print(sql.athena_script(args.bucket, args.prefix, subs), file=out)
        return EXIT_OK
    try:
        client = client or s3_client(args.aws_conn_id)
        if args.action == "sync":
            files = store.sync_index(client, args.bucket, args.prefix, args.dest)
            print(f"{len(files)} index objects copied to {args.dest}", file=out)
            return EXIT_OK
        options = S3WriteOptions(
            server_side_encryption=args.server_side_encryption, kms_key_id=args.kms_key_id
        )
        for day in args.day:
            result = rebuild.rebuild_day(
                client, args.bucket, prefix=args.prefix, sub_account_id=args.sub_account, day=day,
                key_template=args.key_template, options=options, verify_content=args.verify_content,
            )  # fmt: skip
            print(
                f"{day}: {result.write.rows} rows from {result.manifests} manifests and {result.reports} "
                f"reports -> s3://{args.bucket}/{result.write.key}",
                file=out,
            )
    except RingCXError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as err:
        print(f"error: S3 refused a request: {err}", file=sys.stderr)
        return EXIT_S3
    return EXIT_OK
