"""``make demo``: archive one fixed past window of simulated RingCX traffic of two sub-accounts into S3.

Starts the RingCX simulator (two sub-accounts) and moto's S3 server on free loopback ports, prepares a
SQLite Airflow home in ``.demo/`` (git-ignored) with ``[ringcx] sub_accounts`` listing both, so the live DAG
file builds one DAG per sub-account (``ringcx_recordings_to_s3__<id>``) from one connection; runs
``dag.test()`` of each for one window (in one process, as ``airflow dags test`` would one by one), then
checks the result independently: every recording the simulator says exists in the window must be in S3
with the simulator's SHA-256, under its sub-account. Prints both sub-accounts and exits 0 only if, for
each, expected == archived > 0, every checksum is verified and the window report agrees.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import DAG_ID
from airflow_provider_ringcx.keys import DEFAULT_KEY_TEMPLATE, recording_key, report_key
from scripts.stack import REPO, Stack

#: The run's logical date; with the 15-minute lag it archives 14:00-14:15 UTC on 2026-03-02.
DEFAULT_RUN = "2026-03-02T14:30:00+00:00"
#: The sub-accounts archived, one DAG each (``[ringcx] sub_accounts``), with one connection's credentials.
SUB_ACCOUNTS = {"99999999": "East", "88888888": "West"}
SIM_ARGS = ["--calls-per-hour", "120", "--duration-scale", "0.05", "--seed", "42",
            "--sub-account-ids", ",".join(SUB_ACCOUNTS)]  # fmt: skip
LISTING = json.dumps([{"id": sub, "name": name} for sub, name in SUB_ACCOUNTS.items()])


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def verify(
    stack: Stack, window_start: datetime, window_end: datetime, sub_account_id: str | None = None
) -> dict[str, Any]:
    """Compare S3 with the simulator's ground truth (not with anything the DAG wrote about itself), for one
    sub-account or (``None``) all of them."""
    import requests

    truth = requests.get(
        f"{stack.sim_url}/_sim/ground-truth",
        params={
            "start": window_start.isoformat(),
            "end": window_end.isoformat(),
            "sha256": "true",
            **({"sub_account_id": sub_account_id} if sub_account_id else {}),
        },
        timeout=120,
    ).json()["segments"]
    expected = [
        s for s in truth if s.get("hasRecording") and not s.get("restricted") and not s.get("processing")
    ]
    s3 = stack.s3_client()
    verified, archived, size, problems, keys = 0, 0, 0, [], []
    for segment in expected:
        key = recording_key(
            template=DEFAULT_KEY_TEMPLATE,
            prefix=stack.prefix,
            sub_account_id=str(segment["subAccountId"]),
            dialog_id=segment["dialogId"],
            segment_id=segment["segmentId"],
            when=datetime.fromtimestamp(_ms(segment["segmentStartTimeMs"]) / 1000, tz=timezone.utc),
        )
        try:
            body = s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            problems.append(f"missing {key}")
            continue
        archived += 1
        size += len(body)
        keys.append(key)
        if hashlib.sha256(body).hexdigest() == segment["sha256"]:
            verified += 1
        else:
            problems.append(f"checksum mismatch {key}")
    return {"expected": len(expected), "archived": archived, "verified": verified, "bytes": size,
            "problems": problems, "keys": keys}  # fmt: skip


def index_lines(stack: Stack, start: datetime, end: datetime) -> tuple[list[str], int]:
    """One query of the archive index, run by DuckDB over a synced copy of ``_index/``: the window's calls
    per direction. Returns the printed lines and how many segments the index says are archived."""
    import tempfile

    from airflow_provider_ringcx.index import sql, store
    from airflow_provider_ringcx.keys import window_part

    with tempfile.TemporaryDirectory() as copy:
        store.sync_index(stack.s3_client(), stack.bucket, stack.prefix, Path(copy))
        query = sql.DUCKDB_QUERIES["calls_per_direction"]
        rows = sql.duckdb_query(copy, query, {"window": window_part(start, end)})
    lines = [f"  index query (DuckDB over s3://{stack.bucket}/{stack.prefix}/_index/, synced): calls per "
             f"direction {start:%H:%M}-{end:%H:%M}"]  # fmt: skip
    lines += [
        f"    {sub:<10} {direction:<10} {n:>4} segments, {done:>4} archived"
        for sub, direction, n, done in rows
    ]
    return lines, sum(done for *_, done in rows)


def coverage_line(stack: Stack, sub_account_id: str, start: datetime, end: datetime) -> str:
    """The coverage ledger's count of the demo's windows of one sub-account (it refreshes their days)."""
    from airflow_provider_ringcx.coverage import CoverageLedger

    ledger = CoverageLedger(stack.s3_client(), stack.bucket, stack.prefix)
    result = ledger.refresh(sub_account_id, start.date(), end.date() + timedelta(days=1))
    windows = [w for day in result.days for w in day.windows if w.start < end and w.end > start]
    n = {
        state: sum(1 for w in windows if w.state == state) for state in ("complete", "missing", "incomplete")
    }
    req = result.requests
    return (
        f"  coverage {start:%H:%M}-{end:%H:%M} (ledger, sub-account {sub_account_id}): "
        f"{n['complete']} complete, {n['missing']} missing, {n['incomplete']} incomplete of "
        f"{len(windows)} window(s) ({req.get} GET, {req.list} LIST, {req.put} PUT)"
    )


def _report(stack: Stack, sub_account_id: str, start: datetime, end: datetime) -> tuple[Any, str]:
    """The window report of one sub-account and its key (``None`` if the run failed before writing it)."""
    key = report_key(stack.prefix, sub_account_id, start, end)
    try:
        return json.loads(stack.s3_client().get_object(Bucket=stack.bucket, Key=key)["Body"].read()), key
    except Exception:  # the run failed before writing it; its log says why
        return None, key


def _complete(report: Any, check: dict[str, Any]) -> bool:
    """One sub-account archived all of its window, by the simulator's truth and by its own report."""
    counts = (report or {}).get("counts", {})
    return (
        report is not None
        and check["expected"] == check["archived"] == check["verified"] > 0
        and counts.get("expected") == counts.get("archived") == check["expected"]
    )


