"""``python -m airflow_provider_ringcx coverage``: the coverage ledger for a person at a terminal.

    python -m airflow_provider_ringcx coverage --aws-conn-id aws_default --bucket B --prefix ringcx \\
        --sub-account-id 12345 --start 2026-03-01 --end 2026-03-08 [--interval 15m] [--lag 15m] [--refresh]

It refreshes the ledger (:class:`~airflow_provider_ringcx.coverage.ledger.CoverageLedger`: final days
are read from their rollups, the others are listed; ``--refresh`` lists every day and reads every report
again, trusting no rollup; ``--cached`` lists none and writes nothing), then prints one line per day and
every problem window with its reason.

Exit status: 0 when nothing due is missing, incomplete or only partly archived; 1 when something is (the
problems are printed); 2 for a usage or configuration error; 3 when S3 refuses the ledger's requests. The
S3 client is the Airflow ``aws`` connection's (``AIRFLOW_CONN_AWS_DEFAULT`` works), so no credential
is given on the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import Any, TextIO

from airflow_provider_ringcx import jsonutil
from airflow_provider_ringcx.coverage.grid import STATES, CoverageGrid, parse_duration, span_label
from airflow_provider_ringcx.coverage.ledger import CoverageError, CoverageLedger
from airflow_provider_ringcx.coverage.result import CoverageResult
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.models import parse_timestamp
from airflow_provider_ringcx.runinfo import format_table, human_bytes
from airflow_provider_ringcx.s3.options import S3WriteOptions

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_S3 = 0, 1, 2, 3


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m airflow_provider_ringcx coverage")
    parser.description = "Coverage of the archive from its window reports: per day, and every gap."
    parser.add_argument("--aws-conn-id", default="aws_default", help="Airflow aws connection (aws_default)")
    parser.add_argument("--bucket", required=True, help="the archive bucket")
    parser.add_argument("--prefix", default="", help="the archive prefix (the DAGs' prefix)")
    parser.add_argument("--sub-account-id", required=True, help="the RingCX sub-account")
    parser.add_argument("--start", required=True, type=date.fromisoformat, help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--end", required=True, type=date.fromisoformat, help="UTC day after the last one")
    parser.add_argument("--interval", default="15m", help="grid window length: 15m (live), 1h, 1d (history)")
    parser.add_argument("--lag", default="15m", help="a window is due this long after its end (15m)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--refresh", action="store_true", help="re-list every day, re-read every report")
    mode.add_argument("--cached", action="store_true", help="read the rollups only: no LIST, no write")
    parser.add_argument("--now", help="judge as of this ISO-8601 time instead of the clock")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of tables")
    parser.add_argument("--max-problems", type=int, default=50, help="problem windows printed (50)")
    parser.add_argument("--server-side-encryption", help="rollup encryption: AES256 or aws:kms")
    parser.add_argument("--kms-key-id", help="KMS key of the rollups (with aws:kms)")
    return parser


def s3_client(aws_conn_id: str) -> Any:
    """The boto3 S3 client of an Airflow ``aws`` connection (imported here: Airflow is slow to import).

    Airflow sets its logging up on import and may log to stdout; that goes to stderr here, so that stdout
    holds the table or the JSON only (``--json | jq`` works).
    """
    with contextlib.redirect_stdout(sys.stderr):
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=aws_conn_id).get_conn()


def render(result: CoverageResult, *, bucket: str, prefix: str, max_problems: int = 50) -> str:
    """The per-day table, the totals and the problem windows with their reasons."""
    grid = result.grid
    days = (result.end - result.start).days
    lines = [
        f"Coverage of sub-account {result.sub_account_id} in s3://{bucket}/{prefix.strip('/')}: "
        f"{result.start} to {result.end} (end excluded, {days} day{'s' * (days != 1)}), "
        f"grid {_duration(grid.interval.total_seconds())}, lag {_duration(grid.lag.total_seconds())}, "
        f"as of {result.now:%Y-%m-%d %H:%M:%S} UTC",
        "",
    ]
    headers = ("date", *STATES, "off-grid", "recordings", "bytes", "final", "source")
    rows = []
    for day in result.days:
        counts = day.counts()
        rows.append((
            day.day.isoformat(), *(str(counts[s]) for s in STATES), str(len(day.rollup.off_grid)),
            str(day.rollup.recordings), human_bytes(day.rollup.archived_bytes),
            "yes" if day.final else "no", day.source,
        ))  # fmt: skip
    total = result.counts()
    rows.append((
        "total", *(str(total[s]) for s in STATES), str(total["off_grid"]), str(total["recordings"]),
        human_bytes(total["bytes"]), f"{total['final_days']}/{days}", "",
    ))  # fmt: skip
    lines.append(format_table(headers, rows, numeric=range(1, 9)))
    problems = result.problems()
    lines.append("")
    if problems:
        gaps = result.gaps()
        lines.append(
            f"Problems: {len(problems)} due window(s) not archived, in {len(gaps)} stretch(es) to re-archive"
        )
        shown = [
            (f"{g.start:%Y-%m-%d}", span_label(g.start, g.end), g.state, str(g.windows), "; ".join(g.reasons))
            for g in gaps[:max_problems]
        ]
        lines.append(format_table(("date", "window", "state", "windows", "reason"), shown, numeric=(3,)))
        if len(gaps) > max_problems:
            lines.append(f"... and {len(gaps) - max_problems} more (--max-problems, or --json)")
    else:
        lines.append("No problems: every due window is archived.")
    off_grid = [(day.day, key) for day in result.days for key in day.rollup.off_grid]
    if off_grid:
        lines.append(f"Off-grid reports ({len(off_grid)}): runs whose window is not on the grid")
        lines += [f"  s3://{bucket}/{key}" for _day, key in off_grid[:max_problems]]
    absent = sum(1 for day in result.days if day.source == "absent")
    if absent:
        lines.append(f"{absent} day(s) have no rollup yet: run without --cached to build them")
    req = result.requests
    lines.append(f"S3 requests: {req.get} GET, {req.list} LIST, {req.put} PUT")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, client: Any = None) -> int:
    """Run the command; return its exit status.

    :param client: an S3 client to use instead of the connection's (tests, embedding).
    """
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        grid = CoverageGrid(
            parse_duration(args.interval, name="--interval"), parse_duration(args.lag, name="--lag")
        )
        now = _when(args.now)
        options = None
        if args.server_side_encryption or args.kms_key_id:
            options = S3WriteOptions(
                server_side_encryption=args.server_side_encryption, kms_key_id=args.kms_key_id
            )
        ledger = CoverageLedger(
            client if client is not None else s3_client(args.aws_conn_id),
            args.bucket,
            args.prefix,
            clock=(lambda: now) if now else None,
            options=options,
        )
        if args.cached:
            result = ledger.read(args.sub_account_id, args.start, args.end, grid)
        else:
            result = ledger.refresh(args.sub_account_id, args.start, args.end, grid, force=args.refresh)
    except RingCXConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except CoverageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_S3
    if args.json:
        out.write(jsonutil.dumps(result.as_dict(), indent=2) + "\n")
    else:
        out.write(
            render(result, bucket=args.bucket, prefix=args.prefix, max_problems=args.max_problems) + "\n"
        )
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = parse_timestamp(text)
    except ValueError:
        moment = None
    if moment is None:
        raise RingCXConfigError(f"--now={text!r} is not an ISO-8601 time; use e.g. 2026-03-08T12:00:00Z")
    return moment.astimezone(timezone.utc)