def _ms(value: Any) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value)
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=DEFAULT_RUN, help="logical date of the run (end of its interval)")
    parser.add_argument("--home", default=str(REPO / ".demo"), help="Airflow home (recreated)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    run_after = datetime.fromisoformat(args.run)
    window_end = run_after - timedelta(minutes=15)  # data interval end minus the 15-minute lag
    window_start = window_end - timedelta(minutes=15)
    stack = Stack(
        Path(args.home),
        sim_args=SIM_ARGS,
        airflow_env={
            "RINGCX_RETRIES": "1",
            "RINGCX_RETRY_DELAY_SECONDS": "2",
            "AIRFLOW__RINGCX__SUB_ACCOUNTS": LISTING,
        },
    )
    print(f"RingCX -> S3 demo: window {window_start:%Y-%m-%d %H:%M}-{window_end:%H:%M} UTC")
    with stack.running():
        print(f"  simulator {stack.sim_url}   S3 {stack.s3_url}   AIRFLOW_HOME {stack.home}")
        print("  preparing the Airflow home (migrate SQLite, connections, pools) ...", flush=True)
        stack.prepare_home()
        dag_ids = [f"{DAG_ID}__{sub}" for sub in SUB_ACCOUNTS]  # one DAG per sub-account
        print(f"  dag.test() {', '.join(dag_ids)} for {args.run} (one process, in turn) ...", flush=True)
        runs = stack.dags_test(args.run, *dag_ids)  # one SQLite DB: one run after the other
        for dag_id, run in runs.items():
            print(f"  {dag_id}: {run['state']} in {run['seconds']:.0f} s")
        checks = {sub: verify(stack, window_start, window_end, sub) for sub in SUB_ACCOUNTS}
        reports = {sub: _report(stack, sub, window_start, window_end) for sub in SUB_ACCOUNTS}
        check = verify(stack, window_start, window_end)  # every sub-account at once
        index, indexed = index_lines(stack, window_start, window_end)
        coverage = [coverage_line(stack, sub, window_start, window_end) for sub in SUB_ACCOUNTS]
        pids = ", ".join(str(proc.pid) for proc in stack.procs)
    for sub, name in SUB_ACCOUNTS.items():
        one, (report, key) = checks[sub], reports[sub]
        counts = (report or {}).get("counts", {})
        print(f"  sub-account {sub} ({name}), DAG {DAG_ID}__{sub}:")
        print(
            f"    expected (simulator ground truth): {one['expected']} recordings   archived: "
            f"{one['archived']}   failed / not archived: {one['expected'] - one['archived']}   bytes: "
            f"{_mb(one['bytes'])}"
        )
        print(
            f"    SHA-256 verified: {one['verified']}/{one['archived']} (S3 bytes re-hashed vs. the "
            "simulator)"
        )
        if report:
            print(
                f"    window report: expected {counts.get('expected')}, archived {counts.get('archived')}, "
                f"complete={report.get('complete')}: s3://{stack.bucket}/{key}"
            )
        for sample in one["keys"][:2]:
            print(f"    s3://{stack.bucket}/{sample}")
    failed = check["expected"] - check["archived"]
    print(
        f"  both sub-accounts: expected {check['expected']}, archived {check['archived']}, failed / not "
        f"archived {failed}, {_mb(check['bytes'])}, SHA-256 verified {check['verified']}/{check['archived']}"
    )
    for problem in check["problems"][:10]:
        print(f"  PROBLEM: {problem}")
    print(f"  stopped simulator and S3 server (pids {pids}); logs in {stack.home / 'logs'}")
    print("\n".join(index))
    print("\n".join(coverage))
    ok = (
        all(run["state"] == "success" for run in runs.values())
        and check["expected"] == check["archived"] == check["verified"] > 0
        and all(_complete(reports[sub][0], checks[sub]) for sub in SUB_ACCOUNTS)
        and indexed == check["archived"]
    )
    elapsed = time.monotonic() - started
    if ok:
        print(
            f"DEMO OK: {len(SUB_ACCOUNTS)} sub-accounts, expected == archived == {check['archived']}, all "
            f"SHA-256 verified ({elapsed:.0f} s)"
        )
        return 0
    print(f"DEMO FAILED after {elapsed:.0f} s; see {stack.home / 'logs' / 'dags-test.log'}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
